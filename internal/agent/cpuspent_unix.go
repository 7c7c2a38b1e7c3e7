//go:build unix

package agent

import (
	"syscall"
	"time"
)

// cpuSpent is the processor time, user and system, the agent has used
// itself and its ended child processes (restic) have used, so far.
func cpuSpent() (self, children time.Duration) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) == nil {
		children = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return self, children
}
