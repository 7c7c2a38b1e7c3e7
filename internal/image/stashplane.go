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
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The project's images, by repository below the registry (version.Registry
// in a release). The PostgreSQL images are one image under two names.
const (
	// Agent runs `stashplane` with restic beside it: the backup, restore
	// and verification Jobs, the trigger and verifier CronJobs and the
	// local storage's accessor.
	Agent = "stashplane"
	// AgentPostgres is the agent with PostgreSQL 15's server and client
	// programs: the postgres-addon's Jobs.
	AgentPostgres = "stashplane-postgres"
	// PostgresVerifier is the same image, which postgres-query-verifier's
	// Jobs name.
	PostgresVerifier = "postgres-verifier"
	// ProviderRuntime runs `stashplane provider`; it is embedded in the
	// Provider package, not published on its own.
	ProviderRuntime = "provider-stashplane-runtime"
	// FunctionRuntime runs the composition function; it is embedded in the
	// Function package, not published on its own.
	FunctionRuntime = "function-stashplane-runtime"
)

// Paths of the programs inside the images.
const (
	StashplanePath = "/usr/local/bin/stashplane"
	ResticPath     = "/usr/local/bin/restic"
	FunctionPath   = "/usr/local/bin/function"
)

// NonRoot is the user the provider and the function run as.
const NonRoot = "65532:65532"

// Inputs are the files the images are made of.
type Inputs struct {
	// Stashplane and Function are static binaries of cmd/stashplane and
	// cmd/function; Restic is the pinned restic.
	Stashplane, Function, Restic string
	// BaseDebs are the Debian packages of every image (ca-certificates);
	// PostgresDebs those of the PostgreSQL images: PostgreSQL and the
	// closure of libraries its programs load.
	BaseDebs, PostgresDebs []string
}

// Images builds the project's runtime images from in, keeping layers in
// cacheDir, and returns them by repository. Layers are shared: the base
// (users, /tmp, the certificate bundle) by all, restic and the stashplane
// binary by the agent images, the stashplane binary by the provider.
func Images(in Inputs, cacheDir string) (map[string]v1.Image, error) {
	base, err := baseTree(in.BaseDebs)
	if err != nil {
		return nil, err
	}
	pg, err := postgresTree(in.PostgresDebs)
	if err != nil {
		return nil, err
	}
	if missing, err := pg.Missing(); err != nil {
		return nil, err
	} else if len(missing) > 0 {
		return nil, fmt.Errorf("cannot build the PostgreSQL image: the pinned packages lack libraries its programs load (add them to the pins): %s", strings.Join(missing, "; "))
	}
	layers := map[string]Tree{"base": base, "postgres": pg}
	for name, p := range map[string]struct{ src, dst string }{
		"stashplane": {in.Stashplane, StashplanePath},
		"restic":     {in.Restic, ResticPath},
		"function":   {in.Function, FunctionPath},
	} {
		t := Tree{}
		if err := t.File(p.dst, p.src, 0o755); err != nil {
			return nil, err
		}
		if missing, err := t.Missing(); err != nil {
			return nil, err
		} else if len(missing) > 0 {
			return nil, fmt.Errorf("cannot build image layer %q: %s is not static: %s", name, p.src, strings.Join(missing, "; "))
		}
		layers[name] = t
	}
	built := map[string]v1.Layer{}
	for name, t := range layers {
		l, err := t.Layer(cacheDir)
		if err != nil {
			return nil, fmt.Errorf("cannot build image layer %q: %w", name, err)
		}
		built[name] = l
	}
	use := func(names ...string) []v1.Layer {
		out := make([]v1.Layer, 0, len(names))
		for _, n := range names {
			out = append(out, built[n])
		}
		return out
	}
	specs := map[string]Spec{
		Agent:           {Layers: use("base", "restic", "stashplane"), Entrypoint: []string{StashplanePath}},
		AgentPostgres:   {Layers: use("base", "postgres", "restic", "stashplane"), Entrypoint: []string{StashplanePath}},
		ProviderRuntime: {Layers: use("base", "stashplane"), Entrypoint: []string{StashplanePath, "provider"}, User: NonRoot},
		FunctionRuntime: {Layers: use("base", "function"), Entrypoint: []string{FunctionPath}, User: NonRoot},
	}
	out := map[string]v1.Image{}
	for name, s := range specs {
		img, err := Build(s)
		if err != nil {
			return nil, fmt.Errorf("cannot build image %q: %w", name, err)
		}
		out[name] = img
	}
	out[PostgresVerifier] = out[AgentPostgres]
	return out, nil
}

