//go:build !linux

package pgdump

import "syscall"

// childAttr, away from Linux, has nothing to set: dumps and loads run in
// Linux Jobs, and this only lets the command-line tool build elsewhere.
func childAttr() *syscall.SysProcAttr { return nil }
