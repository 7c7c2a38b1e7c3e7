package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// targetSync makes a restore's files durable: once restic has written
// them, everything the page cache still holds for the filesystems they are
// on is written to disk (syncfs), so a restore reported done survives the
// node's crash. The filesystems are each destination's and every one
// mounted below it (restic writes through mount points, as the backup read
// through them), opened before restic writes: on Linux 5.8 and later
// syncfs also reports the write-back errors recorded for a filesystem
// since it was opened, so an error while restic wrote fails the restore.
type targetSync struct {
	fds  []int
	dirs []string
	// unreadable are the directories the Job may write but not open, whose
	// filesystems are left to the kernel's own write-back.
	unreadable []string
	// syncfs is unix.Syncfs; tests make it fail.
	syncfs func(fd int) error
}

// openTargetSync opens the filesystem of each of dirs, and of each mount
// below them, once each: a directory not made yet is on its nearest
// existing parent's.
func openTargetSync(dirs []string, syncfs func(fd int) error) (*targetSync, error) {
	if syncfs == nil {
		syncfs = unix.Syncfs
	}
	ts := &targetSync{syncfs: syncfs}
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, fmt.Errorf("cannot list the filesystems mounted under the restore targets: %w", err)
	}
	var all []string
	for _, dir := range dirs {
		dir = filepath.Clean(dir)
		all = append(all, dir)
		below := mountinfo.PrefixFilter(dir)
		for _, m := range mounts {
			if skip, _ := below(m); !skip {
				all = append(all, m.Mountpoint)
			}
		}
	}
	seen := map[uint64]bool{}
	for _, dir := range all {
		fd, at, err := openExisting(dir)
		if errors.Is(err, fs.ErrPermission) {
			ts.unreadable = append(ts.unreadable, at)
			continue
		}
		if err != nil {
			ts.close()
			return nil, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			_ = unix.Close(fd)
			ts.close()
			return nil, fmt.Errorf("cannot look at the restore target %s: %w", at, err)
		}
		if seen[st.Dev] {
			_ = unix.Close(fd)
			continue
		}
		seen[st.Dev] = true
		ts.fds, ts.dirs = append(ts.fds, fd), append(ts.dirs, at)
	}
	return ts, nil
}

// openExisting opens dir, else its nearest parent that exists.
func openExisting(dir string) (fd int, at string, err error) {
	for at = filepath.Clean(dir); ; at = filepath.Dir(at) {
		fd, err = unix.Open(at, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || at == filepath.Dir(at) {
			break
		}
	}
	if err != nil {
		return -1, at, fmt.Errorf("cannot open the restore target %s: %w", at, err)
	}
	return fd, at, nil
}

// sync writes each filesystem's pages to its disk and closes it.
func (ts *targetSync) sync() error {
	defer ts.close()
	for i, fd := range ts.fds {
		if err := ts.syncfs(fd); err != nil {
			return fmt.Errorf("cannot write the restored files under %s to their disk: %w", ts.dirs[i], err)
		}
	}
	return nil
}

func (ts *targetSync) close() {
	for _, fd := range ts.fds {
		_ = unix.Close(fd)
	}
	ts.fds = nil
}
