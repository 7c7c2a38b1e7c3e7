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

// Package crossplane tests Stashplane's Crossplane packaging with the real
// crossplane CLI (built by `make tools` into bin/): it renders the example
// VolumeBackup through the Composition against the render function served
// from this process, and builds the function, provider and configuration
// packages.
package crossplane

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crossplane/function-sdk-go"
	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/functions/xfn"
	stashpkg "github.com/stashplane/stashplane/package"
)

// root is the repository root, relative to this package.
var root = filepath.Join("..", "..")

// cli returns the crossplane CLI; a missing one fails the test.
func cli(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("STASHPLANE_BIN_DIR")
	if dir == "" {
		dir = filepath.Join(root, "bin")
	}
	p, err := filepath.Abs(filepath.Join(dir, "crossplane"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("cannot find the crossplane CLI: run `make tools` (hack/tools.sh crossplane): %v", err)
	}
	return p
}

// run runs the CLI and returns its stdout, or fails with its stderr.
func run(t *testing.T, wantErr bool, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if wantErr != (err != nil) {
		t.Fatalf("crossplane %s: error %v (want error: %t)\nstderr:\n%s", strings.Join(args, " "), err, wantErr, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// serveFunction serves the render function on a free loopback port, as
// `cmd/function --insecure` does, and returns its address. The server lives
// as long as the test process.
func serveFunction(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	objs, err := stashpkg.Addons()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := render.NewCatalog(objs...)
	if err != nil {
		t.Fatal(err)
	}
	log, err := function.NewLogger(false)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		errc <- function.Serve(xfn.New(log, cat, render.Image("v0.1.0")),
			function.Listen("tcp", addr), function.Insecure(true), function.WithMetricsServer(""))
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return addr
		}
		select {
		case err := <-errc:
			t.Fatalf("cannot serve function: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("function server did not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// withTarget copies a file into dir with old replaced by new.
func withReplaced(t *testing.T, src, dir, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", src, old)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, bytes.ReplaceAll(b, []byte(old), []byte(new)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// decode splits the CLI's YAML stream into objects by kind.
func decode(t *testing.T, out string) map[string]*unstructured.Unstructured {
	t.Helper()
	objs := map[string]*unstructured.Unstructured{}
	d := k8syaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := d.Decode(&u.Object); err != nil {
			break
		}
		if len(u.Object) > 0 {
			objs[u.GetKind()] = u
		}
	}
	return objs
}

func readyStatus(xr *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(xr.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Ready" {
			return fmt.Sprint(m["status"])
		}
	}
	return ""
}

func TestRender(t *testing.T) {
	addr := serveFunction(t)
	dir := t.TempDir()
	ex := filepath.Join(root, "examples", "crossplane")
	functions := withReplaced(t, filepath.Join(ex, "functions.yaml"), dir, "127.0.0.1:9443", addr)
	xr := filepath.Join(ex, "xr.yaml")
	comp := filepath.Join(root, "compositions", "volumebackup-composition.yaml")

	t.Run("BackupJob", func(t *testing.T) {
		out, _ := run(t, false, "render", xr, comp, functions)
		objs := decode(t, out)
		u, ok := objs["Job"]
		if !ok {
			t.Fatalf("render printed no Job:\n%s", out)
		}
		job := &batchv1.Job{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, job); err != nil {
			t.Fatal(err)
		}
		c := job.Spec.Template.Spec.Containers[0]
		got := map[string]any{
			"name": job.Name, "namespace": job.Namespace, "image": c.Image, "args": c.Args,
			"dataMount": c.VolumeMounts[0], "xrReady": readyStatus(objs["VolumeBackup"]),
		}
		want := map[string]any{
			"name": "app-nightly-logical-backup", "namespace": "demo", "image": "ghcr.io/stashplane/stashplane:v0.1.0",
			"args": []string{
				"backup", "--namespace=demo", "--storage=demo/s3-storage", "--repository=app-s3",
				"--snapshot=app-s3-app-nightly", "--component=dump", "--paths=/var/lib/app",
				"--storage-secret-dir=/etc/stashplane/storage",
				"--password-file=/etc/stashplane/encryption/RESTIC_PASSWORD", "--scratch-dir=/tmp/stashplane",
			},
			"dataMount": c.VolumeMounts[0], "xrReady": "False",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("rendered Job: -want +got:\n%s", diff)
		}
		if !c.VolumeMounts[0].ReadOnly || c.VolumeMounts[0].MountPath != "/var/lib/app" {
			t.Errorf("target volume mount %+v, want /var/lib/app read-only", c.VolumeMounts[0])
		}
	})

	t.Run("ReadyWhenJobCompleted", func(t *testing.T) {
		out, _ := run(t, false, "render", xr, comp, functions, "--observed-resources", filepath.Join(ex, "observed.yaml"))
		if got := readyStatus(decode(t, out)["VolumeBackup"]); got != "True" {
			t.Errorf("VolumeBackup Ready = %q with a completed Job, want True:\n%s", got, out)
		}
	})

	t.Run("FatalOnBadTask", func(t *testing.T) {
		bad := withReplaced(t, comp, dir, "task: logical-backup", "task: no-such-task")
		_, stderr := run(t, true, "render", xr, bad, functions)
		if !strings.Contains(stderr, `cannot find backup task "no-such-task" in addon "workload-addon"`) {
			t.Errorf("render error does not name the missing task:\n%s", stderr)
		}
	})

	t.Run("FatalOnBadParams", func(t *testing.T) {
		badXR := withReplaced(t, xr, dir, `paths: ["/var/lib/app"]`, `paths: 42`)
		_, stderr := run(t, true, "render", badXR, comp, functions)
		if !strings.Contains(stderr, "params.paths: conflicting values") || !strings.Contains(stderr, "workload-backup.cue:") {
			t.Errorf("render error does not carry the CUE problem:\n%s", stderr)
		}
	})
}

// otherYAML lists, relative to dir, the YAML files a Configuration package
// rooted there must not include: everything but crossplane.yaml and
// compositions/. xpkg build can only ignore files, not directories.
func otherYAML(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if rel == ".git" || rel == "compositions" {
				return filepath.SkipDir
			}
			return nil
		}
		if (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) && rel != "crossplane.yaml" {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestXpkgBuild(t *testing.T) {
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	noExamples := filepath.Join(t.TempDir(), "none")
	cases := map[string]struct {
		reason string
		args   []string
	}{
		"Function": {
			reason: "The render function's package holds its input CRD.",
			args:   []string{"--package-root", filepath.Join(abs, "functions", "package"), "--examples-root", filepath.Join(abs, "examples", "crossplane")},
		},
		"Provider": {
			reason: "The provider package holds the CRDs; the built-in addons are installed by the provider, and the RBAC manifest by the operator, not the package.",
			args:   []string{"--package-root", filepath.Join(abs, "package"), "--examples-root", noExamples, "--ignore", "addons/*.yaml,rbac/*.yaml"},
		},
		"Configuration": {
			reason: "The configuration package holds the XRDs and Compositions under compositions/.",
			args: []string{"--package-root", abs, "--examples-root", filepath.Join(abs, "examples", "crossplane"),
				"--ignore", strings.Join(otherYAML(t, abs), ",")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), strings.ToLower(name)+".xpkg")
			run(t, false, append(append([]string{"xpkg", "build"}, tc.args...), "-o", out)...)
			fi, err := os.Stat(out)
			if err != nil {
				t.Fatalf("\n%s\nxpkg build wrote no package: %v", tc.reason, err)
			}
			if fi.Size() == 0 {
				t.Errorf("\n%s\nxpkg build wrote an empty package", tc.reason)
			}
		})
	}
}
