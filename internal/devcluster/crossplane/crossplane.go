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

// Package crossplane installs Crossplane core on a dev cluster and, through
// it, Stashplane's packages from the cluster's registry, as an operator
// installs them on a cluster of their own: core and its RBAC manager from
// the chart's manifest rendered and pinned in core.yaml, an ImageConfig
// pointing ghcr.io/stashplane/ at the registry, the provider's RBAC and
// runtime configuration, then the Configuration, whose Provider and
// Function Crossplane installs as its dependencies.
package crossplane

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stashplane/stashplane/internal/image"
	"github.com/stashplane/stashplane/internal/version"
)

// Namespace is where core, its RBAC manager and the packages' runtimes run.
const Namespace = "crossplane-system"

// CoreRepository is the repository core's image is published under; the
// dev cluster's registry serves it below the same path.
const CoreRepository = "xpkg.crossplane.io/crossplane/crossplane"

// CoreRegistry is the prefix the node mirrors to the dev cluster's
// registry for core's image.
const CoreRegistry = "xpkg.crossplane.io/crossplane/"

// Names Crossplane gives what the Configuration depends on: a dependency
// is named after its repository as a DNS label.
const (
	Configuration = "stashplane"
	Provider      = "stashplane-provider-stashplane"
	Function      = "stashplane-function-stashplane"
)

//go:embed core.yaml
var coreManifest []byte

// fieldOwner is the dev cluster's field manager for what it applies.
const fieldOwner = "stashplane-dev"

// CoreObjects are the objects of the pinned chart rendering.
func CoreObjects() ([]*unstructured.Unstructured, error) {
	return decode(coreManifest)
}

func decode(b []byte) ([]*unstructured.Unstructured, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read manifest: %w", err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, fmt.Errorf("cannot decode manifest: %w", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		out = append(out, u)
	}
}

var headerVersion = regexp.MustCompile(`^# Crossplane core's chart at (v[^,\s]+), rendered`)

// Version is the Crossplane version core.yaml was rendered for, the tag
// of core's image.
func Version() (string, error) {
	m := headerVersion.FindSubmatch(coreManifest)
	if m == nil {
		return "", errors.New("cannot read the Crossplane version from core.yaml's header")
	}
	return string(m[1]), nil
}

// Header is core.yaml's first two lines: the version and the hash of the
// values it was rendered with.
func Header() string {
	lines := strings.SplitN(string(coreManifest), "\n", 3)
	return strings.Join(lines[:2], "\n")
}

// CoreImage builds core's image from the pinned build in binDir
// (crossplane-core, and crossplane-crds, its CustomResourceDefinitions):
// the binary as its entrypoint, the definitions in /crds where `core init`
// reads them, a non-root user; layers are kept in cacheDir.
func CoreImage(binDir, cacheDir string) (v1.Image, error) {
	t := image.Tree{}
	if err := t.File("usr/local/bin/crossplane", filepath.Join(binDir, "crossplane-core"), 0o755); err != nil {
		return nil, fmt.Errorf("cannot build Crossplane core's image (run `make tools`): %w", err)
	}
	crds, err := filepath.EvalSymlinks(filepath.Join(binDir, "crossplane-crds"))
	if err != nil {
		return nil, fmt.Errorf("cannot build Crossplane core's image (run `make tools`): %w", err)
	}
	if err := t.AddDir(crds, "crds", nil); err != nil {
		return nil, fmt.Errorf("cannot build Crossplane core's image (run `make tools`): %w", err)
	}
	if err := t.Dir("tmp", 0o1777); err != nil {
		return nil, err
	}
	l, err := t.Layer(cacheDir)
	if err != nil {
		return nil, fmt.Errorf("cannot build Crossplane core's image: %w", err)
	}
	return image.Build(image.Spec{Layers: []v1.Layer{l}, Entrypoint: []string{"/usr/local/bin/crossplane"}, User: image.NonRoot})
}

// PushCore builds core's image (see CoreImage) and pushes it to the
// registry at addr, below the path it is published under, with the pinned
// version as its tag.
func PushCore(ctx context.Context, addr, binDir, cacheDir string) error {
	img, err := CoreImage(binDir, cacheDir)
	if err != nil {
		return err
	}
	v, err := Version()
	if err != nil {
		return err
	}
	dst, err := image.Rebase(CoreRepository+":"+v, CoreRegistry, addr+"/"+image.RepositoryPath(CoreRegistry))
	if err != nil {
		return err
	}
	t, err := name.NewTag(dst)
	if err != nil {
		return fmt.Errorf("cannot parse %q: %w", dst, err)
	}
	if err := remote.Write(t, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("cannot push Crossplane core's image: %w", err)
	}
	return nil
}

