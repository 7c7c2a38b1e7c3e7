/*
Copyright 2026 The Stashplane Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// header is what a test compares of a tar entry.
type header struct {
	Name, Link string
	Type       byte
	Mode       int64
	UID, GID   int
	ModTime    time.Time
	Content    string
}

func readTar(t *testing.T, r io.Reader) []header {
	t.Helper()
	var out []header
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, header{Name: h.Name, Link: h.Linkname, Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, ModTime: h.ModTime.UTC(), Content: string(b)})
	}
}

// sourceDir writes files into a new directory with the given times and
// modes, so two directories can differ in everything but content.
func sourceDir(t *testing.T, mtime time.Time, order []string) string {
	t.Helper()
	dir := t.TempDir()
	content := map[string]string{"bin/tool": "#!/bin/sh\n", "etc/conf": "a=1\n", "share/data/x": "x"}
	for _, p := range order {
		f := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(p, "bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(f, []byte(content[p]), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("tool", filepath.Join(dir, "bin", "alias")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestWriteTar(t *testing.T) {
	dir := sourceDir(t, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), []string{"etc/conf", "bin/tool", "share/data/x"})
	tree := Tree{}
	if err := tree.AddDir(dir, "opt/app", func(rel string) bool { return rel == "share" }); err != nil {
		t.Fatal(err)
	}
	if err := tree.Bytes("/etc/passwd", []byte("root:x:0:0::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tree.Dir("tmp", 0o1777); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tree.WriteTar(&buf); err != nil {
		t.Fatal(err)
	}
	dirEntry := func(name string, mode int64) header {
		return header{Name: name, Type: tar.TypeDir, Mode: mode, ModTime: Epoch}
	}
	want := []header{
		dirEntry("etc/", 0o755),
		{Name: "etc/passwd", Type: tar.TypeReg, Mode: 0o644, ModTime: Epoch, Content: "root:x:0:0::/:/bin/sh\n"},
		dirEntry("opt/", 0o755),
		dirEntry("opt/app/", 0o755),
		dirEntry("opt/app/bin/", 0o755),
		{Name: "opt/app/bin/alias", Type: tar.TypeSymlink, Link: "tool", Mode: 0o777, ModTime: Epoch},
		{Name: "opt/app/bin/tool", Type: tar.TypeReg, Mode: 0o755, ModTime: Epoch, Content: "#!/bin/sh\n"},
		dirEntry("opt/app/etc/", 0o755),
		{Name: "opt/app/etc/conf", Type: tar.TypeReg, Mode: 0o644, ModTime: Epoch, Content: "a=1\n"},
		dirEntry("tmp/", 0o1777),
	}
	if diff := cmp.Diff(want, readTar(t, &buf)); diff != "" {
		t.Errorf("WriteTar: -want +got:\n%s", diff)
	}
}

// TestLayerReproducible builds the layer of one content from two
// directories written in another order at other times: the digests agree,
// and a changed byte changes them.
func TestLayerReproducible(t *testing.T) {
	layerOf := func(dir string) v1.Hash {
		t.Helper()
		tree := Tree{}
		if err := tree.AddDir(dir, "", nil); err != nil {
			t.Fatal(err)
		}
		l, err := tree.Layer(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a := layerOf(sourceDir(t, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), []string{"bin/tool", "etc/conf", "share/data/x"}))
	b := layerOf(sourceDir(t, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), []string{"share/data/x", "etc/conf", "bin/tool"}))
	if a != b {
		t.Errorf("layers of one content differ: %s and %s", a, b)
	}
	changed := sourceDir(t, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), []string{"bin/tool", "etc/conf", "share/data/x"})
	if err := os.WriteFile(filepath.Join(changed, "etc", "conf"), []byte("a=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := layerOf(changed); c == a {
		t.Errorf("a changed file kept the layer's digest %s", c)
	}
}

// TestLayerCache shows a layer whose inputs did not change is read from
// the cache, not written again.
func TestLayerCache(t *testing.T) {
	cache := t.TempDir()
	tree := Tree{}
	if err := tree.Bytes("etc/conf", []byte("a=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Layer(cache); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "*.tar.gz"))
	if len(files) != 1 {
		t.Fatalf("cache holds %v, want one layer", files)
	}
	// A cached file marked by its time is left as it is by the next build.
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(files[0], old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Layer(cache); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(old) {
		t.Errorf("the cached layer was written again")
	}
	if err := tree.Bytes("etc/conf", []byte("a=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Layer(cache); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(cache, "*.tar.gz")); len(files) != 2 {
		t.Errorf("a changed tree wrote %d cached layers in all, want 2", len(files))
	}
}

func TestAddTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/lib/libx.so.1.2", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, Uid: 5, ModTime: time.Now()},
		{Name: "./usr/lib/libx.so.1", Typeflag: tar.TypeSymlink, Linkname: "libx.so.1.2"},
		{Name: "./usr/bin/b", Typeflag: tar.TypeLink, Linkname: "./usr/lib/libx.so.1.2"},
		{Name: "./usr/share/doc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/share/doc/README", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			_, _ = tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	_ = tw.Close()
	tree := Tree{}
	if err := tree.AddTar(&buf, "", Documentation); err != nil {
		t.Fatal(err)
	}
	want := Tree{
		"usr/lib/libx.so.1.2": {Type: tar.TypeReg, Mode: 0o644, UID: 5, Data: []byte("xxx")},
		"usr/lib/libx.so.1":   {Type: tar.TypeSymlink, Link: "libx.so.1.2"},
		"usr/bin/b":           {Type: tar.TypeReg, Mode: 0o644, UID: 5, Data: []byte("xxx")},
	}
	if diff := cmp.Diff(want, tree); diff != "" {
		t.Errorf("AddTar: -want +got:\n%s", diff)
	}
}

func TestClean(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    string
		wantErr bool
	}{
		"Relative":   {in: "usr/bin/x", want: "usr/bin/x"},
		"Absolute":   {in: "/usr/bin/x", want: "usr/bin/x"},
		"DotDot":     {in: "../../etc/passwd", want: "etc/passwd"},
		"Root":       {in: "/", wantErr: true},
		"TrailSlash": {in: "tmp/", want: "tmp"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := clean(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("clean(%q): error %v, want error %t", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
