package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// The content manifest is built while restic backs the source up, not in a
// pass of its own before it: a hasher reads the files in the order restic
// walks them, so that one of the two reads mostly finds the other's pages
// in the page cache, and the backup costs one read of the source instead
// of two in a row.
//
// The manifest must still describe what restic stored, and a file may
// change while the backup runs. Each file's state (size, modification and
// change times, inode) is taken by the walk before restic starts, when the
// hasher has read the file (and, off Linux, before it reads it), and once
// more after restic has finished. A file whose state never moved was the same for restic and
// for the hasher over the whole run, which holds both reads, so its hash
// is what restic stored. This is restic's own test of a changed file, and
// it shares its blind spot: a write that leaves size and all times as they
// were. Every other file (changed, replaced or removed during the run, or
// gone before the hasher came to it) is taken back from the new restic
// snapshot into the scratch directory and hashed there, so its manifest
// entry is restic's copy.
//
// Which files the manifest lists is restic's say, not the walk's: restic
// names every file it stores, new, changed or unchanged, on its output
// (--verbose=2), or its counts vouch that it stored the previous
// manifest's files as they were, or the walk's files as the hasher read
// them (quiet.go). A file the
// snapshot does not hold is left out, since restic did not store it, and a
// file the snapshot holds but the walk did not see (created while the
// backup ran) is hashed from restic's copy like a changed one. A live
// source, such as a database writing new segments, thus gets a manifest
// that a restore into an empty directory matches file for file.

// fileState tells whether a file changed between two looks at it.
type fileState struct {
	size  int64
	mtime int64
	ctime int64
	ino   uint64
}

// sourceFile is a regular file of the source as the walk before the
// backup found it.
type sourceFile struct {
	path  string
	state fileState
}

// listedSizes are the listed files with their sizes only, for checkRead.
func listedSizes(files []sourceFile) []ManifestFile {
	out := make([]ManifestFile, len(files))
	for i, f := range files {
		out[i] = ManifestFile{Path: f.path, Size: f.state.size}
	}
	return out
}

// hashed is one source file as the hasher read it during the backup.
type hashed struct {
	file ManifestFile
	err  error
	// stable: the file had its listed state when it was opened and when
	// it had been read to the end.
	stable bool
}

// contentHasher hashes listed files, in order, while restic reads them.
type contentHasher struct {
	out  []hashed
	done chan struct{}
	// carried counts the hashes taken over from the previous manifest.
	carried int
	// previous is that manifest, once loaded; nil when there is none.
	previous *previousManifest
	// early, for startHashingFirst, is closed once the small files are
	// hashed.
	early chan struct{}
}

// earlyHashMax is the largest file a first backup hashes beside restic
// init (startHashingFirst). Below it a file's cost to the hasher is mostly
// per file (opening, looking at it), which is what a first backup of many
// small files has no core to spare for beside restic's backup; above it,
// mostly per byte, and restic backing up large files leaves room for it.
const earlyHashMax = 1 << 20

// startHashingFirst hashes files for a backup with no previous manifest:
// those of at most earlyHashMax bytes at once, beside restic init, and the
// others once later is closed, when restic has been let through to read
// the source. files not reached before ctx ends carry its error.
func startHashingFirst(ctx context.Context, files []sourceFile, later <-chan struct{}) *contentHasher {
	h := &contentHasher{out: make([]hashed, len(files)), done: make(chan struct{}), early: make(chan struct{})}
	go func() {
		defer close(h.done)
		var large []int
		for i, f := range files {
			if f.state.size > earlyHashMax {
				large = append(large, i)
				continue
			}
			h.out[i] = hashUnlessDone(ctx, f)
		}
		close(h.early)
		if len(large) > 0 {
			select {
			case <-later:
			case <-ctx.Done():
			}
		}
		for _, i := range large {
			h.out[i] = hashUnlessDone(ctx, files[i])
		}
	}()
	return h
}

// hashUnlessDone hashes the listed file, or gives ctx's error once it
// has ended.
func hashUnlessDone(ctx context.Context, f sourceFile) hashed {
	if err := ctx.Err(); err != nil {
		return hashed{err: err}
	}
	return hashListed(f)
}

