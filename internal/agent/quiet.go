package agent

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/stashplane/stashplane/internal/restic"
)

// The manifest lists the files restic stored, and restic names them only
// when asked for a line per file (--verbose=2). On a source of many small
// files that nothing changed, those lines are most of what restic does
// beyond its key derivation: each goes through restic's output goroutine
// and a write of its own, a seventh of an unchanged run of 20,000 files.
//
// A backup whose source is as the last backup left it does not need them.
// restic's summary counts the files it stored as new, changed and
// unchanged, and unchanged means equal to the parent's entry at the same
// path, content included. When the parent is the snapshot the previous
// manifest describes, and restic reports no new or changed file and as
// many unchanged ones as that manifest lists, the new snapshot holds
// exactly the manifest's files with the manifest's content: the manifest's
// entries are the new manifest's.
//
// The flag that asks for the lines is given when restic starts, before
// the walk has shown whether anything changed, so the choice is a guess
// from the last backup (ledger.QuietNext): quiet when it found its source
// unchanged, or had no parent to compare with (a first backup: most
// sources change little from one backup to the next, and one that changes
// every time pays for the wrong guess once). A quiet restic is held, at
// its lock by the bridge (LocksAfter) or after its lock at its gate on its
// own local backend (restic.BackupOptions.Gate), until the walk's digest
// of the source (each file's path, size, times and inode) has been
// compared with the one the ledger keeps of the source the previous
// manifest describes. A source that changed since stops that restic
// before it has read anything (killed while the bridge holds its lock;
// on its own backend shut out at its gate and interrupted, and it removes
// the lock it took) and starts one that names its files, at the cost of
// the walk's time: the new restic's key derivation starts that much
// later. The digest only guides the guess; what the manifest lists rests
// on restic's counts and the sealed previous manifest. A change between
// the walk and restic's reading of the file shows in restic's counts: the
// backup then lists the new snapshot's files (restic ls) and takes its
// manifest as for any changed file.

// A source restic is asked to back up as the walk lists it (no exclude
// patterns, clean paths: listableSource) has a second way to vouch for a
// quiet run, parent or not. restic stores every regular file it finds and
// counts each once, as new, changed or unchanged; it exits with an error
// for one it could not read. When every file and directory the walk listed
// still has the state (size, times, inode) the walk saw, from before
// restic's first read until after its last, restic found each of them (a
// directory's modification time moves with any entry added, removed or
// renamed in it), and when it counts as many files as the walk listed it
// stored no other: the snapshot holds
// exactly the walk's files, and a file that held still over the run, as
// the hasher read it, is what restic stored (contentscan.go). So a first
// backup, and any backup of a source that holds still while it runs,
// needs no line per file (storedAsListed). Such a source is guessed quiet
// unless its last backup saw it move during the run (a live database, for
// one): its files are then listed by restic ls, one more key derivation,
// and the next backup names its files again.

// quietGuess says whether restic is started without naming its files: for
// a listable source, unless the last backup saw it move during its run;
// for any other, when quietHinted.
func quietGuess(l *ledger, hinted, listable bool) bool {
	if !listable {
		return hinted
	}
	return l == nil || l.QuietNext
}

// listableSource says whether the walk of paths lists exactly the files
// restic backs up, by the same names: no exclude patterns (the walk's
// matching is not restic's), and each path clean, as restic names what it
// stores.
func listableSource(paths, exclude []string) bool {
	if len(exclude) > 0 {
		return false
	}
	for _, p := range paths {
		if filepath.Clean(p) != p {
			return false
		}
	}
	return true
}

