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
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultPath is the PATH of every image.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Spec describes one runtime image: its layers, bottom first, and how a
// container of it starts.
type Spec struct {
	Layers     []v1.Layer
	Entrypoint []string
	Cmd        []string
	// User is the image's user, "uid:gid"; root if empty.
	User       string
	Env        []string
	WorkingDir string
	Labels     map[string]string
}

// Build assembles an OCI image for linux/amd64 from the spec. The config
// holds no creation time and no history, so its digest depends on the
// spec alone.
func Build(s Spec) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, 0, len(s.Layers))
	for _, l := range s.Layers {
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: types.OCILayer})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("cannot append layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("cannot read image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{}
	cf.History = nil
	env := s.Env
	if len(env) == 0 {
		env = []string{DefaultPath}
	}
	cf.Config = v1.Config{
		Entrypoint: s.Entrypoint, Cmd: s.Cmd, User: s.User, Env: env,
		WorkingDir: s.WorkingDir, Labels: s.Labels,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("cannot set image config: %w", err)
	}
	return img, nil
}

// Layout is an OCI image layout directory holding images by name.
type Layout struct {
	path layout.Path
}

// OpenLayout opens the OCI image layout at dir, creating an empty one
// when dir holds none.
func OpenLayout(dir string) (*Layout, error) {
	p, err := layout.FromPath(dir)
	if err == nil {
		return &Layout{path: p}, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot open image layout %q: %w", dir, err)
	}
	p, err = layout.Write(dir, empty.Index)
	if err != nil {
		return nil, fmt.Errorf("cannot create image layout %q: %w", dir, err)
	}
	return &Layout{path: p}, nil
}

// Put stores img under ref (a full reference, repository and tag),
// replacing the image that held that name before. Blobs already in the
// layout are not written again.
func (l *Layout) Put(ref string, img v1.Image) error {
	if err := l.path.ReplaceImage(img, match.Name(ref), layout.WithAnnotations(map[string]string{imagespec.AnnotationRefName: ref})); err != nil {
		return fmt.Errorf("cannot write image %q: %w", ref, err)
	}
	return nil
}

// Get returns the image stored under ref.
func (l *Layout) Get(ref string) (v1.Image, error) {
	ii, err := l.path.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("cannot read image layout: %w", err)
	}
	m, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("cannot read image layout: %w", err)
	}
	for _, d := range m.Manifests {
		if d.Annotations[imagespec.AnnotationRefName] == ref {
			img, err := ii.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("cannot read image %q: %w", ref, err)
			}
			return img, nil
		}
	}
	return nil, fmt.Errorf("cannot find image %q in the layout", ref)
}

// Refs lists the names the layout holds images under, with their digests.
func (l *Layout) Refs() (map[string]v1.Hash, error) {
	ii, err := l.path.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("cannot read image layout: %w", err)
	}
	m, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("cannot read image layout: %w", err)
	}
	out := map[string]v1.Hash{}
	for _, d := range m.Manifests {
		if n := d.Annotations[imagespec.AnnotationRefName]; n != "" {
			out[n] = d.Digest
		}
	}
	return out, nil
}

// SortedRefs lists the names of refs in order.
func SortedRefs(refs map[string]v1.Hash) []string {
	out := make([]string, 0, len(refs))
	for r := range refs {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Push copies the images of the layout named below from with the given
// tag (any tag if empty) to the registry to (a host with an optional path), keeping each
// image's repository path below from and its tag, and returns the
// references it pushed to, in order. Blobs the registry holds already are
// not sent again.
func (l *Layout) Push(from, tag, to string, opts ...remote.Option) ([]string, error) {
	refs, err := l.Refs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range SortedRefs(refs) {
		if !strings.HasPrefix(r, from) || (tag != "" && !strings.HasSuffix(r, ":"+tag)) {
			continue
		}
		img, err := l.Get(r)
		if err != nil {
			return out, err
		}
		dst, err := Rebase(r, from, to)
		if err != nil {
			return out, err
		}
		t, err := name.NewTag(dst)
		if err != nil {
			return out, fmt.Errorf("cannot parse destination %q: %w", dst, err)
		}
		if err := remote.Write(t, img, opts...); err != nil {
			return out, fmt.Errorf("cannot push %q: %w", dst, err)
		}
		out = append(out, dst)
	}
	return out, nil
}

// Newest returns the tag of the image of repository repo (a reference
// without its tag) that the layout received last, or "" when it holds
// none: a layout keeps every version built, in the order they were put.
func (l *Layout) Newest(repo string) (string, error) {
	ii, err := l.path.ImageIndex()
	if err != nil {
		return "", fmt.Errorf("cannot read image layout: %w", err)
	}
	m, err := ii.IndexManifest()
	if err != nil {
		return "", fmt.Errorf("cannot read image layout: %w", err)
	}
	newest := ""
	for _, d := range m.Manifests {
		if tag, ok := strings.CutPrefix(d.Annotations[imagespec.AnnotationRefName], repo+":"); ok {
			newest = tag
		}
	}
	return newest, nil
}