// startHashing hashes files in the background until it is done or ctx
// ends; files not reached by then carry ctx's error. previous, when not
// nil, gives the files of the component's previous manifest by path: a
// file whose state is the one recorded there keeps its hash and is not
// read (see ManifestFile.State). It is called in the background, so that
// opening that manifest overlaps restic's start.
func startHashing(ctx context.Context, files []sourceFile, previous func() *previousManifest) *contentHasher {
	h := &contentHasher{out: make([]hashed, len(files)), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		var prev map[string]ManifestFile
		if previous != nil {
			if h.previous = previous(); h.previous != nil {
				prev = h.previous.files
			}
		}
		for i, f := range files {
			if m, ok := prev[f.path]; ok && unchangedSince(m, f.state) && ctx.Err() == nil {
				h.out[i] = hashed{file: m, stable: true}
				h.carried++
				continue
			}
			h.out[i] = hashUnlessDone(ctx, f)
		}
	}()
	return h
}

// unchangedSince says whether a file whose state is now is the one a
// manifest recorded as m: the same size, times and inode. Without a
// change time or inode (a platform that gives none) nothing is.
func unchangedSince(m ManifestFile, now fileState) bool {
	return reusable(m) && m.Size == now.size && *m.State == (FileState{MTime: now.mtime, CTime: now.ctime, Inode: now.ino})
}

// reusable says whether a manifest entry can be taken over by a later
// backup without reading its file: it has a BLAKE3 digest and a recorded
// state with a change time and inode.
func reusable(m ManifestFile) bool {
	return m.State != nil && m.BLAKE3 != "" && m.State.CTime != 0 && m.State.Inode != 0
}

// listed gives, once every file has been hashed, the entries of all the
// listed files in the walk's order: what the manifest lists when restic's
// counts vouch for the walk's files (storedAsListed). nil when a file
// could not be read or moved while it was.
func (h *contentHasher) listed() []ManifestFile {
	<-h.done
	return stableEntries(h.out)
}

// stableEntries are the entries of hashes, in order, when every file was
// read and held still while it was; nil otherwise.
func stableEntries(hashes []hashed) []ManifestFile {
	out := make([]ManifestFile, len(hashes))
	for i, x := range hashes {
		if x.err != nil || !x.stable {
			return nil
		}
		out[i] = x.file
	}
	return out
}

// wait returns the hashes once every file has been hashed.
func (h *contentHasher) wait() []hashed {
	<-h.done
	return h.out
}

// restoreFunc restores the named files of the backup's restic snapshot
// under dir, each at dir/<path>, as restic stored them.
type restoreFunc func(ctx context.Context, dir string, files []string) error

// settleManifest turns the hashes taken during the backup into the
// manifest's files, after restic has finished. stored are the regular
// files restic's snapshot holds, and only they are listed: files that
// changed during the run, and files the walk did not see, are hashed from
// restic's copy, which restore puts into a temporary directory under
// scratch. A stored file the hasher could not read for a reason other
// than its removal makes the source incomplete. unchanged are the entries
// of files restic stored as the previous manifest describes them
// (unchangedSincePrevious): they are listed as they are, and their files
// are not looked at again.
func settleManifest(ctx context.Context, files []sourceFile, hashes []hashed, stored []string, unchanged map[string]ManifestFile, scratch string, restore restoreFunc) ([]ManifestFile, error) {
	inSnapshot := make(map[string]bool, len(stored))
	for _, p := range stored {
		inSnapshot[p] = true
	}
	out := make([]ManifestFile, 0, len(files))
	var changed, unreadable []string
	for i, f := range files {
		h := hashes[i]
		if !inSnapshot[f.path] {
			continue
		}
		delete(inSnapshot, f.path)
		if m, ok := unchanged[f.path]; ok {
			out = append(out, m)
			continue
		}
		// A file removed, or replaced by a directory, since the walk is
		// not unreadable: restic's copy says what it stored.
		if h.err != nil && !errors.Is(h.err, fs.ErrNotExist) && !errors.Is(h.err, syscall.EISDIR) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			unreadable = append(unreadable, fmt.Sprintf("%s: %v", f.path, unwrapPathError(h.err)))
			continue
		}
		if h.err == nil && h.stable {
			if now, err := os.Lstat(f.path); err == nil && stateOf(now) == f.state {
				out = append(out, h.file)
				continue
			}
		}
		changed = append(changed, f.path)
	}
	if len(unreadable) > 0 {
		if len(unreadable) > 5 {
			unreadable = append(unreadable[:5], fmt.Sprintf("and %d more", len(unreadable)-5))
		}
		return nil, &reasonError{reason: reasonSourceIncomplete, msg: "cannot read " + strings.Join(unreadable, "; ")}
	}
	// Left are the files restic stored that the walk did not list.
	for _, p := range stored {
		if !inSnapshot[p] {
			continue
		}
		if m, ok := unchanged[p]; ok {
			out = append(out, m)
			continue
		}
		changed = append(changed, p)
	}
	if len(changed) == 0 {
		return out, nil
	}
	copies, err := hashStored(ctx, changed, scratch, restore)
	if err != nil {
		return nil, err
	}
	out = append(out, copies...)
	return out, nil
}

