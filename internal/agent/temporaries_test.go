package agent

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/stashplane/stashplane/internal/accessor"
)

func TestResticTemporary(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for name, want := range map[string]bool{
		// restic's local backend: os.CreateTemp(dir, name+"-tmp-").
		id + "-tmp-2086587267": true,
		"config-tmp-123":       true,
		// gocloud's fileblob without a temporary directory.
		id + ".188e3a5c0f2b1d40.tmp":  true,
		"config.188e3a5c0f2b1d40.tmp": true,
		// restic's own files, and what neither writes.
		id:                                  false,
		"config":                            false,
		"notes.tmp":                         false,
		"abc-tmp-1":                         false,
		id + ".tmp":                         false,
		strings.Repeat("AB", 32) + "-tmp-1": false,
	} {
		if got := resticTemporary(name); got != want {
			t.Errorf("resticTemporary(%q) = %v, want %v", name, got, want)
		}
	}
}

// A temporary file older than staleTemporaryAge goes; restic's own files,
// a temporary file being written, and files neither writer makes stay.
func TestRemoveStaleTemporaries(t *testing.T) {
	lock := strings.Repeat("1a", 32)
	pack := strings.Repeat("2b", 32)
	now := time.Now()
	old := now.Add(-staleTemporaryAge - time.Minute)
	type file struct {
		key     string
		written time.Time
	}
	for name, tc := range map[string]struct {
		prefix      string
		files       []file
		wantLeft    []string
		wantRemoved int
		wantNamed   bool
	}{
		"a lock and a half-written lock of a killed run": {
			prefix:      "r/locks/",
			files:       []file{{"r/locks/" + lock, old}, {"r/locks/" + pack + "-tmp-99", old}},
			wantLeft:    []string{"r/locks/" + lock},
			wantRemoved: 1,
			wantNamed:   true,
		},
		"only a half-written lock: no lock": {
			prefix:      "r/locks/",
			files:       []file{{"r/locks/" + pack + "-tmp-99", old}},
			wantRemoved: 1,
		},
		"a lock being written stays": {
			prefix:   "r/locks/",
			files:    []file{{"r/locks/" + lock + "-tmp-5", now.Add(-time.Minute)}},
			wantLeft: []string{"r/locks/" + lock + "-tmp-5"},
		},
		"the whole repository, both writers": {
			prefix: "r/",
			files: []file{
				{"r/config", old},
				{"r/data/2b/" + pack, old},
				{"r/data/2b/" + pack + ".17f0a1b2c3d4e5f6.tmp", old},
				{"r/data/1a/" + lock + "-tmp-7", old},
				{"r/data/1a/" + lock + "-tmp-8", now},
				{"r/notes.tmp", old},
			},
			wantLeft:    []string{"r/config", "r/data/1a/" + lock + "-tmp-8", "r/data/2b/" + pack, "r/notes.tmp"},
			wantRemoved: 2,
			wantNamed:   true,
		},
		"nothing there": {prefix: "r/locks/"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				writeAged(t, dir, f.key, f.written)
			}
			b := localBucket(t, dir)
			got, err := removeStaleTemporaries(context.Background(), logr.Discard(), b, tc.prefix, now)
			if err != nil {
				t.Fatal(err)
			}
			// Each file holds one byte: as many bytes are kept as files
			// are left.
			want := sweep{removed: tc.wantRemoved, named: tc.wantNamed, kept: int64(len(tc.wantLeft))}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(sweep{})); diff != "" {
				t.Errorf("removeStaleTemporaries, -want +got:\n%s", diff)
			}
			var left []string
			_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(dir, p)
					left = append(left, filepath.ToSlash(rel))
				}
				return nil
			})
			sort.Strings(left)
			if diff := cmp.Diff(tc.wantLeft, left); diff != "" {
				t.Errorf("files left, -want +got:\n%s", diff)
			}
		})
	}
}

// A restore reaches a brokered storage through a read-only grant, which
// may not remove a half-written lock: the file stays, is no lock, and the
// run goes on.
func TestRemoveStaleTemporariesReadOnly(t *testing.T) {
	dir := t.TempDir()
	lock := "tenant/app/r/locks/" + strings.Repeat("1a", 32)
	half := "tenant/app/r/locks/" + strings.Repeat("2b", 32) + "-tmp-99"
	old := time.Now().Add(-staleTemporaryAge - time.Minute)
	for _, k := range []string{lock, half} {
		writeAged(t, dir, k, old)
	}
	files := localBucket(t, dir)
	const key = "accessor-token"
	srv := httptest.NewServer(&accessor.Server{Bucket: files, Token: key})
	defer srv.Close()
	tok, err := accessor.Mint(key, accessor.Grant{Prefixes: []string{"tenant/app/"}, Expires: time.Now().Add(time.Hour).Unix(), Subject: "demo/restore", ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := accessor.OpenBucket(srv.URL, tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sw, err := removeStaleTemporaries(context.Background(), logr.Discard(), b, "tenant/app/r/locks/", time.Now())
	if err != nil || sw.removed != 0 || !sw.named || sw.kept != 2 {
		t.Errorf("removeStaleTemporaries through a read-only grant: %+v, %v; want nothing removed, a lock named, both files' 2 bytes kept, no error", sw, err)
	}
	if ok, err := files.Exists(context.Background(), half); err != nil || !ok {
		t.Errorf("the half-written lock is gone through a read-only grant (%v)", err)
	}
}

// writeAged writes the file of key under dir, last written at written.
func writeAged(t *testing.T, dir, key string, written time.Time) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, written, written); err != nil {
		t.Fatal(err)
	}
}

// localBucket opens dir as a local storage does (internal/storage).
func localBucket(t *testing.T, dir string) *blob.Bucket {
	t.Helper()
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{Metadata: fileblob.MetadataDontWrite, NoTempDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
