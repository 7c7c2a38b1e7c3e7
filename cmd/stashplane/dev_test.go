//go:build linux

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stashplane/stashplane/internal/image"
)

// TestServeImages serves a layout's Stashplane images from a registry on
// loopback (`stashplane dev up --images`), and refuses a directory that
// is no layout or holds none of them.
func TestServeImages(t *testing.T) {
	tree := image.Tree{}
	if err := tree.Bytes("etc/x", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	layer, err := tree.Layer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := image.Build(image.Spec{Layers: []v1.Layer{layer}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	l, err := image.OpenLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"ghcr.io/stashplane/stashplane:v1", "docker.io/library/busybox:1"} {
		if err := l.Put(r, img); err != nil {
			t.Fatal(err)
		}
	}
	r, loaded, _, err := serveImages(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Stop() }()
	if diff := cmp.Diff([]string{r.Addr + "/stashplane/stashplane:v1"}, loaded); diff != "" {
		t.Errorf("served: -want +got:\n%s", diff)
	}
	ref, err := name.ParseReference(loaded[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(ref); err != nil {
		t.Errorf("cannot pull %s: %v", loaded[0], err)
	}

	if _, _, _, err := serveImages(t.Context(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "make images") {
		t.Errorf("a directory that is no layout: error %v, want one saying to run make images", err)
	}
	other := filepath.Join(t.TempDir(), "oci")
	ol, err := image.OpenLayout(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := ol.Put("docker.io/library/busybox:1", img); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := serveImages(t.Context(), other); err == nil || !strings.Contains(err.Error(), "holds no image") {
		t.Errorf("a layout without Stashplane images: error %v, want one saying so", err)
	}
}