// storedAsListed gives the manifest's files of a quiet run when restic's
// counts and the files' states show that restic stored exactly the walk's
// files, each as the hasher read it; false otherwise, and the snapshot's
// files must then be listed.
//
// The directories the walk saw must hold still too: a file's own state
// does not move when its directory is renamed away and back, or when it
// is removed and another added, and restic leaves out, without an error,
// an entry that is gone when it comes to it. Any of these moves the
// directory's modification time. prev is the previous manifest, when
// there is one: restic takes a file it finds unchanged from its parent
// without reading it, and an entry of prev hashed from restic's copy (no
// state) whose digest is not the hasher's may be content the disk no
// longer holds. A run stopped meanwhile (ctx) gives false.
func storedAsListed(ctx context.Context, sum *restic.BackupSummary, files, dirs []sourceFile, hashes []hashed, prev *previousManifest) ([]ManifestFile, bool) {
	if sum == nil || sum.FilesNew+sum.FilesChanged+sum.FilesUnmodified != uint64(len(files)) {
		return nil, false
	}
	out := stableEntries(hashes)
	if out == nil {
		return nil, false
	}
	for i, f := range files {
		// The walk's list is sorted: a path listed twice (overlapping
		// paths) would be counted once by restic.
		if i > 0 && files[i-1].path == f.path {
			return nil, false
		}
		if prev != nil {
			if m, ok := prev.files[f.path]; ok && m.State == nil && m.BLAKE3 != out[i].BLAKE3 {
				return nil, false
			}
		}
	}
	if !stillAsWalked(ctx, files) || !stillAsWalked(ctx, dirs) {
		return nil, false
	}
	return out, true
}

// stillAsWalked says whether every entry still has the state the walk saw.
// The run waits for it after restic, with the cores restic used idle: the
// files are looked at on all of them. A run stopped meanwhile (ctx) stops
// looking, and cannot tell: false.
func stillAsWalked(ctx context.Context, files []sourceFile) bool {
	workers := fileWorkers()
	part := max((len(files)+workers-1)/workers, 1)
	var moved atomic.Bool
	var wg sync.WaitGroup
	for start := 0; start < len(files); start += part {
		wg.Add(1)
		go func(files []sourceFile) {
			defer wg.Done()
			for _, f := range files {
				if moved.Load() {
					return
				}
				if ctx.Err() != nil {
					moved.Store(true)
					return
				}
				if now, err := os.Lstat(f.path); err != nil || stateOf(now) != f.state {
					moved.Store(true)
					return
				}
			}
		}(files[start:min(start+part, len(files))])
	}
	wg.Wait()
	return !moved.Load()
}

// namedAsListed says whether the files restic named are the walk's and
// the hasher found each as the walk did: a source that held still over a
// run that named its files, and may be backed up quietly the next time.
func namedAsListed(named []string, files []sourceFile, hashes []hashed) bool {
	if len(named) != len(files) {
		return false
	}
	listed := make(map[string]bool, len(files))
	for i, f := range files {
		if hashes[i].err != nil || !hashes[i].stable {
			return false
		}
		listed[f.path] = true
	}
	for _, p := range named {
		if !listed[p] {
			return false
		}
		delete(listed, p)
	}
	return len(listed) == 0
}

// quietHinted says whether a source with exclude patterns is backed up
// without naming its files: the ledger guesses so, and restic's parent is
// the snapshot the ledger's manifest describes.
func quietHinted(l *ledger, parent string) bool {
	return l != nil && l.QuietNext && l.Source != "" && l.Manifest != "" && parent != "" && parent == l.ResticSnapshot
}

// sourceState is a digest (SHA-256) of the walk's files, in path order:
// each one's path, size, times and inode. A backup's ledger keeps that of
// the source its manifest describes (manifestState), and the next backup's
// walk of a source nothing touched since gives the same.
func sourceState(files []sourceFile) string {
	return stateDigest(len(files), func(i int) (string, int64, FileState) {
		f := files[i]
		return f.path, f.state.size, FileState{MTime: f.state.mtime, CTime: f.state.ctime, Inode: f.state.ino}
	})
}

