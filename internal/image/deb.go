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
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Pin is one Debian package at an exact version and content.
type Pin struct {
	Package string
	Version string
	Arch    string
	SHA256  string
}

// File is the name apt-get download gives the package's file.
func (p Pin) File() string {
	return p.Package + "_" + strings.ReplaceAll(p.Version, ":", "%3a") + "_" + p.Arch + ".deb"
}

// ParsePins reads a pin file: one package a line, "NAME=VERSION ARCH
// SHA256", with blank lines and lines starting with # ignored.
func ParsePins(r io.Reader) ([]Pin, error) {
	var out []Pin
	s := bufio.NewScanner(r)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("cannot parse pin on line %d: want NAME=VERSION ARCH SHA256, got %q", n, line)
		}
		name, version, ok := strings.Cut(f[0], "=")
		if !ok || name == "" || version == "" {
			return nil, fmt.Errorf("cannot parse pin on line %d: %q is not NAME=VERSION", n, f[0])
		}
		if len(f[2]) != sha256.Size*2 {
			return nil, fmt.Errorf("cannot parse pin on line %d: %q is not a SHA-256 digest", n, f[2])
		}
		out = append(out, Pin{Package: name, Version: version, Arch: f[1], SHA256: f[2]})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("cannot read pins: %w", err)
	}
	return out, nil
}

// Fetch makes sure dir holds each pinned package, downloading the missing
// ones with apt-get download (after one apt-get update if that fails), and
// checks every file against its pinned digest.
func Fetch(dir string, pins []Pin) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create package cache: %w", err)
	}
	var missing []string
	for _, p := range pins {
		if _, err := os.Stat(filepath.Join(dir, p.File())); err != nil {
			missing = append(missing, p.Package+"="+p.Version)
		}
	}
	if len(missing) > 0 {
		if err := aptDownload(dir, missing); err != nil {
			if out, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
				return fmt.Errorf("cannot update the package lists: %w: %s", uerr, lastLine(out))
			}
			if err := aptDownload(dir, missing); err != nil {
				return err
			}
		}
	}
	for _, p := range pins {
		if err := p.check(filepath.Join(dir, p.File())); err != nil {
			return err
		}
	}
	return nil
}

func aptDownload(dir string, pkgs []string) error {
	cmd := exec.Command("apt-get", append([]string{"download"}, pkgs...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cannot download packages %s: %w: %s", strings.Join(pkgs, " "), err, lastLine(out))
	}
	return nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// check compares the file's digest with the pin's.
func (p Pin) check(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("cannot open package %q: %w", file, err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("cannot read package %q: %w", file, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return fmt.Errorf("cannot use package %s=%s: its file has digest %s, the pin says %s", p.Package, p.Version, got, p.SHA256)
	}
	return nil
}

// AddDeb adds the file system tree of the Debian package file at path (as
// dpkg would install it, without running its scripts), leaving out what
// skip returns true for.
func (t Tree) AddDeb(path string, skip func(rel string) bool) error {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cannot unpack package %q: %w: %s", path, err, lastLine(stderr.Bytes()))
	}
	if err := t.AddTar(&stdout, "", skip); err != nil {
		return fmt.Errorf("cannot unpack package %q: %w", path, err)
	}
	return nil
}

// Documentation is a skip function that leaves out what no program of an
// image reads: documentation, manual pages and package tool metadata.
func Documentation(rel string) bool {
	for _, d := range []string{"usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/bug"} {
		if rel == d || strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}
