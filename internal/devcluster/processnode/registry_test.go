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

package processnode

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// tarOf writes entries as a tar stream.
func tarOf(t *testing.T, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := []byte(nil)
		if h.Typeflag == tar.TypeReg {
			body = []byte("content of " + h.Name)
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUntar(t *testing.T) {
	outside := t.TempDir()
	cases := map[string]struct {
		reason  string
		entries []*tar.Header
		want    map[string]string // path below the root: "file <mode> <uid>" or "link <target>"
		wantErr string
	}{
		"Files": {
			reason: "Directories, files with their mode and owner, symbolic and hard links are written.",
			entries: []*tar.Header{
				{Name: "usr/local/bin/", Typeflag: tar.TypeDir, Mode: 0o755},
				{Name: "usr/local/bin/probe", Typeflag: tar.TypeReg, Mode: 0o755, Uid: 65532, Gid: 65532},
				{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "usr/local/bin"},
				{Name: "usr/local/bin/again", Typeflag: tar.TypeLink, Linkname: "usr/local/bin/probe"},
				{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666},
			},
			want: map[string]string{
				"usr/local/bin/probe": "file -rwxr-xr-x 65532",
				"usr/local/bin/again": "file -rwxr-xr-x 65532",
				"bin":                 "link usr/local/bin",
			},
		},
		"Traversal": {
			reason:  "A name climbing out of the root is written below it.",
			entries: []*tar.Header{{Name: "../../escaped", Typeflag: tar.TypeReg, Mode: 0o644}},
			want:    map[string]string{"escaped": "file -rw-r--r-- 0"},
		},
		"ThroughSymlink": {
			reason: "A file written through a symbolic link that points outside the root is refused.",
			entries: []*tar.Header{
				{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: outside},
				{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644},
			},
			wantErr: "path escapes from parent",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			err := untar(bytes.NewReader(tarOf(t, tc.entries...)), root)
			if entries, _ := os.ReadDir(outside); len(entries) > 0 {
				t.Errorf("%s\nuntar wrote outside the root: %v", tc.reason, entries)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\nuntar: error %v, want one saying %q", tc.reason, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nuntar: %v", tc.reason, err)
			}
			got := map[string]string{}
			for p := range tc.want {
				fi, err := os.Lstat(filepath.Join(root, p))
				if err != nil {
					got[p] = err.Error()
					continue
				}
				if fi.Mode()&os.ModeSymlink != 0 {
					target, _ := os.Readlink(filepath.Join(root, p))
					got[p] = "link " + target
					continue
				}
				got[p] = "file " + fi.Mode().String() + " " + strconv.FormatUint(uint64(fi.Sys().(*syscall.Stat_t).Uid), 10)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nuntar: -want +got:\n%s", tc.reason, diff)
			}
			if _, err := os.Lstat(filepath.Join(root, "dev/null")); err == nil {
				t.Errorf("%s\nuntar made a device file", tc.reason)
			}
		})
	}
}

func TestPulledImageCommand(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"usr/local/bin/probe", "bin/sh"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img := &PulledImage{Ref: "127.0.0.1:5000/probe:v1", Root: root, Config: v1.Config{
		Entrypoint: []string{"/usr/local/bin/probe"}, Cmd: []string{"--serve"},
		Env: []string{"PATH=/usr/local/bin:/bin"},
	}}
	cases := map[string]struct {
		reason        string
		command, args []string
		wantPath      string
		wantArgv      []string
		wantErr       string
	}{
		"Image": {reason: "With neither, the image's entrypoint and cmd.", wantPath: "/usr/local/bin/probe", wantArgv: []string{"/usr/local/bin/probe", "--serve"}},
		"Args":  {reason: "Args replace the cmd.", args: []string{"--once"}, wantPath: "/usr/local/bin/probe", wantArgv: []string{"/usr/local/bin/probe", "--once"}},
		"Command": {reason: "A command replaces the entrypoint and drops the cmd; a bare name is found on the image's PATH inside its root.",
			command: []string{"sh", "-c"}, args: []string{"true"}, wantPath: "/bin/sh", wantArgv: []string{"sh", "-c", "true"}},
		"Missing": {reason: "A program the image does not hold is refused, naming it.", command: []string{"bash"}, wantErr: `cannot find program "bash"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path, argv, err := img.command(tc.command, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\ncommand: error %v, want one saying %q", tc.reason, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\ncommand: %v", tc.reason, err)
			}
			if diff := cmp.Diff([]any{tc.wantPath, tc.wantArgv}, []any{path, argv}); diff != "" {
				t.Errorf("%s\ncommand: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestImageStoreServes(t *testing.T) {
	s := &ImageStore{Mirrors: map[string]string{"ghcr.io/stashplane/": "127.0.0.1:5000/stashplane/"}}
	cases := map[string]struct {
		ref        string
		want       bool
		wantMirror string
	}{
		"Loopback":   {ref: "127.0.0.1:5000/probe:v1", want: true, wantMirror: "127.0.0.1:5000/probe:v1"},
		"Localhost":  {ref: "localhost:5000/probe:v1", want: true, wantMirror: "localhost:5000/probe:v1"},
		"Mirrored":   {ref: "ghcr.io/stashplane/provider-stashplane:v1", want: true, wantMirror: "127.0.0.1:5000/stashplane/provider-stashplane:v1"},
		"Elsewhere":  {ref: "ghcr.io/other/image:v1", wantMirror: "ghcr.io/other/image:v1"},
		"DockerHub":  {ref: "busybox", wantMirror: "busybox"},
		"BadPattern": {ref: "UPPER/case:v1", wantMirror: "UPPER/case:v1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff([]any{tc.want, tc.wantMirror}, []any{s.Serves(tc.ref), s.mirrored(tc.ref)}); diff != "" {
				t.Errorf("Serves, mirrored of %q: -want +got:\n%s", tc.ref, diff)
			}
		})
	}
	var none *ImageStore
	if none.Serves("127.0.0.1:5000/probe:v1") {
		t.Error("a node without a store serves images")
	}
}