// manifestState is sourceState of the source a manifest's files describe:
// "" when one of them has no recorded state (it was taken from restic's
// copy) or no digest, since it would not be taken over unread.
func manifestState(files []ManifestFile) string {
	for _, f := range files {
		if !reusable(f) {
			return ""
		}
	}
	return stateDigest(len(files), func(i int) (string, int64, FileState) {
		return files[i].Path, files[i].Size, *files[i].State
	})
}

// stateDigest hashes n entries given by at, in the order of their paths.
func stateDigest(n int, at func(int) (string, int64, FileState)) string {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	path := func(i int) string { p, _, _ := at(i); return p }
	if !slices.IsSortedFunc(order, func(a, b int) int { return strings.Compare(path(a), path(b)) }) {
		slices.SortFunc(order, func(a, b int) int { return strings.Compare(path(a), path(b)) })
	}
	h := sha256.New()
	var buf [32]byte
	for _, i := range order {
		p, size, st := at(i)
		_, _ = io.WriteString(h, p)
		binary.LittleEndian.PutUint64(buf[0:], uint64(size))
		binary.LittleEndian.PutUint64(buf[8:], uint64(st.MTime))
		binary.LittleEndian.PutUint64(buf[16:], uint64(st.CTime))
		binary.LittleEndian.PutUint64(buf[24:], st.Inode)
		// A NUL cannot be in a path: it ends each entry's path.
		_, _ = h.Write([]byte{0})
		_, _ = h.Write(buf[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// storedAsPrevious says whether restic's summary shows that it stored,
// against parent, exactly the files of prev, each unchanged. When restic
// named its files, they must be prev's too.
func storedAsPrevious(sum *restic.BackupSummary, prev *previousManifest, parent string) bool {
	if sum == nil || prev == nil || parent == "" || prev.resticSnapshot != parent ||
		sum.FilesNew != 0 || sum.FilesChanged != 0 || sum.FilesUnmodified != uint64(len(prev.files)) {
		return false
	}
	if sum.Files != nil {
		if len(sum.Files) != len(prev.files) {
			return false
		}
		for _, p := range sum.Files {
			if _, ok := prev.files[p]; !ok {
				return false
			}
		}
	}
	return true
}

// storedFiles are the regular files the backup's restic snapshot holds,
// and those of them restic found unchanged against the parent: restic
// named them when listed; after a quiet run that did not store the
// previous manifest's files unchanged (storedAsPrevious), restic lists
// the snapshot.
func (r *Runner) storedFiles(ctx context.Context, rc *restic.Restic, listed bool, sum *restic.BackupSummary) (stored, unchanged []string, err error) {
	if listed {
		return sum.Files, sum.Unchanged, nil
	}
	r.Log.Info("listing the files of the backup's restic snapshot: restic's counts do not show that it stored the previous manifest's files unchanged or the walk's files as they were (the source changed while restic ran)",
		"new", sum.FilesNew, "changed", sum.FilesChanged, "unchanged", sum.FilesUnmodified)
	stored, err = rc.Files(ctx, sum.SnapshotID)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot list the files of restic snapshot %s for the content manifest: %w", sum.SnapshotID, err)
	}
	return stored, nil, nil
}

// lockGate holds the lock files of a backup's restic back until it is
// opened (bridge.Options.LocksAfter), or a restic on its own local
// backend at its gate (restic.BackupOptions.Gate). renew abandons those
// held so far, of a restic that was stopped: they wait on a gate that
// never opens, and later ones on a new one.
type lockGate struct {
	mu sync.Mutex
	ch chan struct{}
}

func newLockGate() *lockGate { return &lockGate{ch: make(chan struct{})} }

// current is the gate a lock arriving now waits on.
func (g *lockGate) current() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ch
}

// renew gives the locks that arrive from now on a gate of their own.
func (g *lockGate) renew() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ch = make(chan struct{})
}

// open lets the locks through that wait on the current gate, and those
// that come later.
func (g *lockGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.ch)
}
