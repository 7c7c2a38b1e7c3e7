package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"lukechampine.com/blake3"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/restic"
)

// sum is the digest of s under backupHash, BLAKE3.
func sum(s string) string {
	h := blake3.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// sha256Sum is the digest of s in the manifests written before BLAKE3.
func sha256Sum(s string) string {
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
				{Path: root + "/a/cache/k", Size: 10, BLAKE3: sum("cached too")},
				{Path: root + "/a/x.db", Size: 8, BLAKE3: sum("database")},
				{Path: root + "/a/x.tmp", Size: 7, BLAKE3: sum("scratch")},
				{Path: root + "/b.txt", Size: 3, BLAKE3: sum("bee")},
				{Path: root + "/cache/big", Size: 6, BLAKE3: sum("cached")},
			},
		},
		"Excludes": {
			reason:  "A base-name glob leaves out files anywhere; a directory name leaves out every cache directory.",
			paths:   []string{root},
			exclude: []string{"*.tmp", "cache"},
			want: []ManifestFile{
				{Path: root + "/a/x.db", Size: 8, BLAKE3: sum("database")},
				{Path: root + "/b.txt", Size: 3, BLAKE3: sum("bee")},
			},
		},
		"AnchoredExclude": {
			reason:  "A pattern starting with / matches from the root only.",
			paths:   []string{root},
			exclude: []string{root + "/cache", "/a/x.db"},
			want: []ManifestFile{
				{Path: root + "/a/cache/k", Size: 10, BLAKE3: sum("cached too")},
				{Path: root + "/a/x.db", Size: 8, BLAKE3: sum("database")},
				{Path: root + "/a/x.tmp", Size: 7, BLAKE3: sum("scratch")},
				{Path: root + "/b.txt", Size: 3, BLAKE3: sum("bee")},
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
		m, err := hashFile(f.path, backupHash)
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
		{Path: "/data/z", Size: 3, BLAKE3: sum("zed")},
		{Path: "/data/a", Size: 5, BLAKE3: sum("alpha")},
	}
	m := newManifest("app-s1", "dump", "0123abcd", []string{"/data"}, created, files)
	want := &Manifest{
		APIVersion: ManifestAPIVersion, Kind: ManifestKind, Snapshot: "app-s1", Component: "dump",
		ResticSnapshot: "0123abcd", Paths: []string{"/data"}, Created: created, TotalSize: 8,
		Hash: HashBLAKE3, Files: []ManifestFile{files[1], files[0]},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("newManifest(): -want +got:\n%s", diff)
	}
	b, err := m.Encode(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("age-encryption.org/v1\n")) || bytes.Contains(b, []byte("/data")) {
		t.Errorf("the manifest is not sealed: %q", b[:min(len(b), 64)])
	}
	got, err := DecodeManifest(bytes.NewReader(b), testPassword, "app-s1", "dump")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodeManifest(Encode()): -want +got:\n%s", diff)
	}
	tampered := bytes.Clone(b)
	tampered[len(tampered)-20] ^= 1
	plain := gzipJSON(t, `{"apiVersion":"storage.stashplane.io/v1alpha1","kind":"ContentManifest","snapshot":"app-s1","component":"dump","files":[]}`)
	refused := map[string]struct {
		data                          []byte
		password, snapshot, component string
		unsealed                      bool
	}{
		"Garbage":          {[]byte("not gzip"), testPassword, "app-s1", "dump", true},
		"Plaintext":        {plain, testPassword, "app-s1", "dump", true},
		"WrongPassword":    {b, "another password", "app-s1", "dump", true},
		"Tampered":         {tampered, testPassword, "app-s1", "dump", true},
		"Cut":              {b[:len(b)-10], testPassword, "app-s1", "dump", true},
		"AnotherSnapshot":  {b, testPassword, "app-s2", "dump", false},
		"AnotherComponent": {b, testPassword, "app-s1", "dump-1", false},
	}
	for name, tc := range refused {
		_, err := DecodeManifest(bytes.NewReader(tc.data), tc.password, tc.snapshot, tc.component)
		if err == nil {
			t.Errorf("%s: DecodeManifest accepted it", name)
			continue
		}
		if got := errors.Is(err, ErrManifestUnsealed); got != tc.unsealed {
			t.Errorf("%s: error %v; ErrManifestUnsealed %v, want %v", name, err, got, tc.unsealed)
		}
	}
}

