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

// Package image builds Stashplane's OCI images without a container engine:
// each layer is a Tree of files written as a tar with fixed timestamps,
// owners and order, so that the same inputs always give the same digest.
// Layers are cached by the hash of their inputs, so a second build of an
// unchanged layer reads it back instead of compressing it again.
package image

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Epoch is the modification time of every file in every layer.
var Epoch = time.Unix(0, 0).UTC()

// Entry is one file, directory or symbolic link of a layer.
type Entry struct {
	// Type is tar.TypeReg, tar.TypeDir or tar.TypeSymlink.
	Type byte
	// Mode holds the permission bits (and setuid, setgid, sticky).
	Mode int64
	// UID and GID own the entry; 0 unless set.
	UID, GID int
	// Link is the target of a symbolic link.
	Link string
	// A regular file's content: Data, or else the file at Source.
	Data   []byte
	Source string
}

// Tree maps a path in the image (relative, slash-separated, no leading
// slash) to its entry. Parent directories missing from the tree are added
// as root-owned 0755 directories when the layer is written.
type Tree map[string]Entry

// clean turns an image path into the tree's key form.
func clean(p string) (string, error) {
	c := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(p)), "/")
	if c == "" || c == "." {
		return "", fmt.Errorf("cannot add %q: not a path below the root", p)
	}
	return c, nil
}

// File adds a regular file with the content of the file at source.
func (t Tree) File(dst, source string, mode int64) error {
	p, err := clean(dst)
	if err != nil {
		return err
	}
	if _, err := os.Stat(source); err != nil {
		return fmt.Errorf("cannot add %q: %w", dst, err)
	}
	t[p] = Entry{Type: tar.TypeReg, Mode: mode, Source: source}
	return nil
}

// Bytes adds a regular file with the given content.
func (t Tree) Bytes(dst string, data []byte, mode int64) error {
	p, err := clean(dst)
	if err != nil {
		return err
	}
	t[p] = Entry{Type: tar.TypeReg, Mode: mode, Data: data}
	return nil
}

// Dir adds a directory.
func (t Tree) Dir(dst string, mode int64) error {
	p, err := clean(dst)
	if err != nil {
		return err
	}
	t[p] = Entry{Type: tar.TypeDir, Mode: mode}
	return nil
}

// Symlink adds a symbolic link.
func (t Tree) Symlink(dst, target string) error {
	p, err := clean(dst)
	if err != nil {
		return err
	}
	t[p] = Entry{Type: tar.TypeSymlink, Mode: 0o777, Link: target}
	return nil
}

// AddDir adds the files, directories and symbolic links under dir at prefix,
// keeping their permission bits and dropping owners and times. skip, when
// set, is asked about each path relative to dir (slash-separated); a
// skipped directory is left out with all it holds.
func (t Tree) AddDir(dir, prefix string, skip func(rel string) bool) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		dst := path.Join(prefix, rel)
		mode := int64(info.Mode().Perm()) | specialBits(info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("cannot read link %q: %w", p, err)
			}
			return t.Symlink(dst, target)
		case info.IsDir():
			return t.Dir(dst, mode)
		case info.Mode().IsRegular():
			return t.File(dst, p, mode)
		default:
			return fmt.Errorf("cannot add %q: neither a file, a directory nor a symbolic link", p)
		}
	})
}

