package agent

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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

// TestQuietBackup runs backups of one source with real restic, through a
// wrapper that records each restic command line, and checks when restic
// is asked to name its files and that every manifest holds the digests of
// the files restic stored: an unchanged source gets no line per file once
// a backup found it unchanged; a source changed since is caught before
// restic's lock and restic is run again to name its files; a change after
// the walk shows in restic's counts and the snapshot's files are listed.
func TestQuietBackup(t *testing.T) {
	src := t.TempDir()
	for i := range 20 {
		writeFile(t, filepath.Join(src, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%d", i)), fmt.Sprintf("content %d", i))
	}
	// The agent's log says when it replaced a quiet restic: the wrapper
	// may be stopped before it records the command.
	var mu sync.Mutex
	var replaced bool
	log := funcr.New(func(_, args string) {
		if strings.Contains(args, "asking restic to name the files it stores") {
			mu.Lock()
			replaced = true
			mu.Unlock()
		}
	}, funcr.Options{})
	lb := newLocalBackup(t, src, log)
	calls := filepath.Join(t.TempDir(), "calls")
	wrapper := filepath.Join(t.TempDir(), "restic")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\nexec %s \"$@\"\n", calls, servers.Binary(t, "restic"))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	lb.r.Options.Restic = wrapper
	ctx := context.Background()

	// backup runs backup i and returns restic's commands of it other than
	// the check, each as "backup" or "backup --verbose=2", or "ls", after
	// "replaced" when the agent stopped a quiet restic for another.
	backup := func(i int) []string {
		t.Helper()
		if err := os.WriteFile(calls, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		replaced = false
		mu.Unlock()
		if _, err := lb.run(ctx, i); err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		b, err := os.ReadFile(calls)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			switch args := strings.Fields(line); {
			case len(args) == 0:
			case args[0] == "backup" && strings.Contains(line, "--verbose=2"):
				got = append(got, "backup --verbose=2")
			case args[0] == "backup" || args[0] == "ls":
				got = append(got, args[0])
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if replaced {
			// The stopped restic, when it got as far as the wrapper's
			// record, is the first.
			if len(got) > 1 && got[0] == "backup" {
				got = got[1:]
			}
			got = append([]string{"replaced"}, got...)
		}
		return got
	}
	// holds checks that backup i's manifest gives each file of the source
	// the digest of its content now.
	holds := func(i int) {
		t.Helper()
		want := map[string]string{}
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			f, err := hashFile(p, HashBLAKE3)
			want[p] = f.BLAKE3
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		rd, err := lb.bucket.NewReader(ctx, layout.ManifestKey(lb.repo.Spec.Path, fmt.Sprintf("app-%d", i), "dump"), nil)
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
	parts := func(i int) int {
		t.Helper()
		b, err := lb.bucket.ReadAll(ctx, layout.ManifestKey(lb.repo.Spec.Path, fmt.Sprintf("app-%d", i), "dump"))
		if err != nil {
			t.Fatal(err)
		}
		return gzipMembers(t, b, newManifestKeys("local"))
	}
	step := func(name string, i int, want ...string) {
		t.Helper()
		if diff := cmp.Diff(want, backup(i)); diff != "" {
			t.Errorf("%s (backup %d): restic's runs, -want +got:\n%s", name, i, diff)
		}
		holds(i)
		wantParts := 1
		if cmp.Equal(want, []string{"backup"}) {
			wantParts = 2
		}
		if got := parts(i); got != wantParts {
			t.Errorf("%s (backup %d): the manifest is %d gzip members, want %d", name, i, got, wantParts)
		}
	}

	step("the first backup", 0, "backup --verbose=2")
	step("the last backup had no parent: guessed unchanged", 1, "backup")
	step("unchanged", 2, "backup")

	changed := filepath.Join(src, "d1", "f4")
	writeFile(t, changed, "changed before the walk")
	step("changed before the walk: the quiet restic is replaced", 3, "replaced", "backup --verbose=2")
	step("the last backup changed files", 4, "backup --verbose=2")
	step("unchanged again", 5, "backup")
	// A walk slower than restic's start: the quiet restic is killed while
	// the bridge holds its lock, which is never written.
	writeFile(t, changed, "changed again before the walk")
	lb.r.walk = func(paths, exclude []string) ([]sourceFile, error) {
		files, err := walkSource(paths, exclude)
		time.Sleep(3 * time.Second)
		return files, err
	}
	step("changed before a slow walk: the quiet restic is replaced at its lock", 50, "replaced", "backup --verbose=2")
	lb.r.walk = nil
	repo := layout.ResticPrefix(lb.repo.Spec.Path, "nightly", "dump")
	if _, err := lb.bucket.List(&blob.ListOptions{Prefix: repo + "keys/"}).Next(ctx); err != nil {
		t.Fatalf("cannot list the restic repository %s: %v", repo, err)
	}
	if lock, err := lb.bucket.List(&blob.ListOptions{Prefix: repo + "locks/"}).Next(ctx); err != io.EOF {
		t.Errorf("a lock is left after the backups: %+v (%v)", lock, err)
	}
	step("the last backup changed files", 51, "backup --verbose=2")
	step("unchanged again", 52, "backup")

	// A change after the walk, before restic reads the file: the walk saw
	// the source as the manifest left it, restic's counts show the change.
	lb.r.walk = func(paths, exclude []string) ([]sourceFile, error) {
		files, err := walkSource(paths, exclude)
		writeFile(t, changed, "changed after the walk, before restic read it")
		return files, err
	}
	step("changed after the walk", 6, "backup", "ls")
	lb.r.walk = nil
	step("the last backup changed files", 7, "backup --verbose=2")
}