// Mirrors are the node's image mirrors for a cluster whose registry at
// addr serves Stashplane's images and core's: the names they are
// published under lead to it.
func Mirrors(addr string) map[string]string {
	return map[string]string{
		version.Registry: addr + "/" + image.RepositoryPath(version.Registry) + "/",
		CoreRegistry:     addr + "/" + image.RepositoryPath(CoreRegistry) + "/",
	}
}

// Options say what Install installs.
type Options struct {
	// Registry is the host and port of the registry serving Stashplane's
	// packages below /stashplane/ and core's image.
	Registry string
	// Configuration is the Configuration package to install, by the name
	// it is published under (ghcr.io/stashplane/configuration-stashplane:V).
	Configuration string
	// ProviderRBAC is the manifest of the provider's rights beyond its
	// own kinds and of the DeploymentRuntimeConfig giving it its
	// ServiceAccount (package/rbac/provider.yaml).
	ProviderRBAC []byte
	// Progress receives a line whenever something installed changes.
	Progress io.Writer
}

var (
	imageConfigGVK   = schema.GroupVersionKind{Group: "pkg.crossplane.io", Version: "v1beta1", Kind: "ImageConfig"}
	configurationGVK = schema.GroupVersionKind{Group: "pkg.crossplane.io", Version: "v1", Kind: "Configuration"}
	providerGVK      = schema.GroupVersionKind{Group: "pkg.crossplane.io", Version: "v1", Kind: "Provider"}
	functionGVK      = schema.GroupVersionKind{Group: "pkg.crossplane.io", Version: "v1", Kind: "Function"}
)

// Install installs core and its RBAC manager, then the Configuration with
// its Provider and Function, and returns when all three are Installed and
// Healthy, or ctx ends.
func Install(ctx context.Context, cfg *rest.Config, o Options) error {
	kube, err := client.New(cfg, client.Options{})
	if err != nil {
		return fmt.Errorf("cannot make client: %w", err)
	}
	say := sayer(o.Progress)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if err := kube.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cannot create namespace %s: %w", Namespace, err)
	}
	core, err := CoreObjects()
	if err != nil {
		return err
	}
	for _, u := range core {
		if err := apply(ctx, kube, u); err != nil {
			return err
		}
	}
	v, _ := Version()
	say("Crossplane core %s and its RBAC manager applied; waiting for core to install its definitions ...", v)

	rbac, err := decode(o.ProviderRBAC)
	if err != nil {
		return err
	}
	ic := &unstructured.Unstructured{}
	ic.SetGroupVersionKind(imageConfigGVK)
	ic.SetName("stashplane")
	mirror := Mirrors(o.Registry)[version.Registry]
	ic.Object["spec"] = map[string]any{
		// Core rewrites the packages' names to the registry, and matches
		// the runtime configuration on the name it fetched from: the
		// ImageConfig matches both (rewriting the second to itself).
		"matchImages": []any{
			map[string]any{"type": "Prefix", "prefix": version.Registry},
			map[string]any{"type": "Prefix", "prefix": mirror},
		},
		"rewriteImage": map[string]any{"prefix": mirror},
		// The Provider is installed as a dependency: its ServiceAccount
		// comes from the runtime configuration the ImageConfig attaches.
		"runtime": map[string]any{"configRef": map[string]any{"name": "stashplane"}},
	}
	c := &unstructured.Unstructured{}
	c.SetGroupVersionKind(configurationGVK)
	c.SetName(Configuration)
	c.Object["spec"] = map[string]any{"package": o.Configuration}
	// Core's own kinds are served once `core init` has installed them.
	for _, u := range append(append(rbac, ic), c) {
		if err := waitApply(ctx, kube, u); err != nil {
			return err
		}
	}
	say("ImageConfig %q rewrites %s to %s; Configuration %s applied.", ic.GetName(), version.Registry, o.Registry, o.Configuration)
	return waitHealthy(ctx, kube, "", say)
}

