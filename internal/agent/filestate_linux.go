//go:build linux

package agent

import (
	"io/fs"
	"syscall"
)

// stateOf is what tells whether a file changed: its size, modification and
// change times and inode, the attributes restic itself compares.
func stateOf(fi fs.FileInfo) fileState {
	s := fileState{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ctime = st.Ctim.Nano()
		s.ino = st.Ino
	}
	return s
}
