//go:build !unix

package agent

import "time"

// cpuSpent, where the system keeps no resource usage the unix way, is
// unknown and reported as zero. The agent runs in Linux Jobs; this only
// lets the command-line tool that links it build elsewhere.
func cpuSpent() (self, children time.Duration) { return 0, 0 }
