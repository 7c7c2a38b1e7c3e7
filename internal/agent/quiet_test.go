package agent

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob"

	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

func TestQuietHinted(t *testing.T) {
	const parent = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name   string
		l      *ledger
		parent string
		want   bool
	}{
		{name: "NoLedger", parent: parent},
		{name: "Changed", l: &ledger{Manifest: "s1", ResticSnapshot: parent}, parent: parent},
		{name: "Guessed", l: &ledger{Manifest: "s1", ResticSnapshot: parent, QuietNext: true, Source: "d1"}, parent: parent, want: true},
		{name: "NoSource", l: &ledger{Manifest: "s1", ResticSnapshot: parent, QuietNext: true}, parent: parent},
		{name: "NoManifest", l: &ledger{ResticSnapshot: parent, QuietNext: true, Source: "d1"}, parent: parent},
		// The parent was forgotten: restic picks its own, and the
		// manifest's counts say nothing about it.
		{name: "NoParent", l: &ledger{Manifest: "s1", ResticSnapshot: parent, QuietNext: true, Source: "d1"}},
		{name: "OtherParent", l: &ledger{Manifest: "s1", ResticSnapshot: parent, QuietNext: true, Source: "d1"}, parent: strings.Repeat("f", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, quietHinted(tc.l, tc.parent)); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestSourceState(t *testing.T) {
	state := fileState{size: 3, mtime: 10, ctime: 11, ino: 12}
	entry := func(p string) ManifestFile {
		return ManifestFile{Path: p, Size: 3, BLAKE3: "ab", State: &FileState{MTime: 10, CTime: 11, Inode: 12}}
	}
	walked := []sourceFile{{"/a", state}, {"/b", state}}
	want := sourceState(walked)
	if got := manifestState([]ManifestFile{entry("/a"), entry("/b")}); got != want {
		t.Errorf("a manifest's digest is not the walk's of the same source: %s, want %s", got, want)
	}
	if got := sourceState([]sourceFile{walked[1], walked[0]}); got != want {
		t.Errorf("the digest depends on the walk's order: %s, want %s", got, want)
	}
	changed := func(f func(*fileState)) fileState { s := state; f(&s); return s }
	for _, tc := range []struct {
		name  string
		files []sourceFile
	}{
		{name: "FileGone", files: []sourceFile{{"/a", state}}},
		{name: "FileAdded", files: []sourceFile{{"/a", state}, {"/b", state}, {"/c", state}}},
		{name: "FileRenamed", files: []sourceFile{{"/a", state}, {"/c", state}}},
		// Paths are ended, not run together: "/a" + "/b" is not "/a/" + "b".
		{name: "PathsRunTogether", files: []sourceFile{{"/a/", state}, {"b", state}}},
		{name: "Size", files: []sourceFile{{"/a", state}, {"/b", changed(func(s *fileState) { s.size++ })}}},
		{name: "ModificationTime", files: []sourceFile{{"/a", state}, {"/b", changed(func(s *fileState) { s.mtime++ })}}},
		{name: "ChangeTime", files: []sourceFile{{"/a", state}, {"/b", changed(func(s *fileState) { s.ctime++ })}}},
		{name: "Inode", files: []sourceFile{{"/a", state}, {"/b", changed(func(s *fileState) { s.ino++ })}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sourceState(tc.files); got == want {
				t.Errorf("the digest of a changed source is the unchanged one's: %s", got)
			}
		})
	}
	// A manifest with a file taken from restic's copy (no state) or
	// without a digest gives none: it is not a source to compare with.
	copied := entry("/b")
	copied.State = nil
	undigested := entry("/b")
	undigested.BLAKE3 = ""
	for _, files := range [][]ManifestFile{{entry("/a"), copied}, {entry("/a"), undigested}} {
		if got := manifestState(files); got != "" {
			t.Errorf("manifestState(%+v) = %q, want none", files, got)
		}
	}
}

func TestStoredAsPrevious(t *testing.T) {
	prev := &previousManifest{resticSnapshot: "r1", files: map[string]ManifestFile{"/a": {}, "/b": {}}}
	for _, tc := range []struct {
		name   string
		sum    *restic.BackupSummary
		prev   *previousManifest
		parent string
		want   bool
	}{
		{name: "Whole", sum: &restic.BackupSummary{FilesUnmodified: 2}, prev: prev, parent: "r1", want: true},
		{name: "OneNew", sum: &restic.BackupSummary{FilesNew: 1, FilesUnmodified: 2}, prev: prev, parent: "r1"},
		{name: "OneChanged", sum: &restic.BackupSummary{FilesChanged: 1, FilesUnmodified: 1}, prev: prev, parent: "r1"},
		{name: "OneGone", sum: &restic.BackupSummary{FilesUnmodified: 1}, prev: prev, parent: "r1"},
		{name: "OtherParent", sum: &restic.BackupSummary{FilesUnmodified: 2}, prev: prev, parent: "r2"},
		{name: "NoParent", sum: &restic.BackupSummary{FilesUnmodified: 2}, prev: &previousManifest{files: prev.files}},
		{name: "NoPrevious", sum: &restic.BackupSummary{}, parent: "r1"},
		{name: "NoSummary", prev: prev, parent: "r1"},
		{name: "NamedTheSame", sum: &restic.BackupSummary{FilesUnmodified: 2, Files: []string{"/b", "/a"}}, prev: prev, parent: "r1", want: true},
		{name: "NamedOthers", sum: &restic.BackupSummary{FilesUnmodified: 2, Files: []string{"/a", "/c"}}, prev: prev, parent: "r1"},
		{name: "NamedFewer", sum: &restic.BackupSummary{FilesUnmodified: 2, Files: []string{"/a"}}, prev: prev, parent: "r1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, storedAsPrevious(tc.sum, tc.prev, tc.parent)); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestQuietGuess(t *testing.T) {
	for _, tc := range []struct {
		name             string
		l                *ledger
		hinted, listable bool
		want             bool
	}{
		{name: "ListableFirst", listable: true, want: true},
		{name: "ListableHeldStill", l: &ledger{QuietNext: true}, listable: true, want: true},
		{name: "ListableMoved", l: &ledger{}, listable: true},
		{name: "ExcludesHinted", l: &ledger{QuietNext: true}, hinted: true, want: true},
		{name: "ExcludesFirst"},
		{name: "ExcludesNotHinted", l: &ledger{QuietNext: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, quietGuess(tc.l, tc.hinted, tc.listable)); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestListableSource(t *testing.T) {
	for _, tc := range []struct {
		name    string
		paths   []string
		exclude []string
		want    bool
	}{
		{name: "Clean", paths: []string{"/data", "/var/lib/db"}, want: true},
		{name: "Root", paths: []string{"/"}, want: true},
		{name: "Excludes", paths: []string{"/data"}, exclude: []string{"*.tmp"}},
		{name: "TrailingSlash", paths: []string{"/data/"}},
		{name: "Dots", paths: []string{"/data/./db"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, listableSource(tc.paths, tc.exclude)); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestStoredAsListed(t *testing.T) {
	dir := t.TempDir()
	var files []sourceFile
	var hashes []hashed
	for _, name := range []string{"a", "b"} {
		p := filepath.Join(dir, name)
		writeFile(t, p, "content of "+name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, sourceFile{path: p, state: stateOf(fi)})
		m, err := hashFile(p, HashBLAKE3)
		if err != nil {
			t.Fatal(err)
		}
		m.Path = p
		hashes = append(hashes, hashed{file: m, stable: true})
	}
	di, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	dirs := []sourceFile{{path: dir, state: stateOf(di)}}
	movedDir := []sourceFile{{path: dir, state: dirs[0].state}}
	movedDir[0].state.mtime++
	want := []ManifestFile{hashes[0].file, hashes[1].file}
	moved := slices.Clone(files)
	moved[1].state.mtime++
	gone := append(slices.Clone(files), sourceFile{path: filepath.Join(dir, "gone"), state: files[0].state})
	unstable := slices.Clone(hashes)
	unstable[0].stable = false
	unread := slices.Clone(hashes)
	unread[1].err = fs.ErrPermission
	twice := []sourceFile{files[0], files[0]}
	// A previous manifest whose entry of b was hashed from restic's copy.
	copied := hashes[1].file
	copied.State = nil
	prevSame := &previousManifest{files: map[string]ManifestFile{files[1].path: copied}}
	other := copied
	other.BLAKE3 = strings.Repeat("0", 64)
	prevOther := &previousManifest{files: map[string]ManifestFile{files[1].path: other}}
	stated := hashes[1].file
	stated.BLAKE3 = strings.Repeat("0", 64)
	stated.State = &FileState{MTime: 1, CTime: 2, Inode: 3}
	prevStated := &previousManifest{files: map[string]ManifestFile{files[1].path: stated}}
	for _, tc := range []struct {
		name   string
		sum    *restic.BackupSummary
		files  []sourceFile
		dirs   []sourceFile
		hashes []hashed
		prev   *previousManifest
		want   []ManifestFile
	}{
		{name: "AllNew", sum: &restic.BackupSummary{FilesNew: 2}, files: files, dirs: dirs, hashes: hashes, want: want},
		{name: "Mixed", sum: &restic.BackupSummary{FilesChanged: 1, FilesUnmodified: 1}, files: files, dirs: dirs, hashes: hashes, want: want},
		{name: "OneMore", sum: &restic.BackupSummary{FilesNew: 3}, files: files, dirs: dirs, hashes: hashes},
		{name: "OneLess", sum: &restic.BackupSummary{FilesNew: 1}, files: files, dirs: dirs, hashes: hashes},
		{name: "NoSummary", files: files, dirs: dirs, hashes: hashes},
		{name: "MovedSinceTheWalk", sum: &restic.BackupSummary{FilesNew: 2}, files: moved, dirs: dirs, hashes: hashes},
		{name: "GoneSinceTheWalk", sum: &restic.BackupSummary{FilesNew: 3}, files: gone, dirs: dirs, hashes: append(slices.Clone(hashes), hashed{stable: true})},
		{name: "MovedWhileHashed", sum: &restic.BackupSummary{FilesNew: 2}, files: files, dirs: dirs, hashes: unstable},
		{name: "Unreadable", sum: &restic.BackupSummary{FilesNew: 2}, files: files, dirs: dirs, hashes: unread},
		{name: "ListedTwice", sum: &restic.BackupSummary{FilesNew: 2}, files: twice, dirs: dirs, hashes: []hashed{hashes[0], hashes[0]}},
		// An entry added, removed or renamed in a directory since the
		// walk, the files themselves as they were.
		{name: "DirectoryMoved", sum: &restic.BackupSummary{FilesNew: 2}, files: files, dirs: movedDir, hashes: hashes},
		{name: "DirectoryGone", sum: &restic.BackupSummary{FilesNew: 2}, files: files, dirs: append(slices.Clone(dirs), sourceFile{path: filepath.Join(dir, "gone")}), hashes: hashes},
		{name: "PreviousFromCopySameContent", sum: &restic.BackupSummary{FilesUnmodified: 2}, files: files, dirs: dirs, hashes: hashes, prev: prevSame, want: want},
		{name: "PreviousFromCopyOtherContent", sum: &restic.BackupSummary{FilesUnmodified: 2}, files: files, dirs: dirs, hashes: hashes, prev: prevOther},
		{name: "PreviousStatedOtherContent", sum: &restic.BackupSummary{FilesChanged: 1, FilesUnmodified: 1}, files: files, dirs: dirs, hashes: hashes, prev: prevStated, want: want},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := storedAsListed(context.Background(), tc.sum, tc.files, tc.dirs, tc.hashes, tc.prev)
			if diff := cmp.Diff(tc.want != nil, ok); diff != "" {
				t.Errorf("vouched: -want +got:\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("files: -want +got:\n%s", diff)
			}
		})
	}
}

func TestStillAsWalked(t *testing.T) {
	dir := t.TempDir()
	var files []sourceFile
	for i := range 50 {
		p := filepath.Join(dir, fmt.Sprintf("f%02d", i))
		writeFile(t, p, "content")
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, sourceFile{path: p, state: stateOf(fi)})
	}
	movedAt := func(i int) []sourceFile {
		out := slices.Clone(files)
		out[i].state.ctime++
		return out
	}
	for _, tc := range []struct {
		name  string
		files []sourceFile
		// stopped: the run is stopped before the look.
		stopped bool
		want    bool
	}{
		{name: "Still", files: files, want: true},
		{name: "None", want: true},
		{name: "FirstMoved", files: movedAt(0)},
		{name: "MiddleMoved", files: movedAt(25)},
		{name: "LastMoved", files: movedAt(49)},
		{name: "Gone", files: append(slices.Clone(files), sourceFile{path: filepath.Join(dir, "gone")})},
		{name: "Stopped", files: files, stopped: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.stopped {
				cancel()
			}
			if diff := cmp.Diff(tc.want, stillAsWalked(ctx, tc.files)); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestNamedAsListed(t *testing.T) {
	files := []sourceFile{{path: "/a"}, {path: "/b"}}
	still := []hashed{{stable: true}, {stable: true}}
	for _, tc := range []struct {
		name   string
		named  []string
		hashes []hashed
		want   bool
	}{
		{name: "Same", named: []string{"/b", "/a"}, hashes: still, want: true},
		{name: "OneMore", named: []string{"/a", "/b", "/c"}, hashes: still},
		{name: "Other", named: []string{"/a", "/c"}, hashes: still},
		{name: "Twice", named: []string{"/a", "/a"}, hashes: still},
		{name: "Moved", named: []string{"/a", "/b"}, hashes: []hashed{{stable: true}, {}}},
		{name: "Unreadable", named: []string{"/a", "/b"}, hashes: []hashed{{stable: true, err: fs.ErrNotExist}, {stable: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, namedAsListed(tc.named, files, tc.hashes)); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

// quietRun backs one source up again and again with real restic, through
// a wrapper that records restic's command lines.
type quietRun struct {
	t       *testing.T
	src     string
	exclude string
	lb      *localBackup
	calls   string
	mu      sync.Mutex
	// replaced: the agent's log said it replaced a quiet restic (the
	// wrapper may be stopped before it records the command).
	replaced bool
}

// newQuietRun makes a source of 20 files and, with exclude, one more file
// the pattern leaves out of every backup.
func newQuietRun(t *testing.T, exclude string) *quietRun {
	q := &quietRun{t: t, src: t.TempDir(), exclude: exclude}
	for i := range 20 {
		writeFile(t, filepath.Join(q.src, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%d", i)), fmt.Sprintf("content %d", i))
	}
	log := funcr.New(func(_, args string) {
		if strings.Contains(args, "asking restic to name the files it stores") {
			q.mu.Lock()
			q.replaced = true
			q.mu.Unlock()
		}
	}, funcr.Options{})
	q.lb = newLocalBackup(t, q.src, log)
	if exclude != "" {
		writeFile(t, filepath.Join(q.src, "d0", "left-out"+strings.TrimPrefix(exclude, "*")), "not backed up")
		q.lb.r.Options.Exclude = []string{exclude}
	}
	q.calls = filepath.Join(t.TempDir(), "calls")
	wrapper := filepath.Join(t.TempDir(), "restic")
	// Each call's line ends in the kind of repository restic was given
	// (rest: the bridge, local: restic's own backend).
	script := fmt.Sprintf("#!/bin/sh\necho \"$* on=${RESTIC_REPOSITORY%%%%:*}\" >> %s\nexec %s \"$@\"\n", q.calls, servers.Binary(t, "restic"))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	q.lb.r.Options.Restic = wrapper
	return q
}

// backup runs backup i and returns restic's commands of it other than the
// check, each as "backup" or "backup --verbose=2", or "ls", after
// "replaced" when the agent stopped a quiet restic for another.
func (q *quietRun) backup(i int) []string {
	t := q.t
	t.Helper()
	if err := os.WriteFile(q.calls, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	q.replaced = false
	q.mu.Unlock()
	if _, err := q.lb.run(context.Background(), i); err != nil {
		t.Fatalf("backup %d: %v", i, err)
	}
	b, err := os.ReadFile(q.calls)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		switch args := strings.Fields(line); {
		case len(args) == 0:
		case args[0] == "backup" && args[len(args)-1] != "on="+q.backend():
			t.Errorf("backup %d: restic backed up through %s, want %s", i, args[len(args)-1], q.backend())
		case args[0] == "backup" && strings.Contains(line, "--verbose=2"):
			got = append(got, "backup --verbose=2")
		case args[0] == "backup" || args[0] == "ls":
			got = append(got, args[0])
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.replaced {
		// The stopped restic, when it got as far as the wrapper's
		// record, is the one quiet backup (on restic's own backend it
		// runs beside the next, whose record may come first).
		if i := slices.Index(got, "backup"); i >= 0 && len(got) > 1 {
			got = slices.Delete(got, i, i+1)
		}
		got = append([]string{"replaced"}, got...)
	}
	return got
}

// backend is the kind of repository restic's backups are given: its own
// local backend on a mounted local storage, the bridge otherwise.
func (q *quietRun) backend() string {
	if q.lb.direct {
		return "local"
	}
	return "rest"
}

// clean checks that the repository holds no lock, and a restic snapshot
// for each of the backups made so far and no other: a restic replaced
// left neither.
func (q *quietRun) clean(name string, backups int) {
	t := q.t
	t.Helper()
	ctx := context.Background()
	repo := layout.ResticPrefix(q.lb.repo.Spec.Path, "nightly", "dump")
	if lock, err := q.lb.bucket.List(&blob.ListOptions{Prefix: repo + "locks/"}).Next(ctx); err != io.EOF {
		t.Errorf("%s: a lock is left in the repository: %+v (%v)", name, lock, err)
	}
	snapshots := 0
	for it := q.lb.bucket.List(&blob.ListOptions{Prefix: repo + "snapshots/"}); ; snapshots++ {
		if _, err := it.Next(ctx); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("cannot list the restic snapshots: %v", err)
		}
	}
	if snapshots != backups {
		t.Errorf("%s: %d restic snapshots in the repository, want one for each of the %d backups", name, snapshots, backups)
	}
}

// holds checks that backup i's manifest gives each file of the source
// the digest of its content now, and lists no other.
func (q *quietRun) holds(i int) {
	t := q.t
	t.Helper()
	ctx := context.Background()
	want := map[string]string{}
	err := filepath.WalkDir(q.src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if q.exclude != "" && strings.HasSuffix(p, strings.TrimPrefix(q.exclude, "*")) {
			return nil
		}
		f, err := hashFile(p, HashBLAKE3)
		want[p] = f.BLAKE3
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := q.lb.bucket.NewReader(ctx, layout.ManifestKey(q.lb.repo.Spec.Path, fmt.Sprintf("app-%d", i), "dump"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	m, err := DecodeManifest(rd, "local", fmt.Sprintf("app-%d", i), "dump")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range m.Files {
		got[f.Path] = f.BLAKE3
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backup %d's manifest is not the source's content: -source +manifest:\n%s", i, diff)
	}
}

// parts is the number of gzip members of backup i's manifest: two when
// its files were encoded while restic ran.
func (q *quietRun) parts(i int) int {
	t := q.t
	t.Helper()
	b, err := q.lb.bucket.ReadAll(context.Background(), layout.ManifestKey(q.lb.repo.Spec.Path, fmt.Sprintf("app-%d", i), "dump"))
	if err != nil {
		t.Fatal(err)
	}
	return gzipMembers(t, b, newManifestKeys("local"))
}

// step runs backup i and checks restic's runs, the manifest, and that it
// is in parts gzip members.
func (q *quietRun) step(name string, i, parts int, want ...string) {
	t := q.t
	t.Helper()
	if diff := cmp.Diff(want, q.backup(i)); diff != "" {
		t.Errorf("%s (backup %d): restic's runs, -want +got:\n%s", name, i, diff)
	}
	q.holds(i)
	if got := q.parts(i); got != parts {
		t.Errorf("%s (backup %d): the manifest is %d gzip members, want %d", name, i, got, parts)
	}
}

// TestQuietBackup shows when a backup of a source with exclude patterns
// runs restic without naming its files, and that every manifest holds the
// digests of the source's files, through the bridge and on restic's own
// local backend (a mounted local storage), where a quiet restic replaced
// leaves no lock either.
func TestQuietBackup(t *testing.T) {
	for name, direct := range map[string]bool{"Bridge": false, "Direct": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testQuietBackup(t, direct)
		})
	}
}

func testQuietBackup(t *testing.T, direct bool) {
	q := newQuietRun(t, "*.swp")
	q.lb.direct = direct
	ctx := context.Background()
	q.step("the first backup", 0, 1, "backup --verbose=2")
	q.step("the last backup had no parent: guessed unchanged", 1, 2, "backup")
	q.step("unchanged", 2, 2, "backup")

	changed := filepath.Join(q.src, "d1", "f4")
	writeFile(t, changed, "changed before the walk")
	q.step("changed before the walk: the quiet restic is replaced", 3, 1, "replaced", "backup --verbose=2")
	q.clean("replaced before its lock", 4)
	q.step("the last backup changed files", 4, 1, "backup --verbose=2")
	q.step("unchanged again", 5, 2, "backup")
	// A walk slower than restic's start: through the bridge the quiet
	// restic is killed while the bridge holds its lock, which is never
	// written; on its own backend it is stopped at its gate, holding its
	// lock, and removes it. The walk lasts until restic's lock is seen in
	// the storage, or for 5 s.
	writeFile(t, changed, "changed again before the walk")
	repo := layout.ResticPrefix(q.lb.repo.Spec.Path, "nightly", "dump")
	locksDir := filepath.Join(q.lb.storeDir, filepath.FromSlash(repo), "locks")
	var lockSeen bool
	q.lb.r.walk = func(paths, exclude []string) ([]sourceFile, []sourceFile, error) {
		files, dirs, err := walkTree(paths, exclude)
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && !lockSeen; time.Sleep(10 * time.Millisecond) {
			entries, _ := os.ReadDir(locksDir)
			lockSeen = len(entries) > 0
		}
		return files, dirs, err
	}
	q.step("changed before a slow walk: the quiet restic is replaced at its lock", 50, 1, "replaced", "backup --verbose=2")
	q.lb.r.walk = nil
	if lockSeen != direct {
		t.Errorf("during the slow walk, the quiet restic's lock was in the storage: %t, want %t (only restic on its own backend writes it before the walk ends)", lockSeen, direct)
	}
	if _, err := q.lb.bucket.List(&blob.ListOptions{Prefix: repo + "keys/"}).Next(ctx); err != nil {
		t.Fatalf("cannot list the restic repository %s: %v", repo, err)
	}
	q.clean("replaced at its lock", 7)
	q.step("the last backup changed files", 51, 1, "backup --verbose=2")
	q.step("unchanged again", 52, 2, "backup")

	// A change after the walk, before restic reads the file: the walk saw
	// the source as the manifest left it, restic's counts show the change.
	q.lb.r.walk = func(paths, exclude []string) ([]sourceFile, []sourceFile, error) {
		files, dirs, err := walkTree(paths, exclude)
		writeFile(t, changed, "changed after the walk, before restic read it")
		return files, dirs, err
	}
	q.step("changed after the walk", 6, 1, "backup", "ls")
	q.lb.r.walk = nil
	q.step("the last backup changed files", 7, 1, "backup --verbose=2")
}

// TestQuietListedBackup shows that a source without exclude patterns is
// backed up without restic naming its files, first backup included,
// unless it moved during the last backup's run.
func TestQuietListedBackup(t *testing.T) {
	q := newQuietRun(t, "")
	q.step("the first backup: restic stored the walk's files", 0, 2, "backup")
	q.step("unchanged", 1, 2, "backup")

	changed := filepath.Join(q.src, "d1", "f4")
	writeFile(t, changed, "changed before the walk")
	writeFile(t, filepath.Join(q.src, "d2", "new"), "added before the walk")
	if err := os.Remove(filepath.Join(q.src, "d0", "f3")); err != nil {
		t.Fatal(err)
	}
	q.step("changed, added and removed before the walk: restic stored the walk's files", 2, 2, "backup")
	q.step("unchanged again", 3, 2, "backup")

	// A change after the walk, before restic reads the file: restic's
	// copy is not what the walk saw, and its files are listed.
	q.lb.r.walk = func(paths, exclude []string) ([]sourceFile, []sourceFile, error) {
		files, dirs, err := walkTree(paths, exclude)
		writeFile(t, changed, "changed after the walk, before restic read it")
		return files, dirs, err
	}
	q.step("changed after the walk", 4, 1, "backup", "ls")
	// A file added after the walk: restic counts one more than listed.
	q.lb.r.walk = func(paths, exclude []string) ([]sourceFile, []sourceFile, error) {
		files, dirs, err := walkTree(paths, exclude)
		writeFile(t, filepath.Join(q.src, "d1", "late"), "added after the walk")
		return files, dirs, err
	}
	q.step("the source moved during the last run: restic names its files; added after the walk", 5, 1, "backup --verbose=2")
	q.lb.r.walk = nil
	q.step("the last run named a file the walk did not list", 6, 1, "backup --verbose=2")
	// Backup 6 gave the late file, hashed from restic's copy by backup 5,
	// the state it has held since (withStates): the source has a digest
	// again, and the manifest's files are encoded while restic runs.
	q.step("held still while named: quiet again", 7, 2, "backup")
	// One file removed and one added after the walk: restic counts as
	// many files as the walk listed, but not the walk's.
	q.lb.r.walk = func(paths, exclude []string) ([]sourceFile, []sourceFile, error) {
		files, dirs, err := walkTree(paths, exclude)
		if err := os.Remove(filepath.Join(q.src, "d1", "late")); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(q.src, "d0", "later"), "added after the walk")
		return files, dirs, err
	}
	q.step("one removed and one added after the walk", 8, 1, "backup", "ls")
	q.lb.r.walk = nil
}
