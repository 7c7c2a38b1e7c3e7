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
	"debug/elf"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// libraryDirs are where the dynamic loader of a Debian amd64 system looks
// for a library that no RUNPATH finds.
var libraryDirs = []string{
	"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib",
}

// Missing lists what the ELF programs and libraries of the tree load and
// the tree does not hold: each program's interpreter and each needed
// library, resolved as the dynamic loader would (RUNPATH with $ORIGIN,
// then the system's library directories, following symbolic links inside
// the tree). Each item reads "FILE: needs LIBRARY". Static programs need
// nothing.
func (t Tree) Missing() ([]string, error) {
	var out []string
	for p, e := range t {
		if e.Type != tar.TypeReg {
			continue
		}
		f, err := t.elfFile(e)
		if err != nil {
			return nil, fmt.Errorf("cannot read %q: %w", p, err)
		}
		if f == nil {
			continue
		}
		interp, needed, runpath, err := dynamic(f)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("cannot read dynamic section of %q: %w", p, err)
		}
		if interp != "" && !t.exists(strings.TrimPrefix(interp, "/")) {
			out = append(out, p+": needs "+interp)
		}
		for _, lib := range needed {
			if !t.findLibrary(lib, p, runpath) {
				out = append(out, p+": needs "+lib)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// elfFile opens a regular file as ELF, or returns nil when it is not one.
func (t Tree) elfFile(e Entry) (*elf.File, error) {
	rc, _, err := e.open()
	if err != nil {
		return nil, err
	}
	defer closeQuietly(rc)
	magic := make([]byte, 4)
	if _, err := io.ReadFull(rc, magic); err != nil || !bytes.Equal(magic, []byte(elf.ELFMAG)) {
		return nil, nil //nolint:nilerr // short files are not ELF
	}
	data := e.Data
	if e.Source != "" {
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, err
		}
		data = append(magic, b...)
	}
	return elf.NewFile(bytes.NewReader(data))
}

func dynamic(f *elf.File) (interp string, needed, runpath []string, err error) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return "", nil, nil, err
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if f.Section(".dynamic") == nil {
		return interp, nil, nil, nil
	}
	if needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return "", nil, nil, err
	}
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		v, err := f.DynString(tag)
		if err != nil {
			return "", nil, nil, err
		}
		for _, s := range v {
			runpath = append(runpath, strings.Split(s, ":")...)
		}
	}
	return interp, needed, runpath, nil
}

func (t Tree) findLibrary(lib, from string, runpath []string) bool {
	if strings.Contains(lib, "/") {
		return t.exists(strings.TrimPrefix(lib, "/"))
	}
	dirs := make([]string, 0, len(runpath)+len(libraryDirs))
	for _, r := range runpath {
		r = strings.ReplaceAll(r, "$ORIGIN", "/"+path.Dir(from))
		r = strings.ReplaceAll(r, "${ORIGIN}", "/"+path.Dir(from))
		dirs = append(dirs, strings.TrimPrefix(path.Clean(r), "/"))
	}
	dirs = append(dirs, libraryDirs...)
	for _, d := range dirs {
		if t.exists(path.Join(d, lib)) {
			return true
		}
	}
	return false
}

// exists says whether p names a regular file of the tree once every
// symbolic link on the way, directories included, is followed.
func (t Tree) exists(p string) bool {
	e, ok := t.resolve(p, 0)
	return ok && e.Type == tar.TypeReg
}

func (t Tree) resolve(p string, depth int) (Entry, bool) {
	if depth > 40 {
		return Entry{}, false
	}
	parts := strings.Split(path.Clean(p), "/")
	cur := ""
	for i, part := range parts {
		next := path.Join(cur, part)
		e, ok := t[next]
		if !ok {
			// A parent the tree does not list is an implicit directory.
			if i < len(parts)-1 && t.hasBelow(next) {
				cur = next
				continue
			}
			return Entry{}, false
		}
		if e.Type == tar.TypeSymlink {
			target := e.Link
			if !strings.HasPrefix(target, "/") {
				target = path.Join(cur, target)
			}
			rest := path.Join(append([]string{strings.TrimPrefix(target, "/")}, parts[i+1:]...)...)
			return t.resolve(rest, depth+1)
		}
		if i == len(parts)-1 {
			return e, true
		}
		if e.Type != tar.TypeDir {
			return Entry{}, false
		}
		cur = next
	}
	return Entry{}, false
}

func (t Tree) hasBelow(dir string) bool {
	for p := range t {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}
