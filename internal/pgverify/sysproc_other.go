//go:build !linux

package pgverify

import "syscall"

// sysProcAttr, away from Linux, starts PostgreSQL programs as this
// process's user: verifications run in Linux Jobs, and this only lets the
// command-line tool that links the package build elsewhere. PostgreSQL
// refuses to start as root by itself.
func sysProcAttr(User) *syscall.SysProcAttr { return nil }
