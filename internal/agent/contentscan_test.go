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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gocloud.dev/blob/memblob"

	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

func TestConcurrentManifestEqualsSequential(t *testing.T) {
	root := t.TempDir()
	tree := map[string]string{}
	for i := range 200 {
		tree[fmt.Sprintf("d%d/f%03d", i%7, i)] = fmt.Sprintf("content of file %d %s", i, string(make([]byte, i*97)))
	}
	writeTree(t, root, tree)
	files, err := walkSource([]string{root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := hashSequentially(t, files)
	restore := func(context.Context, string, []string) error {
		t.Errorf("restic's copy was asked for, but no file changed")
		return nil
	}
	var stored []string
	for _, f := range files {
		stored = append(stored, f.path)
	}
	got, err := settleManifest(context.Background(), files, startHashing(context.Background(), files, nil).wait(), stored, nil, t.TempDir(), restore)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, noState); diff != "" {
		t.Errorf("the manifest built during the backup differs from the one built before it: -want +got:\n%s", diff)
	}
}

func TestSettleManifest(t *testing.T) {
	permissionDenied := &os.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}
	cases := map[string]struct {
		reason string
		// during changes the source after it was hashed, before restic
		// ends.
		during func(t *testing.T, root string)
		// hashErr replaces the hasher's outcome of b.txt.
		hashErr error
		// listed are the files restic's snapshot holds, by relative path;
		// nil means a.txt and b.txt.
		listed []string
		// stored is the content restic's copy has, by relative path.
		stored map[string]string
		// unchanged are the files restic found unchanged since the
		// previous manifest, with the content that manifest describes.
		unchanged   map[string]string
		want        map[string]string
		wantAsked   []string
		wantErrKind string
	}{
		"Unchanged": {
			reason: "Files that did not change are described by the hasher's read; restic's copy is not needed.",
			want:   map[string]string{"a.txt": "alpha", "b.txt": "bee"},
		},
		"ChangedDuringBackup": {
			reason:    "A file written while restic ran is described by restic's copy, not by the hasher's read.",
			during:    func(t *testing.T, root string) { write(t, filepath.Join(root, "b.txt"), "bee, rewritten") },
			stored:    map[string]string{"b.txt": "bee, as restic read it"},
			want:      map[string]string{"a.txt": "alpha", "b.txt": "bee, as restic read it"},
			wantAsked: []string{"b.txt"},
		},
		"RemovedNotStored": {
			reason: "A file removed before restic read it is not in the snapshot and leaves the manifest.",
			during: func(t *testing.T, root string) { _ = os.Remove(filepath.Join(root, "b.txt")) },
			listed: []string{"a.txt"},
			want:   map[string]string{"a.txt": "alpha"},
		},
		"NotStoredUnchanged": {
			reason: "A file restic did not store leaves the manifest even when the hasher read it unchanged.",
			listed: []string{"b.txt"},
			want:   map[string]string{"b.txt": "bee"},
		},
		"CreatedDuringBackup": {
			reason:    "A file created after the walk that restic stored is in the manifest with restic's copy.",
			during:    func(t *testing.T, root string) { write(t, filepath.Join(root, "c.txt"), "sea, grown since") },
			listed:    []string{"a.txt", "b.txt", "c.txt"},
			stored:    map[string]string{"c.txt": "sea"},
			want:      map[string]string{"a.txt": "alpha", "b.txt": "bee", "c.txt": "sea"},
			wantAsked: []string{"c.txt"},
		},
		"RemovedAfterRestic": {
			reason:    "A file removed after restic stored it keeps restic's copy in the manifest.",
			during:    func(t *testing.T, root string) { _ = os.Remove(filepath.Join(root, "b.txt")) },
			stored:    map[string]string{"b.txt": "bee"},
			want:      map[string]string{"a.txt": "alpha", "b.txt": "bee"},
			wantAsked: []string{"b.txt"},
		},
		"ReplacedByDirectory": {
			reason:    "A file replaced by a directory before the hasher came to it keeps restic's copy in the manifest.",
			hashErr:   &fs.PathError{Op: "read", Path: "b.txt", Err: syscall.EISDIR},
			stored:    map[string]string{"b.txt": "bee"},
			want:      map[string]string{"a.txt": "alpha", "b.txt": "bee"},
			wantAsked: []string{"b.txt"},
		},
		"Unreadable": {
			reason:      "A file the hasher cannot read makes the source incomplete, as restic reports it.",
			hashErr:     permissionDenied,
			wantErrKind: reasonSourceIncomplete,
		},
		"UnchangedSincePrevious": {
			reason:    "A file restic stored as the previous manifest describes it keeps that entry, whatever the disk shows now; restic's copy is not needed.",
			during:    func(t *testing.T, root string) { write(t, filepath.Join(root, "b.txt"), "bee, rewritten") },
			unchanged: map[string]string{"b.txt": "bee, as the previous manifest has it"},
			want:      map[string]string{"a.txt": "alpha", "b.txt": "bee, as the previous manifest has it"},
		},
		"UnchangedUnreadable": {
			reason:    "A file restic did not need to read, because it is unchanged, does not need the hasher either.",
			hashErr:   permissionDenied,
			unchanged: map[string]string{"b.txt": "bee"},
			want:      map[string]string{"a.txt": "alpha", "b.txt": "bee"},
		},
		"UnchangedNotWalked": {
			reason:    "A stored file the walk did not see, unchanged since the previous manifest, keeps that entry and is not restored.",
			during:    func(t *testing.T, root string) { write(t, filepath.Join(root, "c.txt"), "sea, grown since") },
			listed:    []string{"a.txt", "b.txt", "c.txt"},
			unchanged: map[string]string{"c.txt": "sea"},
			want:      map[string]string{"a.txt": "alpha", "b.txt": "bee", "c.txt": "sea"},
		},
		"UnchangedNotStored": {
			reason:    "An entry of the previous manifest is listed only for a file restic stored.",
			listed:    []string{"a.txt"},
			unchanged: map[string]string{"b.txt": "bee"},
			want:      map[string]string{"a.txt": "alpha"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, map[string]string{"a.txt": "alpha", "b.txt": "bee"})
			files, err := walkSource([]string{root}, nil)
			if err != nil {
				t.Fatal(err)
			}
			hashes := startHashing(context.Background(), files, nil).wait()
			if tc.hashErr != nil {
				hashes[1] = hashed{err: tc.hashErr}
			}
			if tc.during != nil {
				// Make a change visible even where file times are coarse.
				time.Sleep(10 * time.Millisecond)
				tc.during(t, root)
			}
			var asked []string
			restore := func(_ context.Context, dir string, paths []string) error {
				for _, p := range paths {
					rel, _ := filepath.Rel(root, p)
					asked = append(asked, rel)
					if content, ok := tc.stored[rel]; ok {
						writeTree(t, dir, map[string]string{p: content})
					}
				}
				return nil
			}
			listed := tc.listed
			if listed == nil {
				listed = []string{"a.txt", "b.txt"}
			}
			var stored []string
			for _, rel := range listed {
				stored = append(stored, filepath.Join(root, rel))
			}
			unchanged := map[string]ManifestFile{}
			for rel, content := range tc.unchanged {
				p := filepath.Join(root, rel)
				unchanged[p] = ManifestFile{Path: p, Size: int64(len(content)), BLAKE3: sum(content)}
			}
			got, err := settleManifest(context.Background(), files, hashes, stored, unchanged, t.TempDir(), restore)
			var re *reasonError
			gotKind := ""
			if errors.As(err, &re) {
				gotKind = re.reason
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantErrKind, gotKind); diff != "" {
				t.Errorf("%s\nreason: -want +got:\n%s", tc.reason, diff)
			}
			var want []ManifestFile
			for rel, content := range tc.want {
				want = append(want, ManifestFile{Path: filepath.Join(root, rel), Size: int64(len(content)), BLAKE3: sum(content)})
			}
			byPath := cmpopts.SortSlices(func(a, b ManifestFile) bool { return a.Path < b.Path })
			if diff := cmp.Diff(want, got, byPath, cmpopts.EquateEmpty(), noState); diff != "" {
				t.Errorf("%s\nmanifest: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantAsked, asked); diff != "" {
				t.Errorf("%s\nfiles taken from restic: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIncludePatterns(t *testing.T) {
	cases := map[string]struct {
		reason string
		files  []string
		want   []string
	}{
		"Plain": {
			reason: "Ordinary paths are their own patterns.",
			files:  []string{"/data/a.txt"},
			want:   []string{"/data/a.txt"},
		},
		"GlobCharacters": {
			reason: "Glob characters in a name are escaped, so the pattern matches that file only.",
			files:  []string{"/data/[x]*?.txt"},
			want:   []string{`/data/\[x\]\*\?.txt`},
		},
		"TooMany": {
			reason: "Patterns beyond a command line's room give way to the whole snapshot.",
			files:  manyPaths(20000),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := includePatterns(tc.files)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nincludePatterns(): -want +got:\n%s", tc.reason, diff)
			}
			for i, p := range got {
				if ok, err := filepath.Match(p, tc.files[i]); err != nil || !ok {
					t.Errorf("%s\npattern %q does not match %q", tc.reason, p, tc.files[i])
				}
			}
		})
	}
}

func manyPaths(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("/data/some/directory/file-%06d.dat", i)
	}
	return out
}

func TestUnlockStale(t *testing.T) {
	const prefix = "default/app/repository/"
	cases := map[string]struct {
		reason     string
		objects    []string
		wantUnlock bool
	}{
		"NoLocks": {
			reason:  "Without lock files restic's unlock has nothing to do and is not run.",
			objects: []string{prefix + "config", prefix + "data/00/0011"},
		},
		"Locked": {
			reason:     "A lock file may be stale: restic's unlock runs and decides.",
			objects:    []string{prefix + "config", prefix + "locks/" + strings.Repeat("ab", 32)},
			wantUnlock: true,
		},
		"HalfWrittenLock": {
			reason:  "A file a killed writer left under a temporary name is no lock: restic never reads it.",
			objects: []string{prefix + "config", prefix + "locks/" + strings.Repeat("ab", 32) + "-tmp-5"},
		},
		"OtherRepositoryLocked": {
			reason:  "A lock of another repository in the same storage is not this one's.",
			objects: []string{prefix + "config", "default/other/repository/locks/abcdef"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := memblob.OpenBucket(nil)
			defer b.Close()
			for _, k := range tc.objects {
				if err := b.WriteAll(ctx, k, []byte("x"), nil); err != nil {
					t.Fatal(err)
				}
			}
			unlocked := false
			err := unlockStale(ctx, b, prefix, func(context.Context) error { unlocked = true; return nil })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantUnlock, unlocked); diff != "" {
				t.Errorf("%s\nunlock run: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRestoredHasher(t *testing.T) {
	target := t.TempDir()
	writeTree(t, target, map[string]string{"data/a": "alpha", "data/b": "be", "data/c": "sea"})
	files := []ManifestFile{
		{Path: "/data/a", Size: 5, BLAKE3: sum("alpha")},
		{Path: "/data/b", Size: 3, BLAKE3: sum("bee")},
		{Path: "/data/c", Size: 3, BLAKE3: sum("sea")},
		{Path: "/data/missing", Size: 1, BLAKE3: sum("x")},
	}
	h := newRestoredHasher(files, backupHash, placement{target: target})
	report := h.finished(filepath.Join(target, "data"))
	// a is reported done; b is reported while only partly written; c
	// and missing are never reported; d is not in the manifest.
	for _, item := range []string{"/a", "/b", "/d", "/"} {
		report(item)
	}
	h.mu.Lock()
	for len(h.done) < 2 {
		h.mu.Unlock()
		time.Sleep(time.Millisecond)
		h.mu.Lock()
	}
	h.mu.Unlock()
	write(t, filepath.Join(target, "data/b"), "bee")
	h.wait()
	got := map[string]string{}
	for _, f := range files {
		m, err := h.get(f)
		switch {
		case errors.Is(err, os.ErrNotExist):
			got[f.Path] = "missing"
		case err != nil:
			t.Fatal(err)
		default:
			got[f.Path] = fmt.Sprintf("%d %s", m.Size, m.BLAKE3)
		}
	}
	want := map[string]string{
		"/data/a": fmt.Sprintf("5 %s", sum("alpha")), "/data/b": fmt.Sprintf("3 %s", sum("bee")),
		"/data/c": fmt.Sprintf("3 %s", sum("sea")), "/data/missing": "missing",
	}
	if diff := cmp.Diff(want, got, noState); diff != "" {
		t.Errorf("restoredHasher.get(): a file hashed early or never reported is hashed as it is at the end: -want +got:\n%s", diff)
	}
}

// TestSettleManifestFromRestic runs the fallback with real restic: files
// rewritten after restic read them are described by what restic stored,
// names with glob characters included.
func TestSettleManifestFromRestic(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	writeTree(t, root, map[string]string{"a.txt": "alpha", "b.txt": "bee", "odd/[x]*?.txt": "odd", "odd/x.txt": "plain"})
	files, err := walkSource([]string{root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := restic.New(restic.Options{Binary: servers.Binary(t, "restic"), Repository: t.TempDir(), Password: "settle"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Init(ctx); err != nil {
		t.Fatal(err)
	}
	hashing := startHashing(ctx, files, nil)
	backup, err := rc.Backup(ctx, restic.BackupOptions{Paths: []string{root}, Host: "settle"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hashes := hashing.wait()
	time.Sleep(10 * time.Millisecond)
	write(t, filepath.Join(root, "b.txt"), "bee, rewritten after restic read it")
	write(t, filepath.Join(root, "odd/[x]*?.txt"), "odd, rewritten")
	restore := func(ctx context.Context, dir string, paths []string) error {
		_, err := rc.Restore(ctx, backup.SnapshotID, dir, nil, includePatterns(paths)...)
		return err
	}
	stored, err := rc.Files(ctx, backup.SnapshotID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := settleManifest(ctx, files, hashes, stored, nil, t.TempDir(), restore)
	if err != nil {
		t.Fatal(err)
	}
	var want []ManifestFile
	for _, rel := range []string{"a.txt", "odd/x.txt", "b.txt", "odd/[x]*?.txt"} {
		content := map[string]string{"a.txt": "alpha", "b.txt": "bee", "odd/[x]*?.txt": "odd", "odd/x.txt": "plain"}[rel]
		want = append(want, ManifestFile{Path: filepath.Join(root, rel), Size: int64(len(content)), BLAKE3: sum(content)})
	}
	if diff := cmp.Diff(want, got, noState); diff != "" {
		t.Errorf("settleManifest() with restic's copies: -want +got:\n%s", diff)
	}
}

// TestStoredManifestFromRestic backs up with real restic a source that
// changes between the walk and restic's read: restic's snapshot decides
// which files the manifest lists, and their hashes are what it stored.
func TestStoredManifestFromRestic(t *testing.T) {
	cases := map[string]struct {
		reason string
		// between changes the source after the walk, before restic runs.
		between func(t *testing.T, root string)
		want    map[string]string
	}{
		"Unchanged": {
			reason: "Without changes the manifest lists the walked files.",
			want:   map[string]string{"a.txt": "alpha", "b.txt": "bee"},
		},
		"Created": {
			reason: "A file created after the walk and stored by restic is listed with the content restic read.",
			between: func(t *testing.T, root string) {
				writeTree(t, root, map[string]string{"new/c.txt": "sea", "new/[odd]*.txt": "odd"})
			},
			want: map[string]string{"a.txt": "alpha", "b.txt": "bee", "new/c.txt": "sea", "new/[odd]*.txt": "odd"},
		},
		"Removed": {
			reason:  "A file removed after the walk, which restic did not store, is not listed.",
			between: func(t *testing.T, root string) { _ = os.Remove(filepath.Join(root, "b.txt")) },
			want:    map[string]string{"a.txt": "alpha"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			writeTree(t, root, map[string]string{"a.txt": "alpha", "b.txt": "bee"})
			rc, err := restic.New(restic.Options{Binary: servers.Binary(t, "restic"), Repository: t.TempDir(), Password: "stored"})
			if err != nil {
				t.Fatal(err)
			}
			if err := rc.Init(ctx); err != nil {
				t.Fatal(err)
			}
			files, err := walkSource([]string{root}, nil)
			if err != nil {
				t.Fatal(err)
			}
			hashing := startHashing(ctx, files, nil)
			hashing.wait()
			if tc.between != nil {
				tc.between(t, root)
			}
			backup, err := rc.Backup(ctx, restic.BackupOptions{Paths: []string{root}, Host: "stored", ListFiles: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := settleManifest(ctx, files, hashing.wait(), backup.Files, nil, t.TempDir(), restoreFrom(rc, backup.SnapshotID))
			if err != nil {
				t.Fatal(err)
			}
			var want []ManifestFile
			for rel, content := range tc.want {
				want = append(want, ManifestFile{Path: filepath.Join(root, rel), Size: int64(len(content)), BLAKE3: sum(content)})
			}
			byPath := cmpopts.SortSlices(func(a, b ManifestFile) bool { return a.Path < b.Path })
			if diff := cmp.Diff(want, got, byPath, cmpopts.EquateEmpty(), noState); diff != "" {
				t.Errorf("%s\nstoredManifest(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// noState compares manifest files without the state a later backup reads
// (TestStartHashingTakesUnchanged tests it).
var noState = cmpopts.IgnoreFields(ManifestFile{}, "State")

// TestStartHashingTakesUnchanged: a file whose size, times and inode are
// those the previous manifest recorded keeps that manifest's hash and is
// not read again; any other file is hashed from its content. The previous
// manifest's hash of the unchanged file is made up, so that taking it over
// shows.
func TestStartHashingTakesUnchanged(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"same.txt": "same", "touched.txt": "touched", "rewritten.txt": "abcd", "new.txt": "new"})
	before, err := walkSource([]string{root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	prev := map[string]ManifestFile{}
	for _, h := range startHashing(context.Background(), before, nil).wait() {
		if h.file.State == nil {
			t.Fatalf("%s was hashed from the source without its state", h.file.Path)
		}
		prev[h.file.Path] = h.file
	}
	delete(prev, filepath.Join(root, "new.txt"))
	same := prev[filepath.Join(root, "same.txt")]
	same.BLAKE3 = sum("the hash the previous backup recorded")
	prev[same.Path] = same

	// touched.txt: only its modification time moves. rewritten.txt: new
	// content of the same size, its modification time put back (its change
	// time still moves, as it does for any write).
	p := filepath.Join(root, "touched.txt")
	if err := os.Chtimes(p, time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	p = filepath.Join(root, "rewritten.txt")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	write(t, p, "wxyz")
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}

	files, err := walkSource([]string{root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := startHashing(context.Background(), files, func() *previousManifest { return &previousManifest{files: prev} })
	got := map[string]string{}
	for _, r := range h.wait() {
		if r.err != nil || !r.stable {
			t.Fatalf("%s: err %v, stable %v", r.file.Path, r.err, r.stable)
		}
		got[filepath.Base(r.file.Path)] = r.file.BLAKE3
	}
	want := map[string]string{
		"same.txt":      sum("the hash the previous backup recorded"),
		"touched.txt":   sum("touched"),
		"rewritten.txt": sum("wxyz"),
		"new.txt":       sum("new"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hashes: -want +got:\n%s", diff)
	}
	if h.carried != 1 {
		t.Errorf("%d hashes taken over, want 1 (same.txt)", h.carried)
	}
}

func TestUnchangedSince(t *testing.T) {
	st := fileState{size: 4, mtime: 10, ctime: 20, ino: 30}
	recorded := ManifestFile{Size: 4, BLAKE3: "h", State: &FileState{MTime: 10, CTime: 20, Inode: 30}}
	cases := map[string]struct {
		m    ManifestFile
		now  fileState
		want bool
	}{
		"Same":            {m: recorded, now: st, want: true},
		"Size":            {m: recorded, now: fileState{size: 5, mtime: 10, ctime: 20, ino: 30}},
		"ModTime":         {m: recorded, now: fileState{size: 4, mtime: 11, ctime: 20, ino: 30}},
		"ChangeTime":      {m: recorded, now: fileState{size: 4, mtime: 10, ctime: 21, ino: 30}},
		"Inode":           {m: recorded, now: fileState{size: 4, mtime: 10, ctime: 20, ino: 31}},
		"NoRecordedState": {m: ManifestFile{Size: 4, BLAKE3: "h"}, now: st},
		"NoBLAKE3":        {m: ManifestFile{Size: 4, SHA256: "h", State: recorded.State}, now: st},
		"PlatformWithout": {m: ManifestFile{Size: 4, BLAKE3: "h", State: &FileState{MTime: 10}}, now: fileState{size: 4, mtime: 10}},
	}
	for name, tc := range cases {
		if diff := cmp.Diff(tc.want, unchangedSince(tc.m, tc.now)); diff != "" {
			t.Errorf("%s: -want +got:\n%s", name, diff)
		}
	}
}

// TestPendingHasher: what restic reports before the manifest is read is
// kept and hashed once expect names the manifest's files, with the
// manifest's algorithm; finish hashes the files restic never reported.
func TestPendingHasher(t *testing.T) {
	target := t.TempDir()
	writeTree(t, target, map[string]string{"data/a": "alpha", "data/b": "bee"})
	files := []ManifestFile{
		{Path: "/data/a", Size: 5, SHA256: sha256Sum("alpha")},
		{Path: "/data/b", Size: 3, SHA256: sha256Sum("bee")},
	}
	h := newPendingHasher(placement{target: target})
	h.finished(filepath.Join(target, "data"))("/a")
	h.mu.Lock()
	early := len(h.early)
	h.mu.Unlock()
	h.expect(files, HashSHA256)
	h.finish([]string{"/data/a", "/data/b"})
	got := map[string]string{}
	for p, d := range h.done {
		got[strings.TrimPrefix(p, target)] = fmt.Sprintf("%d %s", d.file.Size, d.file.SHA256)
	}
	want := map[string]string{"/data/a": fmt.Sprintf("5 %s", sha256Sum("alpha")), "/data/b": fmt.Sprintf("3 %s", sha256Sum("bee"))}
	if diff := cmp.Diff([]any{1, want}, []any{early, got}); diff != "" {
		t.Errorf("reports kept before the manifest, and the hashes taken by the workers: -want +got:\n%s", diff)
	}
}

func TestWithStates(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a")
	writeFile(t, p, "content")
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	walked := []sourceFile{{path: p, state: stateOf(fi)}}
	h := hashListed(walked[0])
	if h.err != nil || !h.stable || !reusable(h.file) {
		t.Fatalf("the file was not hashed with a reusable state: %+v", h)
	}
	fresh := h.file
	copied := fresh
	copied.State = nil
	other := copied
	other.BLAKE3 = strings.Repeat("0", 64)
	sha := ManifestFile{Path: p, Size: copied.Size, SHA256: strings.Repeat("1", 64)}
	moved := []sourceFile{{path: p, state: walked[0].state}}
	moved[0].state.mtime++
	still := []hashed{{file: fresh, stable: true}}
	for _, tc := range []struct {
		name    string
		entries []ManifestFile
		files   []sourceFile
		hashes  []hashed
		want    []ManifestFile
	}{
		{name: "FromCopySameContent", entries: []ManifestFile{copied}, files: walked, hashes: still, want: []ManifestFile{fresh}},
		{name: "AlreadyStated", entries: []ManifestFile{fresh}, files: walked, hashes: still, want: []ManifestFile{fresh}},
		{name: "OtherContent", entries: []ManifestFile{other}, files: walked, hashes: still, want: []ManifestFile{other}},
		{name: "SHA256Entry", entries: []ManifestFile{sha}, files: walked, hashes: still, want: []ManifestFile{sha}},
		{name: "MovedWhileHashed", entries: []ManifestFile{copied}, files: walked, hashes: []hashed{{file: fresh}}, want: []ManifestFile{copied}},
		{name: "MovedSinceTheWalk", entries: []ManifestFile{copied}, files: moved, hashes: still, want: []ManifestFile{copied}},
		{name: "NotListed", entries: []ManifestFile{copied}, want: []ManifestFile{copied}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.entries)
			if diff := cmp.Diff(tc.want, withStates(tc.entries, tc.files, tc.hashes)); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
			if diff := cmp.Diff(before, tc.entries); diff != "" {
				t.Errorf("the entries given were changed: -before +after:\n%s", diff)
			}
		})
	}
}

// A first backup's hasher reads the small files at once and the large ones
// only once restic is let through: a large file changed before then is
// hashed as it is after the change, a small one as it was.
func TestHashingFirstHoldsLargeFiles(t *testing.T) {
	root := t.TempDir()
	small, large := filepath.Join(root, "small.txt"), filepath.Join(root, "large.bin")
	write(t, small, "small")
	write(t, large, strings.Repeat("x", earlyHashMax+1))
	files, _, err := walkTree([]string{root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	later := make(chan struct{})
	h := startHashingFirst(context.Background(), files, later)
	<-h.early
	// The large file has not been read yet: it is hashed from what it
	// holds once restic is let through.
	write(t, large, strings.Repeat("y", earlyHashMax+1))
	select {
	case <-h.done:
		t.Fatal("the hasher finished before restic was let through")
	default:
	}
	close(later)
	got := map[string]string{}
	for i, x := range h.wait() {
		got[filepath.Base(files[i].path)] = x.file.BLAKE3
	}
	want := map[string]string{
		"small.txt": sum("small"),
		"large.bin": sum(strings.Repeat("y", earlyHashMax+1)),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hashes, -want +got:\n%s", diff)
	}
}
