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

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/image"
)

// TestImageRootFS: an image the process node does not map to a host
// program is pulled from a loopback registry, through a mirror as a
// runtime's registry mirrors rewrite references, and runs from its own
// root file system: it sees its image's files and not the host's, runs as
// the image's user with the image's environment under the container's,
// and writes to its volume and to a writable layer of its own. An image
// the registry does not hold fails its pod with ErrImagePull.
func TestImageRootFS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	build := exec.Command("go", "build", "-trimpath", "-o", probe, "./testdata/rootfsprobe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cannot build the probe: %v\n%s", err, out)
	}
	tree := image.Tree{}
	if err := tree.File("usr/local/bin/probe", probe, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tree.Bytes("etc/image-marker", []byte("from-the-image"), 0o644); err != nil {
		t.Fatal(err)
	}
	layer, err := tree.Layer(filepath.Join(dir, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := image.Build(image.Spec{
		Layers: []v1.Layer{layer}, Entrypoint: []string{"/usr/local/bin/probe"}, User: "65532:65532",
		Env: []string{image.DefaultPath, "FROM_IMAGE=yes", "FROM_CONTAINER=image"}, WorkingDir: "/usr/local",
	})
	if err != nil {
		t.Fatal(err)
	}
	regCtx, stopRegistry := context.WithCancel(ctx)
	t.Cleanup(stopRegistry)
	reg, err := image.ServeRegistry(regCtx)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Addr + "/tests/probe:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}

	c := devclustertest.StartWith(t, devclustertest.Options{ImageMirrors: map[string]string{"images.example.test/": reg.Addr + "/tests/"}})
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	pod := func(name, img string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				RestartPolicy:   corev1.RestartPolicyNever,
				SecurityContext: &corev1.PodSecurityContext{FSGroup: ptr.To[int64](65532)},
				Containers: []corev1.Container{{
					Name: "probe", Image: img,
					Env:          []corev1.EnvVar{{Name: "FROM_CONTAINER", Value: "container"}},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			},
		}
	}
	for _, p := range []*corev1.Pod{pod("probe", "images.example.test/probe:v1"), pod("missing", "images.example.test/missing:v1")} {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if phase := waitPodDone(t, cs, "default", "probe"); phase != corev1.PodSucceeded {
		t.Fatalf("the probe pod ended %s:\n%s", phase, podLogs(t, cs, "default", "probe", "probe"))
	}
	logs := podLogs(t, cs, "default", "probe", "probe")
	for _, want := range []string{
		"uid=65532 gid=65532",                           // the image's user
		"marker=from-the-image",                         // a file of the image
		"host-program=absent",                           // not the host's root
		"from-image=yes from-container=container",       // the container's env over the image's
		"workdir=/usr/local",                            // the image's working directory
		"owner /data/out=65532", "owner /tmp/out=65532", // its volume and its own layer
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the probe does not report %q:\n%s", want, logs)
		}
	}

	var missing *corev1.Pod
	poll(t, 2*time.Minute, "the pod of a missing image did not fail", func(ctx context.Context) (bool, error) {
		missing, err = cs.CoreV1().Pods("default").Get(ctx, "missing", metav1.GetOptions{})
		return err == nil && missing.Status.Phase == corev1.PodFailed, nil
	})
	if missing.Status.Reason != "ErrImagePull" || !strings.Contains(missing.Status.Message, "cannot pull image") {
		t.Errorf("the pod of a missing image: reason %q, message %q; want ErrImagePull saying it cannot pull", missing.Status.Reason, missing.Status.Message)
	}
}
