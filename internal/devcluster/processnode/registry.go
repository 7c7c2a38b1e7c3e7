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

package processnode

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// ImageStore pulls images from OCI registries, for the images the table
// does not map: each runs from its own unpacked root file system, under
// an overlay of its own per container start, as a container runtime runs
// it. Only loopback registries, and the prefixes Mirrors rewrites to one,
// are pulled from: the dev cluster never reaches beyond the machine.
type ImageStore struct {
	// Dir holds the unpacked images, a directory per image digest.
	Dir string
	// Mirrors rewrite the longest matching reference prefix before a
	// pull, as a runtime's registry mirrors do: "ghcr.io/stashplane/" to
	// "127.0.0.1:PORT/stashplane/".
	Mirrors map[string]string

	mu sync.Mutex
}

// PulledImage is an image unpacked on the node.
type PulledImage struct {
	// Ref is the reference the image was pulled by, after mirroring.
	Ref string
	// Root is the unpacked root file system, the overlay's lower layer.
	Root   string
	Config v1.Config
}

// mirrored is ref after the longest matching mirror prefix.
func (s *ImageStore) mirrored(ref string) string {
	best := ""
	for from := range s.Mirrors {
		if strings.HasPrefix(ref, from) && len(from) > len(best) {
			best = from
		}
	}
	if best == "" {
		return ref
	}
	return s.Mirrors[best] + strings.TrimPrefix(ref, best)
}

// Serves says whether the store pulls ref: it names a loopback registry,
// or a mirror rewrites it to one.
func (s *ImageStore) Serves(ref string) bool {
	if s == nil {
		return false
	}
	r, err := name.ParseReference(s.mirrored(ref))
	if err != nil {
		return false
	}
	host := r.Context().RegistryStr()
	return strings.HasPrefix(host, "127.0.0.1:") || strings.HasPrefix(host, "localhost:")
}

// Pull fetches ref and unpacks it once per digest.
func (s *ImageStore) Pull(ctx context.Context, ref string) (*PulledImage, error) {
	if !s.Serves(ref) {
		return nil, fmt.Errorf("cannot pull image %q: the process node pulls only from loopback registries and their mirrors", ref)
	}
	m := s.mirrored(ref)
	r, err := name.ParseReference(m)
	if err != nil {
		return nil, fmt.Errorf("cannot parse image %q: %w", m, err)
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("cannot pull image %q: %w", m, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("cannot read digest of image %q: %w", m, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("cannot read config of image %q: %w", m, err)
	}
	dir := filepath.Join(s.Dir, digest.Hex)
	out := &PulledImage{Ref: m, Root: filepath.Join(dir, "rootfs"), Config: cf.Config}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Stat(out.Root); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot make image directory: %w", err)
	}
	tmp, err := os.MkdirTemp(s.Dir, digest.Hex+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("cannot make image directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return nil, fmt.Errorf("cannot make image directory: %w", err)
	}
	flat := mutate.Extract(img)
	defer flat.Close()
	if err := untar(flat, rootfs); err != nil {
		return nil, fmt.Errorf("cannot unpack image %q: %w", m, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("cannot keep image %q: %w", m, err)
	}
	return out, nil
}

// untar writes the flattened file system of an image below dir. Every
// entry is written through an os.Root, so no name, link or earlier
// symbolic link of the image reaches outside dir; devices and other
// special files are left out.
func untar(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if p == "" {
			continue
		}
		if d := path.Dir(p); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("cannot make %q: %w", d, err)
			}
		}
		mode := fs.FileMode(hdr.Mode).Perm() | fs.FileMode(hdr.Mode)&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("cannot make %q: %w", p, err)
			}
		case tar.TypeReg:
			f, err := root.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("cannot write %q: %w", p, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("cannot write %q: %w", p, err)
			}
		case tar.TypeSymlink:
			if err := root.Symlink(hdr.Linkname, p); err != nil {
				return fmt.Errorf("cannot link %q: %w", p, err)
			}
			_ = root.Lchown(p, hdr.Uid, hdr.Gid)
			continue
		case tar.TypeLink:
			target := strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/")
			if err := root.Link(target, p); err != nil {
				return fmt.Errorf("cannot link %q: %w", p, err)
			}
			continue
		default:
			continue
		}
		if err := root.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("cannot give %q its owner: %w", p, err)
		}
		// After the owner: a change of owner clears set-id bits.
		if err := root.Chmod(p, mode); err != nil {
			return fmt.Errorf("cannot give %q its mode: %w", p, err)
		}
	}
}

