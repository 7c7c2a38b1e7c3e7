package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stashplane/stashplane/internal/restic"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWalkSource(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"b.txt": "bee", "a/x.db": "database", "a/x.tmp": "scratch", "cache/big": "cached", "a/cache/k": "cached too",
	})
	if err := os.Symlink("b.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	emptyDir := t.TempDir()
	cases := map[string]struct {
		reason     string
		paths      []string
		exclude    []string
		want       []ManifestFile
		wantReason string
	}{
		"AllFilesSorted": {
			reason: "Every regular file is listed with its size and hash, sorted by path; links are not files.",
			paths:  []string{root},
			want: []ManifestFile{
				{Path: root + "/a/cache/k", Size: 10, SHA256: sum("cached too")},
				{Path: root + "/a/x.db", Size: 8, SHA256: sum("database")},
				{Path: root + "/a/x.tmp", Size: 7, SHA256: sum("scratch")},
				{Path: root + "/b.txt", Size: 3, SHA256: sum("bee")},
				{Path: root + "/cache/big", Size: 6, SHA256: sum("cached")},
			},
		},
		"Excludes": {
			reason:  "A base-name glob leaves out files anywhere; a directory name leaves out every cache directory.",
			paths:   []string{root},
			exclude: []string{"*.tmp", "cache"},
			want: []ManifestFile{
				{Path: root + "/a/x.db", Size: 8, SHA256: sum("database")},
				{Path: root + "/b.txt", Size: 3, SHA256: sum("bee")},
			},
		},
		"AnchoredExclude": {
			reason:  "A pattern starting with / matches from the root only.",
			paths:   []string{root},
			exclude: []string{root + "/cache", "/a/x.db"},
			want: []ManifestFile{
				{Path: root + "/a/cache/k", Size: 10, SHA256: sum("cached too")},
				{Path: root + "/a/x.db", Size: 8, SHA256: sum("database")},
				{Path: root + "/a/x.tmp", Size: 7, SHA256: sum("scratch")},
				{Path: root + "/b.txt", Size: 3, SHA256: sum("bee")},
			},
		},
		"Empty": {
			reason: "An empty directory has no files, and that is no error.",
			paths:  []string{emptyDir},
		},
		"Missing": {
			reason:     "A path that does not exist is SourceNotFound, before restic runs.",
			paths:      []string{emptyDir, filepath.Join(emptyDir, "not-mounted")},
			wantReason: ReasonSourceNotFound,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			listed, err := walkSource(tc.paths, tc.exclude)
			got := hashSequentially(t, listed)
			var se *reasonError
			gotReason := ""
			if errors.As(err, &se) {
				gotReason = se.reason
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantReason, gotReason); diff != "" {
				t.Errorf("%s\nreason: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nfiles: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// hashSequentially hashes listed files one after another, as a manifest
// was built before it was built during the backup.
func hashSequentially(t *testing.T, files []sourceFile) []ManifestFile {
	t.Helper()
	var out []ManifestFile
	for _, f := range files {
		m, err := hashFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestExcluded(t *testing.T) {
	cases := map[string]struct {
		reason   string
		patterns []string
		path     string
		want     bool
	}{
		"BaseName":       {reason: "A glob without / matches a file's name anywhere.", patterns: []string{"*.tmp"}, path: "/data/a/b.tmp", want: true},
		"NoMatch":        {reason: "A different name is kept.", patterns: []string{"*.tmp"}, path: "/data/a/b.tmpx", want: false},
		"TrailingElems":  {reason: "A relative pattern with / matches trailing elements.", patterns: []string{"cache/*"}, path: "/data/app/cache/x", want: true},
		"Anchored":       {reason: "An absolute pattern matches from the root.", patterns: []string{"/data/cache"}, path: "/data/cache", want: true},
		"AnchoredDeeper": {reason: "An absolute pattern does not match deeper directories of the same name.", patterns: []string{"/cache"}, path: "/data/cache", want: false},
		"DoubleStar":     {reason: "** matches any number of elements.", patterns: []string{"/data/**/*.log"}, path: "/data/a/b/c.log", want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, excluded(tc.patterns, tc.path)); diff != "" {
				t.Errorf("%s\nexcluded(%v, %q): -want +got:\n%s", tc.reason, tc.patterns, tc.path, diff)
			}
		})
	}
}

func TestCheckRead(t *testing.T) {
	files := []ManifestFile{{Path: "/d/a", Size: 10}, {Path: "/d/b", Size: 20}}
	cases := map[string]struct {
		reason     string
		files      []ManifestFile
		summary    *restic.BackupSummary
		wantReason string
	}{
		"Read": {
			reason:  "restic read what the source holds.",
			files:   files,
			summary: &restic.BackupSummary{SnapshotID: "abc", TotalFilesProcessed: 2, TotalBytesProcessed: 30},
		},
		"NothingRead": {
			reason:     "A source with files of which restic read none must not succeed.",
			files:      files,
			summary:    &restic.BackupSummary{SnapshotID: "abc"},
			wantReason: ReasonNothingRead,
		},
		"NoBytesRead": {
			reason:     "Files counted but no data read is no backup either.",
			files:      files,
			summary:    &restic.BackupSummary{SnapshotID: "abc", TotalFilesProcessed: 2},
			wantReason: ReasonNothingRead,
		},
		"GenuinelyEmpty": {
			reason:  "An empty source backed up as empty is the truth.",
			summary: &restic.BackupSummary{SnapshotID: "abc"},
		},
		"EmptyFiles": {
			reason:  "Files of size zero read as files are fine.",
			files:   []ManifestFile{{Path: "/d/empty"}},
			summary: &restic.BackupSummary{SnapshotID: "abc", TotalFilesProcessed: 1},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := checkRead(tc.files, tc.summary)
			got := ""
			var se *reasonError
			if errors.As(err, &se) {
				got = se.reason
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantReason, got); diff != "" {
				t.Errorf("%s\ncheckRead(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestManifestRoundTrip(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	files := []ManifestFile{
		{Path: "/data/z", Size: 3, SHA256: sum("zed")},
		{Path: "/data/a", Size: 5, SHA256: sum("alpha")},
	}
	m := newManifest("app-s1", "dump", "0123abcd", []string{"/data"}, created, files)
	want := &Manifest{
		APIVersion: ManifestAPIVersion, Kind: ManifestKind, Snapshot: "app-s1", Component: "dump",
		ResticSnapshot: "0123abcd", Paths: []string{"/data"}, Created: created, TotalSize: 8,
		Files: []ManifestFile{files[1], files[0]},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("newManifest(): -want +got:\n%s", diff)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("the manifest is not gzipped")
	}
	got, err := DecodeManifest(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodeManifest(Encode()): -want +got:\n%s", diff)
	}
	if _, err := DecodeManifest(bytes.NewReader([]byte("not gzip"))); err == nil {
		t.Errorf("DecodeManifest accepted garbage")
	}
}