// testPassword seals the manifests of these tests.
const testPassword = "correct horse battery staple"

// seal seals data, a gzipped manifest, as Encode does.
func seal(data []byte) ([]byte, error) {
	r, err := age.NewScryptRecipient(testPassword)
	if err != nil {
		return nil, err
	}
	r.SetWorkFactor(manifestWorkFactor)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sealed(t *testing.T, data []byte) []byte {
	t.Helper()
	b, err := seal(data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gzipJSON(t *testing.T, doc string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerifyRestoreHashAlgorithms(t *testing.T) {
	// A manifest written before BLAKE3: no "hash" field, SHA-256 digests.
	sha256Manifest := `{"apiVersion":"storage.stashplane.io/v1alpha1","kind":"ContentManifest",` +
		`"snapshot":"app-s1","component":"dump","resticSnapshot":"0123abcd","paths":["/data"],` +
		`"created":"2026-01-02T03:04:05Z","totalSize":8,"files":[` +
		`{"path":"/data/a","size":5,"sha256":"` + sha256Sum("alpha") + `"},` +
		`{"path":"/data/z","size":3,"sha256":"` + sha256Sum("zed") + `"}]}`
	blake3Manifest, err := newManifest("app-s1", "dump", "0123abcd", []string{"/data"}, time.Now(), []ManifestFile{
		{Path: "/data/a", Size: 5, BLAKE3: sum("alpha")},
		{Path: "/data/z", Size: 3, BLAKE3: sum("zed")},
	}).Encode(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		manifest  []byte
		restored  map[string]string
		wantAlg   string
		wantDiffs []corev1alpha1.RestoreDifference
	}{
		"SHA256ManifestMatches": {
			manifest: sealed(t, gzipJSON(t, sha256Manifest)), wantAlg: HashSHA256,
			restored: map[string]string{"data/a": "alpha", "data/z": "zed"},
		},
		"SHA256ManifestChangedByte": {
			manifest: sealed(t, gzipJSON(t, sha256Manifest)), wantAlg: HashSHA256,
			restored: map[string]string{"data/a": "alphA", "data/z": "zed"},
			wantDiffs: []corev1alpha1.RestoreDifference{{Path: "/data/a", Kind: corev1alpha1.DifferenceChanged,
				Want: "5 bytes, sha256 " + sha256Sum("alpha")[:8], Got: "5 bytes, sha256 " + sha256Sum("alphA")[:8]}},
		},
		"BLAKE3ManifestMatches": {
			manifest: blake3Manifest, wantAlg: HashBLAKE3,
			restored: map[string]string{"data/a": "alpha", "data/z": "zed"},
		},
		"BLAKE3ManifestChangedByte": {
			manifest: blake3Manifest, wantAlg: HashBLAKE3,
			restored: map[string]string{"data/a": "alpha", "data/z": "zeD"},
			wantDiffs: []corev1alpha1.RestoreDifference{{Path: "/data/z", Kind: corev1alpha1.DifferenceChanged,
				Want: "3 bytes, blake3 " + sum("zed")[:8], Got: "3 bytes, blake3 " + sum("zeD")[:8]}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := DecodeManifest(bytes.NewReader(tc.manifest), testPassword, "app-s1", "dump")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantAlg, m.Algorithm()); diff != "" {
				t.Errorf("Algorithm(): -want +got:\n%s", diff)
			}
			target := t.TempDir()
			writeTree(t, target, tc.restored)
			r := &Runner{Log: logr.Discard(), Options: Options{Target: target}}
			hashes := newRestoredHasher(m.Files, m.Algorithm(), placement{target: target})
			// Hash a during the restore, z only at the end.
			hashes.finished(filepath.Join(target, "data"))("/a")
			res := &restoreResult{}
			err = r.verifyRestore(context.Background(), nil, m, []string{"/data"}, "0123abcd", nil, true, res, hashes, &phases{})
			if diff := cmp.Diff(tc.wantDiffs, res.diffs); diff != "" {
				t.Errorf("differences: -want +got:\n%s", diff)
			}
			var re *reasonError
			if mismatch := errors.As(err, &re) && re.reason == ReasonRestoreMismatch; mismatch != (len(tc.wantDiffs) > 0) || (err != nil && !mismatch) {
				t.Errorf("verifyRestore() = %v, want a %s error only for differences", err, ReasonRestoreMismatch)
			}
			if diff := cmp.Diff(int64(2), res.filesChecked); diff != "" {
				t.Errorf("files checked: -want +got:\n%s", diff)
			}
		})
	}
}

// TestVerifyRestoreIncludeMatchedNothing: include patterns that leave out
// every file of the backup blame the patterns (a setup reason, which gives
// a verification no verdict), not the backup; patterns that keep a file
// compare it as usual.
func TestVerifyRestoreIncludeMatchedNothing(t *testing.T) {
	m, err := DecodeManifest(bytes.NewReader(mustEncode(t, newManifest("app-s1", "dump", "0123abcd", []string{"/data"}, time.Now(), []ManifestFile{
		{Path: "/data/a", Size: 5, BLAKE3: sum("alpha")},
		{Path: "/data/z", Size: 3, BLAKE3: sum("zed")},
	}))), testPassword, "app-s1", "dump")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		reason   string
		restored map[string]string
		want     string
	}{
		"NothingCameBack": {reason: "No file of the backup matched the patterns.", restored: map[string]string{}, want: ReasonIncludeMatchedNothing},
		"OneCameBack":     {reason: "A file the patterns kept is compared; the others are excused.", restored: map[string]string{"data/a": "alpha"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			target := t.TempDir()
			writeTree(t, target, tc.restored)
			r := &Runner{Log: logr.Discard(), Options: Options{Target: target, Include: []string{"/data/nomatch*"}}}
			hashes := newRestoredHasher(m.Files, m.Algorithm(), placement{target: target})
			err := r.verifyRestore(context.Background(), nil, m, []string{"/data"}, "0123abcd", nil, false, &restoreResult{}, hashes, &phases{})
			got := ""
			var re *reasonError
			if errors.As(err, &re) {
				got = re.reason
			} else if err != nil {
				t.Fatalf("verifyRestore() = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nreason: -want +got:\n%s", tc.reason, diff)
			}
			if !slices.Contains(agentapi.SetupReasons, got) && got != "" {
				t.Errorf("%s is not a setup reason", got)
			}
		})
	}
}

func mustEncode(t *testing.T, m *Manifest) []byte {
	t.Helper()
	b, err := m.Encode(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWalkTreeDirectories(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"b.txt": "bee", "a/x.db": "database", "a/cache/k": "cached", "cache/big": "cached"})
	for _, tc := range []struct {
		name    string
		exclude []string
		want    []string
	}{
		{name: "Every", want: []string{root, root + "/a", root + "/a/cache", root + "/cache"}},
		{name: "ExcludedLeftOut", exclude: []string{"cache"}, want: []string{root, root + "/a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dirs, err := walkTree([]string{root}, tc.exclude)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range dirs {
				fi, err := os.Lstat(d.path)
				if err != nil {
					t.Fatal(err)
				}
				if stateOf(fi) != d.state {
					t.Errorf("directory %s: state %+v, want %+v", d.path, d.state, stateOf(fi))
				}
				got = append(got, d.path)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

// walkSource is walkTree's files alone.
func walkSource(paths, exclude []string) ([]sourceFile, error) {
	files, _, err := walkTree(paths, exclude)
	return files, err
}