// Users of every image: root, PostgreSQL's conventional user for a
// verifier that drops to it, and the non-root user of the provider and
// the function.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\npostgres:x:999:\nnonroot:x:65532:\n"
)

// baseTree is the layer every image starts with: users and groups, a
// world-writable /tmp, home directories and the CA certificate bundle made
// from the pinned ca-certificates package, as update-ca-certificates
// would make it.
func baseTree(debs []string) (Tree, error) {
	t := Tree{}
	for _, f := range []struct {
		path string
		data string
	}{{"etc/passwd", passwd}, {"etc/group", group}, {"etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n"}} {
		if err := t.Bytes(f.path, []byte(f.data), 0o644); err != nil {
			return nil, err
		}
	}
	for _, d := range []struct {
		path string
		mode int64
		uid  int
	}{{"tmp", 0o1777, 0}, {"root", 0o700, 0}, {"home/nonroot", 0o755, 65532}, {"var/lib/postgresql", 0o755, 999}} {
		if err := t.Dir(d.path, d.mode); err != nil {
			return nil, err
		}
		e := t[d.path]
		e.UID, e.GID = d.uid, d.uid
		t[d.path] = e
	}
	certs := Tree{}
	for _, deb := range debs {
		if err := certs.AddDeb(deb, Documentation); err != nil {
			return nil, err
		}
	}
	bundle, err := certs.bundle("usr/share/ca-certificates")
	if err != nil {
		return nil, err
	}
	if len(bundle) == 0 {
		return nil, fmt.Errorf("cannot build the certificate bundle: the base packages hold no certificates under /usr/share/ca-certificates")
	}
	if err := t.Bytes("etc/ssl/certs/ca-certificates.crt", bundle, 0o644); err != nil {
		return nil, err
	}
	return t, nil
}

// bundle joins the .crt files below dir, in path order.
func (t Tree) bundle(dir string) ([]byte, error) {
	var ps []string
	for p, e := range t {
		if strings.HasPrefix(p, dir+"/") && strings.HasSuffix(p, ".crt") && e.Type == tar.TypeReg {
			ps = append(ps, p)
		}
	}
	sort.Strings(ps)
	var b bytes.Buffer
	for _, p := range ps {
		data := t[p].Data
		if t[p].Source != "" {
			var err error
			if data, err = os.ReadFile(t[p].Source); err != nil {
				return nil, fmt.Errorf("cannot read certificate %q: %w", p, err)
			}
		}
		b.Write(bytes.TrimRight(data, "\n"))
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// postgresTree holds the PostgreSQL packages and their libraries, without
// the LLVM JIT (PostgreSQL runs without it when its module is absent) and
// without documentation.
func postgresTree(debs []string) (Tree, error) {
	t := Tree{}
	for _, deb := range debs {
		if err := t.AddDeb(deb, skipPostgres); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func skipPostgres(rel string) bool {
	if Documentation(rel) {
		return true
	}
	base := path.Base(rel)
	return strings.HasPrefix(base, "llvmjit") || rel == "usr/lib/postgresql/15/lib/bitcode" ||
		strings.HasPrefix(rel, "usr/lib/postgresql/15/lib/bitcode/")
}

// DebFiles are the files of pins in dir.
func DebFiles(dir string, pins []Pin) []string {
	out := make([]string, 0, len(pins))
	for _, p := range pins {
		out = append(out, filepath.Join(dir, p.File()))
	}
	return out
}
