package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExtractTar(t *testing.T) {
	type entry struct {
		name, body, link string
		typ              byte
	}
	file := func(name, body string) entry { return entry{name: name, body: body, typ: tar.TypeReg} }
	cases := map[string]struct {
		reason  string
		entries []entry
		// want maps each path under the directory to its content, or to
		// "-> target" for a symbolic link.
		want    map[string]string
		wantErr string
	}{
		"Files": {
			reason:  "Directories and files land under the directory by their names.",
			entries: []entry{{name: "var/", typ: tar.TypeDir}, file("var/lib/app/a.txt", "a"), file("b.txt", "b")},
			want:    map[string]string{"var/lib/app/a.txt": "a", "b.txt": "b"},
		},
		"Traversal": {
			reason:  "Names that climb or are absolute stay inside the directory.",
			entries: []entry{file("../../escape.txt", "x"), file("/abs/y.txt", "y")},
			want:    map[string]string{"escape.txt": "x", "abs/y.txt": "y"},
		},
		"ThroughSymlink": {
			reason:  "A link made by the archive is made last, so a later file of its name is written in the directory, never through it, and the link then fails to replace it.",
			entries: []entry{{name: "out", link: "/tmp", typ: tar.TypeSymlink}, file("out/z.txt", "z")},
			wantErr: "cannot link",
		},
		"Symlink": {
			reason:  "A symbolic link is kept as the backup held it.",
			entries: []entry{file("data/a.txt", "a"), {name: "data/latest", link: "a.txt", typ: tar.TypeSymlink}},
			want:    map[string]string{"data/a.txt": "a", "data/latest": "-> a.txt"},
		},
		"Twice": {
			reason:  "A name written twice is refused, not overwritten.",
			entries: []entry{file("a.txt", "1"), file("a.txt", "2")},
			wantErr: "file exists",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, e := range tc.entries {
				h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Linkname: e.link, Size: int64(len(e.body))}
				if err := tw.WriteHeader(h); err != nil {
					t.Fatal(err)
				}
				if _, err := tw.Write([]byte(e.body)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "to")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := extractTar(&buf, dir)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if tc.wantErr != "" || gotErr != "" {
				if !strings.Contains(gotErr, tc.wantErr) || tc.wantErr == "" {
					t.Fatalf("%s\nextractTar(): error %q, want one containing %q", tc.reason, gotErr, tc.wantErr)
				}
				return
			}
			got := map[string]string{}
			err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				if err != nil || fi.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(dir, p)
				if fi.Mode()&os.ModeSymlink != 0 {
					l, _ := os.Readlink(p)
					got[rel] = "-> " + l
					return nil
				}
				b, err := os.ReadFile(p)
				got[rel] = string(b)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nfiles: -want +got:\n%s", tc.reason, diff)
			}
			escaped, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "*"))
			sort.Strings(escaped)
			if diff := cmp.Diff([]string{dir}, escaped); diff != "" {
				t.Errorf("%s\nbeside the directory: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
