package accessor

import (
	"bytes"
	"context"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"gocloud.dev/blob/fileblob"
)

// FuzzAccessorKeys writes and reads objects under arbitrary keys through
// the accessor, over a volume where a symbolic link points outside it, as
// the storage command serves it: nothing is ever written outside the volume
// and the file beyond the link is never read.
func FuzzAccessorKeys(f *testing.F) {
	for _, seed := range []string{
		"metadata.yaml", "ns/app/repository.yaml", "data/ab/abcdef", "../escape", "a/../../b", "/abs",
		"a\x00b", "%2e%2e/x", "..", ".", "a//b", "out/secret", "out/../out/secret", "x/../out/secret",
		"out", "out/new", "./out/secret", "a/..", "weird\x7f/..//out/secret",
	} {
		f.Add(seed, []byte("data"))
	}
	dir := f.TempDir()
	root, outside := filepath.Join(dir, "volume"), filepath.Join(dir, "outside")
	for _, d := range []string{root, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	secret := []byte("beyond the volume")
	if err := os.WriteFile(filepath.Join(outside, "secret"), secret, 0o600); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "out")); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "secret-link")); err != nil {
		f.Fatal(err)
	}
	files, err := fileblob.OpenBucket(root, &fileblob.Options{CreateDir: true, NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		f.Fatal(err)
	}
	srv := httptest.NewServer(&Server{Bucket: files, Token: "tok", Dir: root})
	f.Cleanup(srv.Close)
	b, err := OpenBucket(srv.URL, "tok", srv.Client())
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, key string, data []byte) {
		if bytes.Equal(data, secret) {
			return
		}
		_ = b.WriteAll(ctx, key, data, nil)
		got, err := b.ReadAll(ctx, key)
		if err == nil && bytes.Equal(got, secret) {
			t.Fatalf("key %q read the file beyond the volume", key)
		}
		for _, k := range []string{key + "/secret", key + "secret"} {
			if got, err := b.ReadAll(ctx, k); err == nil && bytes.Equal(got, secret) {
				t.Fatalf("key %q read the file beyond the volume", k)
			}
		}
		entries, err := os.ReadDir(outside)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Fatalf("writing key %q put %d entries beside the volume's outside file", key, len(entries)-1)
		}
		if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || !bytes.Equal(b, secret) {
			t.Fatalf("writing key %q changed the file beyond the volume", key)
		}
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || path == dir {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			if rel != "volume" && rel != "outside" && rel != filepath.Join("outside", "secret") && filepath.Dir(rel) == "." {
				t.Fatalf("writing key %q made %q beside the volume", key, rel)
			}
			return nil
		})
	})
}