// withStates gives each entry that has no recorded state (its hash was
// taken from restic's copy, or carried from an entry that was) the state
// of its file, when the hasher read the same content from a file that held
// still from the walk until now: a later backup then takes the hash over
// without reading the file, where it would read it on every backup while
// restic finds it unchanged. entries is not changed; the result is entries
// itself when no entry gains a state.
func withStates(entries []ManifestFile, files []sourceFile, hashes []hashed) []ManifestFile {
	var at map[string]int
	var out []ManifestFile
	for i, m := range entries {
		if reusable(m) || m.BLAKE3 == "" {
			continue
		}
		if at == nil {
			at = make(map[string]int, len(files))
			for j, f := range files {
				at[f.path] = j
			}
		}
		j, ok := at[m.Path]
		if !ok {
			continue
		}
		h := hashes[j]
		if h.err != nil || !h.stable || !reusable(h.file) || h.file.Size != m.Size || h.file.BLAKE3 != m.BLAKE3 {
			continue
		}
		if now, err := os.Lstat(m.Path); err != nil || stateOf(now) != files[j].state {
			continue
		}
		if out == nil {
			out = slices.Clone(entries)
		}
		out[i] = h.file
	}
	if out == nil {
		return entries
	}
	return out
}

// hashStored hashes restic's copies of files that changed during the
// backup or were not listed before it, leaving out those the snapshot
// does not hold.
func hashStored(ctx context.Context, files []string, scratch string, restore restoreFunc) ([]ManifestFile, error) {
	if scratch != "" {
		if err := os.MkdirAll(scratch, 0o700); err != nil {
			return nil, fmt.Errorf("cannot make the scratch directory %q: %w", scratch, err)
		}
	}
	dir, err := os.MkdirTemp(scratch, "changed-")
	if err != nil {
		return nil, fmt.Errorf("cannot make a directory for the files that changed during the backup: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := restore(ctx, dir, files); err != nil {
		return nil, fmt.Errorf("cannot restore the %d files that changed or appeared during the backup to hash them: %w", len(files), err)
	}
	var out []ManifestFile
	for _, p := range files {
		copied := filepath.Join(dir, p)
		fi, err := os.Lstat(copied)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read restic's copy of %q: %w", p, err)
		}
		m, err := hashFile(copied, backupHash)
		if err != nil {
			return nil, fmt.Errorf("cannot hash restic's copy of %q: %w", p, err)
		}
		m.Path = p
		out = append(out, m)
	}
	return out, nil
}

// maxIncludeBytes bounds the include patterns of one restore of changed
// files; beyond it the whole snapshot is restored instead, which holds
// them too.
const maxIncludeBytes = 256 << 10

// includePatterns are restic include patterns that match exactly the
// files, or none (everything) when they would not fit on a command line.
func includePatterns(files []string) []string {
	out := make([]string, 0, len(files))
	n := 0
	for _, f := range files {
		p := escapeGlob(f)
		n += len(p) + len("--include=") + 1
		if n > maxIncludeBytes {
			return nil
		}
		out = append(out, p)
	}
	return out
}

// escapeGlob makes a path a pattern that matches only itself.
func escapeGlob(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