func specialBits(m fs.FileMode) int64 {
	var b int64
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// AddTar adds the entries of a tar stream (a Debian package's file system
// tree, say) at prefix, keeping types, modes, owners and link targets and
// dropping times and owner names; a hard link becomes a copy of its
// target. skip, when set, is asked about each path
// (without prefix) and leaves out what it returns true for, and what lies
// below a skipped directory.
func (t Tree) AddTar(r io.Reader, prefix string, skip func(rel string) bool) error {
	tr := tar.NewReader(r)
	var skipped []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot read tar stream: %w", err)
		}
		rel := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if rel == "" {
			continue
		}
		if below(rel, skipped) {
			continue
		}
		if skip != nil && skip(rel) {
			if h.Typeflag == tar.TypeDir {
				skipped = append(skipped, rel)
			}
			continue
		}
		dst, err := clean(path.Join(prefix, rel))
		if err != nil {
			return err
		}
		e := Entry{Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			e.Type = tar.TypeReg
			if e.Data, err = io.ReadAll(tr); err != nil {
				return fmt.Errorf("cannot read %q from tar stream: %w", h.Name, err)
			}
		case tar.TypeDir:
		case tar.TypeSymlink:
			e.Link = h.Linkname
		case tar.TypeLink:
			// A hard link names an earlier entry of the same stream. It
			// becomes a copy: layers are written in path order, in which
			// a link may come before its target.
			target, err := clean(path.Join(prefix, strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")))
			if err != nil {
				return err
			}
			te, ok := t[target]
			if !ok || te.Type != tar.TypeReg {
				return fmt.Errorf("cannot add %q: it links to %q, which is no file before it", h.Name, h.Linkname)
			}
			e = te
		default:
			return fmt.Errorf("cannot add %q: tar entry type %q is not supported", h.Name, h.Typeflag)
		}
		t[dst] = e
	}
}

func below(p string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// Merge adds every entry of o, replacing those of t at the same path.
func (t Tree) Merge(o Tree) {
	for p, e := range o {
		t[p] = e
	}
}

// paths lists the tree's paths with the missing parent directories added,
// in the order they are written: sorted, so a parent always comes before
// what it holds.
func (t Tree) paths() ([]string, Tree) {
	all := Tree{}
	for p, e := range t {
		all[p] = e
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := t[d]; !ok {
				all[d] = Entry{Type: tar.TypeDir, Mode: 0o755}
			}
		}
	}
	ps := make([]string, 0, len(all))
	for p := range all {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps, all
}

// WriteTar writes the tree as a tar stream: entries sorted by path, every
// time Epoch, no owner names, and a directory's path ending in a slash.
func (t Tree) WriteTar(w io.Writer) error {
	ps, all := t.paths()
	tw := tar.NewWriter(w)
	for _, p := range ps {
		e := all[p]
		h := &tar.Header{
			Typeflag: e.Type, Name: p, Mode: e.Mode, Uid: e.UID, Gid: e.GID,
			Linkname: e.Link, ModTime: Epoch, Format: tar.FormatPAX,
		}
		if e.Type == tar.TypeDir {
			h.Name += "/"
		}
		var content io.ReadCloser
		if e.Type == tar.TypeReg {
			rc, size, err := e.open()
			if err != nil {
				return err
			}
			content, h.Size = rc, size
		}
		if err := tw.WriteHeader(h); err != nil {
			closeQuietly(content)
			return fmt.Errorf("cannot write tar header of %q: %w", p, err)
		}
		if content != nil {
			n, err := io.Copy(tw, content)
			closeQuietly(content)
			if err != nil {
				return fmt.Errorf("cannot write %q: %w", p, err)
			}
			if n != h.Size {
				return fmt.Errorf("cannot write %q: it changed while it was read", p)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("cannot close tar stream: %w", err)
	}
	return nil
}

func closeQuietly(c io.Closer) {
	if c != nil {
		_ = c.Close()
	}
}

// open returns a regular file's content and size.
func (e Entry) open() (io.ReadCloser, int64, error) {
	if e.Source == "" {
		return io.NopCloser(strings.NewReader(string(e.Data))), int64(len(e.Data)), nil
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot open %q: %w", e.Source, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("cannot stat %q: %w", e.Source, err)
	}
	return f, fi.Size(), nil
}

// Key is the hash of everything the tree's layer is made of: paths, types,
// modes, owners, link targets and contents. Two trees with one key write
// the same layer.
func (t Tree) Key() (string, error) {
	ps, all := t.paths()
	h := sha256.New()
	for _, p := range ps {
		e := all[p]
		fmt.Fprintf(h, "%q %d %o %d %d %q ", p, e.Type, e.Mode, e.UID, e.GID, e.Link)
		if e.Type == tar.TypeReg {
			rc, size, err := e.open()
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "%d ", size)
			_, err = io.Copy(h, rc)
			closeQuietly(rc)
			if err != nil {
				return "", fmt.Errorf("cannot read %q: %w", p, err)
			}
		}
		fmt.Fprintln(h)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Layer returns the tree as a gzip-compressed OCI layer, kept in cacheDir
// under the tree's key: a tree whose key is cached is not written again.
func (t Tree) Layer(cacheDir string) (v1.Layer, error) {
	key, err := t.Key()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create layer cache: %w", err)
	}
	file := filepath.Join(cacheDir, key+".tar.gz")
	if _, err := os.Stat(file); err != nil {
		if err := t.writeLayerFile(file); err != nil {
			return nil, err
		}
	}
	l, err := tarball.LayerFromFile(file, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("cannot read layer %q: %w", file, err)
	}
	return l, nil
}

// writeLayerFile writes the compressed tar to file through a temporary
// file, so an interrupted build never leaves half a layer under its key.
func (t Tree) writeLayerFile(file string) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".layer-*")
	if err != nil {
		return fmt.Errorf("cannot create layer file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	// A gzip header without name or time keeps the bytes a function of
	// the content alone.
	zw, err := gzip.NewWriterLevel(tmp, gzip.DefaultCompression)
	if err != nil {
		_ = tmp.Close()
		return fmt.Errorf("cannot compress layer: %w", err)
	}
	if err := t.WriteTar(zw); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("cannot compress layer: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write layer file: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("cannot write layer file: %w", err)
	}
	return nil
}