// Upgrade moves the installed packages to version, as an operator does
// without Crossplane's alpha dependency upgrades: the Provider and the
// Function to their images at that version, then the Configuration, whose
// dependencies name that version. It returns once all three run it,
// Installed and Healthy.
func Upgrade(ctx context.Context, cfg *rest.Config, version string, progress io.Writer) error {
	kube, err := client.New(cfg, client.Options{})
	if err != nil {
		return fmt.Errorf("cannot make client: %w", err)
	}
	say := sayer(progress)
	// Dependencies first: the new Configuration names their new version.
	for _, p := range []installed{packages[1], packages[2], packages[0]} {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(p.gvk)
		if err := kube.Get(ctx, client.ObjectKey{Name: p.name}, u); err != nil {
			return fmt.Errorf("cannot read %s %q: %w", p.gvk.Kind, p.name, err)
		}
		pkg, _, _ := unstructured.NestedString(u.Object, "spec", "package")
		tag, err := name.NewTag(pkg, name.StrictValidation)
		if err != nil {
			return fmt.Errorf("cannot upgrade %s %q: its package %q: %w", p.gvk.Kind, p.name, pkg, err)
		}
		repo := tag.Context().String()
		patch := []byte(fmt.Sprintf(`{"spec":{"package":%q}}`, repo+":"+version))
		if err := kube.Patch(ctx, u, client.RawPatch(types.MergePatchType, patch)); err != nil {
			return fmt.Errorf("cannot upgrade %s %q: %w", p.gvk.Kind, p.name, err)
		}
		say("%s %s: %s -> %s", p.gvk.Kind, p.name, pkg, repo+":"+version)
	}
	return waitHealthy(ctx, kube, version, say)
}

// installed names one installed package: the Configuration and the two it
// depends on.
type installed struct {
	gvk  schema.GroupVersionKind
	name string
}

var packages = []installed{{configurationGVK, Configuration}, {providerGVK, Provider}, {functionGVK, Function}}

// sayer writes a line of progress to w, if there is one.
func sayer(w io.Writer) func(string, ...any) {
	return func(format string, args ...any) {
		if w != nil {
			fmt.Fprintf(w, format+"\n", args...)
		}
	}
}

func apply(ctx context.Context, kube client.Client, u *unstructured.Unstructured) error {
	if err := kube.Patch(ctx, u, client.Apply, client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("cannot apply %s %q: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// waitApply applies u, waiting while its kind is not served yet.
func waitApply(ctx context.Context, kube client.Client, u *unstructured.Unstructured) error {
	for {
		err := apply(ctx, kube, u)
		if err == nil || !meta.IsNoMatchError(err) && !apierrors.IsNotFound(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waiting for Crossplane core to serve %s)", err, u.GetKind())
		case <-time.After(time.Second):
		}
	}
}

// packageState is what one package's conditions say.
type packageState struct {
	kind, name string
	installed  bool
	healthy    bool
	// current is the package the current revision was made from.
	current string
	message string
}

func (s packageState) String() string {
	out := fmt.Sprintf("%s %s: installed=%t healthy=%t", s.kind, s.name, s.installed, s.healthy)
	if s.current != "" {
		out += " current=" + s.current
	}
	if s.message != "" {
		out += " (" + s.message + ")"
	}
	return out
}

// waitHealthy waits until the Configuration, the Provider and the Function
// are each Installed and Healthy, and, when version is set, run a revision
// of that version, saying what changes.
func waitHealthy(ctx context.Context, kube client.Client, version string, say func(string, ...any)) error {
	seen := map[string]string{}
	for {
		var states []packageState
		done := true
		for _, w := range packages {
			s := readState(ctx, kube, w.gvk, w.name)
			states = append(states, s)
			done = done && s.installed && s.healthy && (version == "" || strings.HasSuffix(s.current, ":"+version))
			if line := s.String(); seen[w.name] != line {
				seen[w.name] = line
				say("  %s", line)
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			lines := make([]string, 0, len(states))
			for _, s := range states {
				lines = append(lines, s.String())
			}
			return fmt.Errorf("cannot install Stashplane's packages: %w; %s", ctx.Err(), strings.Join(lines, "; "))
		case <-time.After(2 * time.Second):
		}
	}
}

func readState(ctx context.Context, kube client.Client, gvk schema.GroupVersionKind, name string) packageState {
	s := packageState{kind: gvk.Kind, name: name}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := kube.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			s.message = "not created yet"
		} else {
			s.message = err.Error()
		}
		return s
	}
	s.current, _, _ = unstructured.NestedString(u.Object, "status", "currentIdentifier")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var msgs []string
	for _, c := range conds {
		m, _ := c.(map[string]any)
		t, _ := m["type"].(string)
		st, _ := m["status"].(string)
		switch t {
		case "Installed":
			s.installed = st == "True"
		case "Healthy":
			s.healthy = st == "True"
		default:
			continue
		}
		if st != "True" {
			if r, _ := m["reason"].(string); r != "" {
				msg, _ := m["message"].(string)
				msgs = append(msgs, strings.TrimSpace(r+": "+msg))
			}
		}
	}
	slices.Sort(msgs)
	s.message = strings.Join(msgs, "; ")
	return s
}
