package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// restic's local backend gives the files it writes the access of their
// owner, and of their group when the repository's config is readable by
// it, and makes them read-only; the directories it makes likewise. The
// bridge's storage (gocloud's fileblob) writes files and directories as
// any program does, with the process' umask: a storage that other users
// read (an accessor, a restore Job running as another user) reads them
// today. A backup on the local backend keeps the repository as the bridge
// would have left it: the directories restic writes into are made before
// it runs, with the mode of the repository's keys directory (made by the
// bridge at the repository's init), and the files it wrote are given the
// read access of the repository's config after it has run. They stay
// read-only, as restic leaves them.

// sharedModes are the modes the bridge gave a repository: dir for its
// directories, read for the read access of its files.
type sharedModes struct {
	dir  fs.FileMode
	read fs.FileMode
}

// resticDirs are the directories of a repository that restic's backup
// writes into (data's are its 256 fan-out directories).
func resticDirs(repo string) []string {
	dirs := []string{filepath.Join(repo, "data"), filepath.Join(repo, "index"), filepath.Join(repo, "snapshots"), filepath.Join(repo, "locks")}
	for i := range 256 {
		dirs = append(dirs, filepath.Join(repo, "data", fmt.Sprintf("%02x", i)))
	}
	return dirs
}

// readModes reads the modes the bridge gave the repository at repo.
func readModes(repo string) (sharedModes, error) {
	keys, err := os.Stat(filepath.Join(repo, "keys"))
	if err != nil {
		return sharedModes{}, fmt.Errorf("cannot read the restic repository's modes: %w", err)
	}
	config, err := os.Stat(filepath.Join(repo, "config"))
	if err != nil {
		return sharedModes{}, fmt.Errorf("cannot read the restic repository's modes: %w", err)
	}
	return sharedModes{dir: keys.Mode().Perm(), read: config.Mode().Perm() & 0o444}, nil
}

// makeDirs makes the directories restic's backup writes into that do not
// exist, with the repository's mode.
func (m sharedModes) makeDirs(repo string) error {
	for _, d := range resticDirs(repo) {
		err := os.Mkdir(d, m.dir)
		switch {
		case errors.Is(err, fs.ErrExist):
			continue
		case err == nil:
			// Mkdir honours the umask; the mode is the keys directory's.
			err = os.Chmod(d, m.dir)
		}
		if err != nil {
			return fmt.Errorf("cannot make the restic repository's directory %s: %w", d, err)
		}
	}
	return nil
}

// share gives the files restic wrote into the repository's directories
// since the time since the repository's read access. Only directories
// whose entries changed since then are read.
func (m sharedModes) share(repo string, since time.Time) error {
	if m.read == 0 {
		return nil
	}
	for _, d := range resticDirs(repo) {
		fi, err := os.Stat(d)
		if err != nil || fi.ModTime().Before(since) {
			continue
		}
		entries, err := os.ReadDir(d)
		if err != nil {
			return fmt.Errorf("cannot share the files restic wrote: %w", err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("cannot share the files restic wrote: %w", err)
			}
			if mode := info.Mode().Perm(); mode&m.read != m.read {
				if err := os.Chmod(filepath.Join(d, e.Name()), mode|m.read); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("cannot share the files restic wrote: %w", err)
				}
			}
		}
	}
	return nil
}
