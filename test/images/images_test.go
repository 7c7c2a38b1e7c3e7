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

// Package images tests `make images` (hack/images) as an operator runs it:
// two builds of this commit into empty directories give the same digests,
// the programs of each image run from its unpacked root file system, and
// the Crossplane packages carry their runtime images and stamped
// dependencies.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"github.com/stashplane/stashplane/internal/image"
)

var root = filepath.Join("..", "..")

const version = "v0.0.0-20260101000000-000000000000"

var (
	once     sync.Once
	first    string
	firstErr error
)

// build runs hack/images into a new directory with a fixed version, the
// pinned packages shared with `make images`' cache, and returns the
// directory.
func build(t *testing.T, out string) {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./hack/images", "-out", out, "-version", version,
		"-debs", filepath.Join(abs, "bin", "images", "debs"))
	cmd.Dir = abs
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("hack/images: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	t.Logf("hack/images into %s took %s:\n%s", out, time.Since(start).Round(time.Second), stdout.String())
}

// built returns the layout of one build shared by the tests.
func built(t *testing.T) *image.Layout {
	t.Helper()
	once.Do(func() {
		first, firstErr = os.MkdirTemp("", "stashplane-images-")
	})
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if _, err := os.Stat(filepath.Join(first, "oci", "index.json")); err != nil {
		build(t, first)
	}
	l, err := image.OpenLayout(filepath.Join(first, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMain(m *testing.M) {
	code := m.Run()
	if first != "" {
		_ = os.RemoveAll(first)
	}
	os.Exit(code)
}

func ref(repo string) string { return "ghcr.io/stashplane/" + repo + ":" + version }

// TestReproducible builds twice into empty directories (no layer cache):
// every image and package has the same digest.
func TestReproducible(t *testing.T) {
	a, err := built(t).Refs()
	if err != nil {
		t.Fatal(err)
	}
	names := image.SortedRefs(a)
	want := []string{
		ref(image.ConfigurationPackage), ref(image.FunctionPackage), ref(image.PostgresVerifier),
		ref(image.ProviderPackage), ref(image.AgentPostgres), ref(image.Agent),
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("images built: -want +got:\n%s", diff)
	}
	second := t.TempDir()
	build(t, second)
	l, err := image.OpenLayout(filepath.Join(second, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Refs()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("two builds of one commit differ: -first +second:\n%s", diff)
	}
}

// unpack writes the image's root file system into a new directory.
func unpack(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := t.TempDir()
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// A container runtime gives every container a /dev; the
			// programs here need its /dev/null.
			if err := os.MkdirAll(filepath.Join(dir, "dev"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mknod(filepath.Join(dir, "dev", "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Join(dir, "dev", "null"), 0o666); err != nil {
				t.Fatal(err)
			}
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, os.FileMode(h.Mode).Perm()); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			_ = f.Close()
		case tar.TypeSymlink:
			_ = os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.Symlink(h.Linkname, p); err != nil {
				t.Fatal(err)
			}
		case tar.TypeLink:
			_ = os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.Link(filepath.Join(dir, filepath.Clean("/"+h.Linkname)), p); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeDir || h.Typeflag == tar.TypeReg {
			// Chown clears setuid and sticky bits; put the mode back.
			if err := os.Chmod(p, fileMode(h.Mode)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func fileMode(m int64) os.FileMode {
	mode := os.FileMode(m).Perm()
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// inRoot runs a program of the unpacked image as user ("uid:gid") with the
// image's root as its root, and returns its output.
func inRoot(t *testing.T, rootfs, user string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chroot", append([]string{"--userspec=" + user, rootfs}, args...)...)
	cmd.Env = []string{image.DefaultPath, "HOME=/tmp"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in the image: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestProgramsRun runs each image's programs from its own root file
// system: nothing of the host's is in reach, so a library the pins lack
// fails here.
func TestProgramsRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("running programs in an image's root needs root (chroot), as the dev cluster does")
	}
	l := built(t)
	cases := map[string]struct {
		repo string
		user string
		args []string
		want string
	}{
		"AgentStashplane": {repo: image.Agent, user: "0:0", args: []string{"/usr/local/bin/stashplane", "--help"}, want: "Usage:"},
		"AgentRestic":     {repo: image.Agent, user: "0:0", args: []string{"/usr/local/bin/restic", "version"}, want: "restic 0.18.1"},
		"Postgres":        {repo: image.AgentPostgres, user: "999:999", args: []string{"/usr/lib/postgresql/15/bin/postgres", "--version"}, want: "postgres (PostgreSQL) 15.18"},
		"Psql":            {repo: image.AgentPostgres, user: "999:999", args: []string{"/usr/lib/postgresql/15/bin/psql", "--version"}, want: "psql (PostgreSQL) 15.18"},
		"PgDumpAll":       {repo: image.AgentPostgres, user: "0:0", args: []string{"/usr/lib/postgresql/15/bin/pg_dumpall", "--version"}, want: "pg_dumpall (PostgreSQL) 15.18"},
		"InitDB": {
			repo: image.PostgresVerifier, user: "999:999",
			args: []string{"/usr/lib/postgresql/15/bin/initdb", "-D", "/tmp/data", "-U", "postgres", "--auth=trust"},
			want: "Success.",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			img, err := l.Get(ref(tc.repo))
			if err != nil {
				t.Fatal(err)
			}
			rootfs := unpack(t, img)
			if out := inRoot(t, rootfs, tc.user, tc.args...); !strings.Contains(out, tc.want) {
				t.Errorf("%s printed no %q:\n%s", strings.Join(tc.args, " "), tc.want, out)
			}
		})
	}
	t.Run("CertificateBundle", func(t *testing.T) {
		img, err := l.Get(ref(image.Agent))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(unpack(t, img), "etc", "ssl", "certs", "ca-certificates.crt"))
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("BEGIN CERTIFICATE")); n < 100 {
			t.Errorf("the agent's certificate bundle holds %d certificates, want Mozilla's set (over 100)", n)
		}
	})
}

// packageYAML reads package.yaml from a Crossplane package image.
func packageYAML(t *testing.T, img v1.Image) string {
	t.Helper()
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatal("the package holds no package.yaml")
		}
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Clean("/"+h.Name) == "/package.yaml" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}

// TestPackages reads the Crossplane packages as core would: the Provider
// and Function packages start as their runtime images (Crossplane runs
// the package image itself when it embeds one), and the Configuration
// depends on both at the version of this build.
func TestPackages(t *testing.T) {
	l := built(t)
	type got struct {
		Entrypoint []string
		User       string
		Kind       string
		// Program says whether the entrypoint's program is in the
		// package's file system: the package runs as its own image.
		Program bool
	}
	cases := map[string]struct {
		repo string
		want got
	}{
		"Provider":      {repo: image.ProviderPackage, want: got{Entrypoint: []string{image.StashplanePath, "provider"}, User: image.NonRoot, Kind: "kind: Provider", Program: true}},
		"Function":      {repo: image.FunctionPackage, want: got{Entrypoint: []string{image.FunctionPath}, User: image.NonRoot, Kind: "kind: Function", Program: true}},
		"Configuration": {repo: image.ConfigurationPackage, want: got{Kind: "kind: Configuration"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			img, err := l.Get(ref(tc.repo))
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			pkg := packageYAML(t, img)
			g := got{Entrypoint: cf.Config.Entrypoint, User: cf.Config.User}
			if len(cf.Config.Entrypoint) > 0 {
				_, err := os.Stat(filepath.Join(unpack(t, img), cf.Config.Entrypoint[0]))
				g.Program = err == nil
			}
			if strings.Contains(pkg, tc.want.Kind+"\n") {
				g.Kind = tc.want.Kind
			}
			if diff := cmp.Diff(tc.want, g); diff != "" {
				t.Errorf("package %s: -want +got:\n%s\npackage.yaml:\n%s", tc.repo, diff, pkg)
			}
			if tc.repo != image.ConfigurationPackage {
				return
			}
			var deps []image.Dependency
			for _, doc := range strings.Split(pkg, "\n---\n") {
				if strings.Contains(doc, "kind: Configuration\n") {
					if deps, err = image.Dependencies([]byte(doc)); err != nil {
						t.Fatal(err)
					}
				}
			}
			want := []image.Dependency{
				{Kind: "Provider", Package: "ghcr.io/stashplane/" + image.ProviderPackage, Version: version},
				{Kind: "Function", Package: "ghcr.io/stashplane/" + image.FunctionPackage, Version: version},
			}
			if diff := cmp.Diff(want, deps); diff != "" {
				t.Errorf("the Configuration's dependencies: -want +got:\n%s", diff)
			}
		})
	}
}