// command is the program and arguments a container of the image runs
// (runtimeArgv). A bare program name is looked up on the image's PATH,
// inside its root.
func (img *PulledImage) command(command, args []string) (string, []string, error) {
	argv := runtimeArgv(img.Config.Entrypoint, img.Config.Cmd, command, args)
	if len(argv) == 0 {
		return "", nil, fmt.Errorf("image %q has no entrypoint or cmd: set the container's command", img.Ref)
	}
	prog := argv[0]
	if strings.Contains(prog, "/") {
		return prog, argv, nil
	}
	for _, dir := range filepath.SplitList(img.path()) {
		p := path.Join("/", dir, prog)
		if isProgram(filepath.Join(img.Root, p)) {
			return p, argv, nil
		}
	}
	return "", nil, fmt.Errorf("cannot find program %q on the PATH of image %q", prog, img.Ref)
}

// path is the image's PATH, or the usual one.
func (img *PulledImage) path() string {
	for _, kv := range img.Config.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v
		}
	}
	return usualPath
}

// user is the image's numeric user and group ("uid" or "uid:gid"); a
// user named by name is refused, since the node does not read the
// image's /etc/passwd.
func (img *PulledImage) user() (uid, gid *int64, err error) {
	if img.Config.User == "" {
		return nil, nil, nil
	}
	u, g, hasGroup := strings.Cut(img.Config.User, ":")
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil {
		return nil, nil, fmt.Errorf("image %q runs as user %q: the process node runs only numeric users; set the container's runAsUser", img.Ref, img.Config.User)
	}
	uid = &n
	if hasGroup {
		m, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("image %q runs as group %q: the process node runs only numeric groups; set the container's runAsGroup", img.Ref, g)
		}
		gid = &m
	}
	return uid, gid, nil
}

// pull fetches the image of container c from the node's ImageStore and
// keeps it for the container's starts; the container's command must be
// one the image can run.
func (r *podRun) pull(c corev1.Container) error {
	img, err := r.p.cfg.Registry.Pull(r.ctx, c.Image)
	if err != nil {
		return err
	}
	if _, _, err := img.command(c.Command, c.Args); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pulled[c.Name] = img
	return nil
}

// pulledImage is the image container name runs from its own root file
// system, or nil for one the image table maps to a host program.
func (r *podRun) pulledImage(name string) *PulledImage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pulled[name]
}

// resolve is the program and arguments container c runs for command and
// args: from its image's own root file system when it was pulled, else
// from the image table.
func (r *podRun) resolve(c corev1.Container, command, args []string) (string, []string, error) {
	if img := r.pulledImage(c.Name); img != nil {
		return img.command(command, args)
	}
	return r.p.cfg.Images.Resolve(c.Image, command, args)
}

// identity is who container c runs as: its pod's and its own
// securityContext, else the user its pulled image names.
func (r *podRun) identity(c corev1.Container) (*identity, error) {
	img := r.pulledImage(c.Name)
	if img == nil {
		return identityOf(r.pod, c)
	}
	psc := ptr.Deref(r.pod.Spec.SecurityContext, corev1.PodSecurityContext{})
	csc := ptr.Deref(c.SecurityContext, corev1.SecurityContext{})
	uid, gid, err := img.user()
	if err != nil && csc.RunAsUser == nil && psc.RunAsUser == nil {
		return nil, err
	}
	if csc.RunAsUser == nil && psc.RunAsUser == nil && uid != nil {
		csc.RunAsUser = uid
		if csc.RunAsGroup == nil && psc.RunAsGroup == nil && gid != nil {
			csc.RunAsGroup = gid
		}
		c.SecurityContext = &csc
	}
	return identityOf(r.pod, c)
}
