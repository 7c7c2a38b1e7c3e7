package pgdump

import "syscall"

// childAttr has a PostgreSQL client program killed with its parent, so a
// killed agent leaves no dump or load running against the database.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
