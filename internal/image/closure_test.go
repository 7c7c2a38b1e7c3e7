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
	"debug/elf"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// hostProgram is a dynamically linked program of this machine and what it
// loads, read with debug/elf as the check reads it.
func hostProgram(t *testing.T) (string, string, []string) {
	t.Helper()
	for _, p := range []string{"/usr/bin/env", "/bin/true", "/usr/bin/true"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		interp, needed, _, err := dynamic(f)
		_ = f.Close()
		if err == nil && interp != "" && len(needed) > 0 {
			return p, interp, needed
		}
	}
	t.Fatal("cannot find a dynamically linked program on this machine")
	return "", "", nil
}

func TestMissing(t *testing.T) {
	prog, interp, needed := hostProgram(t)
	// The host's libraries, each at the path the loader resolves it to.
	libs := Tree{}
	for _, n := range needed {
		for _, d := range libraryDirs {
			p := filepath.Join("/", d, n)
			if real, err := filepath.EvalSymlinks(p); err == nil {
				if err := libs.File(p, real, 0o644); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
	}
	real, err := filepath.EvalSymlinks(interp)
	if err != nil {
		t.Fatal(err)
	}

	cases := map[string]struct {
		reason string
		tree   func() Tree
		want   []string
	}{
		"NothingButTheProgram": {
			reason: "A dynamic program alone lacks its loader and every library.",
			tree: func() Tree {
				tr := Tree{}
				_ = tr.File("usr/bin/prog", prog, 0o755)
				return tr
			},
			want: func() []string {
				out := []string{"usr/bin/prog: needs " + interp}
				for _, n := range needed {
					out = append(out, "usr/bin/prog: needs "+n)
				}
				return sorted(out)
			}(),
		},
		"Complete": {
			reason: "With the loader and the libraries, through a symbolic link, nothing is missing.",
			tree: func() Tree {
				tr := Tree{}
				_ = tr.File("usr/bin/prog", prog, 0o755)
				tr.Merge(libs)
				_ = tr.File("usr/lib/x86_64-linux-gnu/loader.so", real, 0o755)
				_ = tr.Symlink(interp, "/usr/lib/x86_64-linux-gnu/loader.so")
				return tr
			},
		},
		"LinkedDirectory": {
			reason: "A library directory reached through a linked directory counts (usr-merged /lib).",
			tree: func() Tree {
				tr := Tree{}
				_ = tr.File("usr/bin/prog", prog, 0o755)
				for p, e := range libs {
					tr["usr/"+strings.TrimPrefix(strings.TrimPrefix(p, "usr/"), "/")] = e
				}
				_ = tr.Symlink("lib", "usr/lib")
				_ = tr.Symlink("lib64", "usr/lib64")
				_ = tr.File("usr/"+strings.TrimPrefix(strings.TrimPrefix(interp, "/"), "usr/"), real, 0o755)
				return tr
			},
		},
		"StaticOrScript": {
			reason: "Files that are not dynamic ELF programs need nothing.",
			tree: func() Tree {
				tr := Tree{}
				_ = tr.Bytes("usr/bin/script", []byte("#!/bin/sh\necho\n"), 0o755)
				_ = tr.Bytes("etc/tiny", []byte("x"), 0o644)
				return tr
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := tc.tree().Missing()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\nMissing: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
