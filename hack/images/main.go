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

// Command images builds Stashplane's runtime images and Crossplane packages
// without a container engine (`make images`): static binaries of this
// checkout and of the pinned restic (hack/tools/restic), and the pinned
// Debian packages of hack/images/*.pins go into an OCI image layout (bin/images/oci by
// default), named as they are published, ghcr.io/stashplane/NAME:VERSION,
// with VERSION stamped from git. The Provider and Function packages embed
// their runtime images; the Configuration depends on both at VERSION.
//
//	go run ./hack/images [-out bin/images] [-push REGISTRY]
//
// With -push, every image of the layout is also pushed to REGISTRY (a
// registry host and path, e.g. registry.example.com/platform), keeping
// its repository name below ghcr.io/stashplane/ and its tag.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/stashplane/stashplane/internal/image"
	"github.com/stashplane/stashplane/internal/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

type options struct {
	root, out, bin, debs, version, push string
}

func run() error {
	var o options
	flag.StringVar(&o.root, "root", ".", "the repository's root")
	flag.StringVar(&o.out, "out", "", "directory of the image layout, layer cache and packages (default: ROOT/bin/images)")
	flag.StringVar(&o.bin, "bin", "", "directory of the pinned tools: the crossplane CLI (default: $STASHPLANE_BIN_DIR, else ROOT/bin)")
	flag.StringVar(&o.debs, "debs", "", "directory the pinned Debian packages are kept in (default: OUT/debs)")
	flag.StringVar(&o.version, "version", "", "version to stamp (default: from git)")
	flag.StringVar(&o.push, "push", "", "registry to push the images to after building them")
	flag.Parse()
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	o.root = root
	if o.out == "" {
		o.out = filepath.Join(root, "bin", "images")
	}
	if o.debs == "" {
		o.debs = filepath.Join(o.out, "debs")
	}
	if o.bin == "" {
		o.bin = os.Getenv("STASHPLANE_BIN_DIR")
	}
	if o.bin == "" {
		o.bin = filepath.Join(root, "bin")
	}
	if o.version == "" {
		if o.version, err = gitVersion(root); err != nil {
			return err
		}
	}
	start := time.Now()
	refs, err := build(o)
	if err != nil {
		return err
	}
	fmt.Printf("built in %s, version %s, layout %s:\n", time.Since(start).Round(100*time.Millisecond), o.version, filepath.Join(o.out, "oci"))
	for _, r := range refs {
		fmt.Printf("  %-72s %s %6.1f MB\n", r.ref, r.digest, float64(r.size)/1e6)
	}
	if o.push != "" {
		return push(o)
	}
	return nil
}

// gitVersion stamps the checkout's commit: its tag if it has one of the
// form vX.Y.Z, else a pseudo-version.
func gitVersion(root string) (string, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	commit, err := git("rev-parse", "HEAD")
	if err != nil {
		return "", fmt.Errorf("cannot read the commit to stamp (pass -version): %w", err)
	}
	ts, err := git("show", "-s", "--format=%ct", "HEAD")
	if err != nil {
		return "", fmt.Errorf("cannot read the commit time: %w", err)
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", fmt.Errorf("cannot read the commit time %q: %w", ts, err)
	}
	tag, _ := git("describe", "--tags", "--exact-match", "--match", "v[0-9]*", "HEAD")
	status, err := git("status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return "", fmt.Errorf("cannot read the work tree's status: %w", err)
	}
	return image.Version(tag, commit, time.Unix(secs, 0), status != "")
}

type built struct {
	ref    string
	digest v1.Hash
	size   int64
}

