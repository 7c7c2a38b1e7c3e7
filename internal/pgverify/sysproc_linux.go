package pgverify

import (
	"os"
	"syscall"
)

// credential is how a server process is started: as u when this process
// is root, else as this process's user.
func (u User) credential() *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	return &syscall.Credential{Uid: u.UID, Gid: u.GID, NoSetGroups: true}
}

// sysProcAttr starts a PostgreSQL program as u, killed with its parent.
func sysProcAttr(u User) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: u.credential(), Pdeathsig: syscall.SIGKILL}
}
