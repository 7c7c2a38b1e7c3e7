//go:build linux

package agent

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"
)

// hashListed hashes the source file the walk listed as f, and says
// whether it was stable: its state after the read is the walk's. On Linux
// one look after the read is enough: any write to the file or replacement
// of it since the walk moved its change time or inode, and neither can be
// put back. It reads with the system's calls directly rather than through
// os.File, whose poller registration and cleanup cost more than reading a
// small file, and stops reading once it has the size the walk saw: a file
// that grew is not stable anyway, and is hashed from restic's copy.
// Opening asks the kernel not to update the file's access time where the
// agent may (its owner, or CAP_FOWNER), as restic does.
func hashListed(f sourceFile) hashed {
	fd, err := openNoAtime(f.path)
	if err != nil {
		return hashed{err: &fs.PathError{Op: "open", Path: f.path, Err: err}}
	}
	defer unix.Close(fd)
	// A file listed empty is read to its end: some file systems give no
	// size for what a file holds.
	m, err := hashFD(fd, f.path, backupHash, f.state.size)
	if errors.Is(err, unix.EAGAIN) {
		// Opened without blocking, only what is no longer a regular
		// file reads EAGAIN (a named pipe with a writer): it was
		// replaced since the listing, and what restic stored of it
		// decides, as for any file that changed.
		return hashed{file: ManifestFile{Path: f.path}}
	}
	if err != nil {
		return hashed{err: err}
	}
	after, err := fstatState(fd)
	if err != nil {
		return hashed{err: &fs.PathError{Op: "stat", Path: f.path, Err: err}}
	}
	stable := after == f.state && m.Size == f.state.size && f.state.ctime != 0 && f.state.ino != 0
	if stable {
		m.State = &FileState{MTime: f.state.mtime, CTime: f.state.ctime, Inode: f.state.ino}
	}
	return hashed{file: m, stable: stable}
}

// hashFile is the size and digest under alg of the file at p, read to
// its end as hashListed reads: a restore hashes each file it brings back,
// and a backup each one it takes from restic's copy.
func hashFile(p, alg string) (ManifestFile, error) {
	fd, err := openNoAtime(p)
	if err != nil {
		return ManifestFile{}, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	return hashFD(fd, p, alg, 0)
}

// hashFD hashes the open file fd, named p, under alg: to its end, or once
// it has size bytes when size is not 0.
func hashFD(fd int, p, alg string, size int64) (ManifestFile, error) {
	pool, ok := hashers[alg]
	if !ok {
		return ManifestFile{}, fmt.Errorf("unknown content hash algorithm %q", alg)
	}
	h := pool.Get().(hash.Hash)
	defer pool.Put(h)
	buf := hashBuffers.Get().(*[]byte)
	defer hashBuffers.Put(buf)
	return hashFDWith(h, *buf, fd, p, alg, size)
}

// hashFDWith is hashFD reading through buf into h.
func hashFDWith(h hash.Hash, buf []byte, fd int, p, alg string, size int64) (ManifestFile, error) {
	h.Reset()
	var n int64
	for size == 0 || n < size {
		k, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return ManifestFile{}, &fs.PathError{Op: "read", Path: p, Err: err}
		}
		if k == 0 {
			break
		}
		_, _ = h.Write(buf[:k])
		n += int64(k)
	}
	m := ManifestFile{Path: p, Size: n}
	setDigest(&m, alg, h.Sum(nil))
	return m, nil
}

// hashers keeps a hasher of each algorithm for reuse: a BLAKE3 hasher
// costs more to make than a small file costs to hash.
var hashers = map[string]*sync.Pool{
	HashSHA256: {New: func() any { return sha256.New() }},
	HashBLAKE3: {New: func() any { return blake3.New(32, nil) }},
}

// openNoAtime opens path to read, without updating its access time when
// the kernel allows that: only to the file's owner or with CAP_FOWNER, and
// once refused it is not asked for again. O_NONBLOCK keeps a file replaced
// by a named pipe since the listing from blocking the open; it changes
// nothing for a regular file.
func openNoAtime(path string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK
	if !noAtimeRefused.Load() {
		fd, err := openRetrying(path, flags|unix.O_NOATIME)
		if !errors.Is(err, unix.EPERM) {
			return fd, err
		}
		// Not the file's owner: O_NOATIME is refused, reading is not.
		noAtimeRefused.Store(true)
	}
	return openRetrying(path, flags)
}

// noAtimeRefused is set once the kernel refused O_NOATIME: an agent that
// is not root, or has no CAP_FOWNER, is refused it for most files.
var noAtimeRefused atomic.Bool

func openRetrying(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// fstatState is the state of the open file fd, as stateOf gives it.
func fstatState(fd int) (fileState, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstat(fd, &st)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fileState{}, err
		}
		return fileState{size: int64(st.Size), mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), ino: uint64(st.Ino)}, nil
	}
}