func build(o options) ([]built, error) {
	work := filepath.Join(o.out, "build")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create build directory: %w", err)
	}
	var in image.Inputs
	// restic is built here, static and path-free like the project's own
	// programs, from the module that pins it: bin/restic is built for the
	// host, with go's defaults (hack/tools.sh).
	for _, b := range []struct {
		dir, pkg string
		out      *string
	}{{"", "./cmd/stashplane", &in.Stashplane}, {"", "./cmd/function", &in.Function}, {"hack/tools/restic", "github.com/restic/restic/cmd/restic", &in.Restic}} {
		*b.out = filepath.Join(work, filepath.Base(b.pkg))
		if err := goBuild(o, b.dir, b.pkg, *b.out); err != nil {
			return nil, err
		}
	}
	debs := o.debs
	for _, p := range []struct {
		file string
		out  *[]string
	}{{"base.pins", &in.BaseDebs}, {"postgres.pins", &in.PostgresDebs}} {
		f, err := os.Open(filepath.Join(o.root, "hack", "images", p.file))
		if err != nil {
			return nil, fmt.Errorf("cannot read pins: %w", err)
		}
		pins, err := image.ParsePins(f)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", p.file, err)
		}
		if err := image.Fetch(debs, pins); err != nil {
			return nil, err
		}
		*p.out = image.DebFiles(debs, pins)
	}
	imgs, err := image.Images(in, filepath.Join(o.out, "layers"))
	if err != nil {
		return nil, err
	}
	l, err := image.OpenLayout(filepath.Join(o.out, "oci"))
	if err != nil {
		return nil, err
	}
	var out []built
	put := func(repo string, img v1.Image) error {
		ref := version.Registry + repo + ":" + o.version
		if err := l.Put(ref, img); err != nil {
			return err
		}
		b, err := describe(ref, img)
		if err != nil {
			return err
		}
		out = append(out, b)
		return nil
	}
	for _, repo := range []string{image.Agent, image.AgentPostgres, image.PostgresVerifier} {
		if err := put(repo, imgs[repo]); err != nil {
			return nil, err
		}
	}
	pkgs, err := packages(o, work, imgs)
	if err != nil {
		return nil, err
	}
	for _, repo := range []string{image.ProviderPackage, image.FunctionPackage, image.ConfigurationPackage} {
		if err := put(repo, pkgs[repo]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// goBuild builds a static, path-free binary of pkg, from the module in
// dir below the checkout (the project's own when empty, then stamped with
// the version).
func goBuild(o options, dir, pkg, out string) error {
	ldflags := "-s -w"
	if dir == "" {
		ldflags += " -X github.com/stashplane/stashplane/internal/version.Version=" + o.version
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = filepath.Join(o.root, dir)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cannot build %s: %w\n%s", pkg, err, stderr.String())
	}
	return nil
}

func describe(ref string, img v1.Image) (built, error) {
	d, err := img.Digest()
	if err != nil {
		return built{}, fmt.Errorf("cannot read digest of %q: %w", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return built{}, fmt.Errorf("cannot read manifest of %q: %w", ref, err)
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return built{ref: ref, digest: d, size: size}, nil
}

// packages builds the Provider, Function and Configuration packages with
// the crossplane CLI: the Provider and Function embed their runtime
// images (written for it as image tarballs), the Configuration's
// dependencies are stamped with the version.
func packages(o options, work string, imgs map[string]v1.Image) (map[string]v1.Image, error) {
	cli := filepath.Join(o.bin, "crossplane")
	if _, err := os.Stat(cli); err != nil {
		return nil, fmt.Errorf("cannot find the crossplane CLI: run `make tools` (hack/tools.sh crossplane): %w", err)
	}
	noExamples := filepath.Join(work, "no-examples")
	cfgRoot := filepath.Join(work, "configuration")
	for _, d := range []string{noExamples, cfgRoot} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("cannot clear %q: %w", d, err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create %q: %w", d, err)
		}
	}
	if err := configurationRoot(o, cfgRoot); err != nil {
		return nil, err
	}
	specs := []struct {
		repo, runtime string
		args          []string
	}{
		{image.ProviderPackage, image.ProviderRuntime, []string{"--package-root", filepath.Join(o.root, "package"), "--examples-root", noExamples, "--ignore", "addons/*.yaml,rbac/*.yaml"}},
		{image.FunctionPackage, image.FunctionRuntime, []string{"--package-root", filepath.Join(o.root, "functions", "package"), "--examples-root", filepath.Join(o.root, "examples", "crossplane")}},
		{image.ConfigurationPackage, "", []string{"--package-root", cfgRoot, "--examples-root", filepath.Join(o.root, "examples", "crossplane")}},
	}
	out := map[string]v1.Image{}
	for _, s := range specs {
		args := append([]string{"xpkg", "build"}, s.args...)
		if s.runtime != "" {
			tb := filepath.Join(work, s.runtime+".tar")
			ref, err := name.NewTag(version.Registry + s.runtime + ":" + o.version)
			if err != nil {
				return nil, err
			}
			if err := tarball.WriteToFile(tb, ref, imgs[s.runtime]); err != nil {
				return nil, fmt.Errorf("cannot write runtime image %q: %w", s.runtime, err)
			}
			args = append(args, "--embed-runtime-image-tarball", tb)
		}
		pkgFile := filepath.Join(work, s.repo+".xpkg")
		args = append(args, "-o", pkgFile)
		cmd := exec.Command(cli, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("cannot build package %q: %w\n%s", s.repo, err, stderr.String())
		}
		img, err := tarball.ImageFromPath(pkgFile, nil)
		if err != nil {
			return nil, fmt.Errorf("cannot read package %q: %w", s.repo, err)
		}
		out[s.repo] = img
	}
	return out, nil
}

// configurationRoot lays out the Configuration package: crossplane.yaml
// with its dependencies stamped, and the compositions.
func configurationRoot(o options, dir string) error {
	meta, err := os.ReadFile(filepath.Join(o.root, "crossplane.yaml"))
	if err != nil {
		return fmt.Errorf("cannot read the Configuration's metadata: %w", err)
	}
	stamped, err := image.StampConfiguration(meta, version.Registry, o.version)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "crossplane.yaml"), stamped, 0o644); err != nil {
		return fmt.Errorf("cannot write the Configuration's metadata: %w", err)
	}
	comps, err := filepath.Glob(filepath.Join(o.root, "compositions", "*.yaml"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "compositions"), 0o755); err != nil {
		return err
	}
	for _, c := range comps {
		b, err := os.ReadFile(c)
		if err != nil {
			return fmt.Errorf("cannot read composition: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "compositions", filepath.Base(c)), b, 0o644); err != nil {
			return fmt.Errorf("cannot write composition: %w", err)
		}
	}
	return nil
}

// push copies the layout's images to the registry.
func push(o options) error {
	l, err := image.OpenLayout(filepath.Join(o.out, "oci"))
	if err != nil {
		return err
	}
	pushed, err := l.Push(version.Registry, o.version, o.push, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	for _, p := range pushed {
		fmt.Printf("pushed %s\n", p)
	}
	return err
}
