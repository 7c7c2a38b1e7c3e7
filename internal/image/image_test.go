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
	"context"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// small builds a one-layer image whose file holds content.
func small(t *testing.T, content string) v1.Image {
	t.Helper()
	tree := Tree{}
	if err := tree.Bytes("etc/content", []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := tree.Layer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := Build(Spec{Layers: []v1.Layer{l}, Entrypoint: []string{"/bin/x"}, User: NonRoot})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBuild(t *testing.T) {
	a, b := small(t, "one"), small(t, "one")
	if digest(t, a) != digest(t, b) {
		t.Errorf("one spec built twice gives two digests: %s, %s", digest(t, a), digest(t, b))
	}
	if digest(t, a) == digest(t, small(t, "two")) {
		t.Errorf("another content kept the digest")
	}
	cf, err := a.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"os": cf.OS, "arch": cf.Architecture, "created": cf.Created.IsZero(), "history": len(cf.History),
		"entrypoint": cf.Config.Entrypoint, "user": cf.Config.User, "env": cf.Config.Env,
	}
	want := map[string]any{
		"os": "linux", "arch": "amd64", "created": true, "history": 0,
		"entrypoint": []string{"/bin/x"}, "user": NonRoot, "env": []string{DefaultPath},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("image config: -want +got:\n%s", diff)
	}
	mt, err := a.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mt), "oci") {
		t.Errorf("manifest media type %q, want OCI's", mt)
	}
}

// TestLayoutPush stores images in a layout, replaces one by name, and
// pushes one version's images to a registry served in this process.
func TestLayoutPush(t *testing.T) {
	l, err := OpenLayout(filepath.Join(t.TempDir(), "oci"))
	if err != nil {
		t.Fatal(err)
	}
	from := "ghcr.io/stashplane/"
	imgs := map[string]v1.Image{
		from + "stashplane:v1":          small(t, "old"),
		from + "provider-stashplane:v2": small(t, "provider"),
		"docker.io/library/other:v2":    small(t, "other"),
	}
	for r, img := range imgs {
		if err := l.Put(r, img); err != nil {
			t.Fatal(err)
		}
	}
	// The same name again replaces the image.
	imgs[from+"stashplane:v2"] = small(t, "agent")
	if err := l.Put(from+"stashplane:v2", imgs[from+"stashplane:v2"]); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(from+"stashplane:v2", imgs[from+"stashplane:v2"]); err != nil {
		t.Fatal(err)
	}
	refs, err := l.Refs()
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 4 {
		t.Errorf("layout holds %v, want 4 names", SortedRefs(refs))
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	pushed, err := l.Push(from, "v2", host+"/platform")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{host + "/platform/provider-stashplane:v2", host + "/platform/stashplane:v2"}
	if diff := cmp.Diff(want, pushed); diff != "" {
		t.Errorf("pushed: -want +got:\n%s", diff)
	}
	for _, p := range pushed {
		ref, err := name.ParseReference(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("cannot pull %s: %v", p, err)
		}
		src := from + strings.TrimPrefix(p, host+"/platform/")
		if digest(t, img) != digest(t, imgs[src]) {
			t.Errorf("%s has digest %s, the layout's %s has %s", p, digest(t, img), src, digest(t, imgs[src]))
		}
	}
}

// TestRegistryLoad serves a registry on loopback and loads a layout's
// images into it under their repository paths.
func TestRegistryLoad(t *testing.T) {
	l, err := OpenLayout(filepath.Join(t.TempDir(), "oci"))
	if err != nil {
		t.Fatal(err)
	}
	img := small(t, "agent")
	if err := l.Put("ghcr.io/stashplane/stashplane:v3", img); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r, err := ServeRegistry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := r.Load(l, "ghcr.io/stashplane/", "v3")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{r.Addr + "/stashplane/stashplane:v3"}
	if diff := cmp.Diff(want, pushed); diff != "" {
		t.Errorf("loaded: -want +got:\n%s", diff)
	}
	ref, err := name.ParseReference(want[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("cannot pull from the registry: %v", err)
	}
	if digest(t, got) != digest(t, img) {
		t.Errorf("pulled digest %s, want %s", digest(t, got), digest(t, img))
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := remote.Image(ref); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the registry still serves after its context ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
