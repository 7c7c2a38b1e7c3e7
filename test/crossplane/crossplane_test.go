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
// Protection through the class Compositions against the function served
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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/xfn"
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
	log, err := function.NewLogger(false)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		errc <- function.Serve(xfn.New(log),
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

// TestRender composes the example Protection through each class the
// Configuration ships, with the crossplane CLI driving the function as
// Crossplane core does: it asks for the storage and the Snapshots, and
// reads the observed composed resources back into the Protection.
func TestRender(t *testing.T) {
	addr := serveFunction(t)
	dir := t.TempDir()
	ex := filepath.Join(root, "examples", "crossplane")
	functions := withReplaced(t, filepath.Join(ex, "functions.yaml"), dir, "127.0.0.1:9443", addr)
	xr := filepath.Join(ex, "xr.yaml")
	comp := filepath.Join(root, "compositions", "protection-hourly-verified-daily.yaml")
	required := filepath.Join(ex, "required.yaml")

	t.Run("Composed", func(t *testing.T) {
		for file, schedules := range map[string][2]string{
			"protection-hourly-verified-daily.yaml": {"0 * * * *", "30 3 * * *"},
			"protection-daily-verified-weekly.yaml": {"0 2 * * *", "30 4 * * 0"},
		} {
			out, _ := run(t, false, "render", xr, filepath.Join(root, "compositions", file), functions, "--required-resources", required)
			objs := decode(t, out)
			bc, bv := &corev1alpha1.BackupConfiguration{}, &corev1alpha1.BackupVerifier{}
			for o, u := range map[runtime.Object]*unstructured.Unstructured{bc: objs["BackupConfiguration"], bv: objs["BackupVerifier"]} {
				if u == nil {
					t.Fatalf("%s: render printed no BackupConfiguration and BackupVerifier:\n%s", file, out)
				}
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, o); err != nil {
					t.Fatal(err)
				}
			}
			s := bc.Spec.Sessions[0]
			got := map[string]any{
				"configuration": bc.Namespace + "/" + bc.Name, "target": *bc.Spec.Target, "storage": *bc.Spec.Backends[0].StorageRef,
				"schedule": s.Scheduler.Schedule, "params": string(s.Addon.Tasks[0].Params.Raw), "repository": s.Repositories[0].Directory,
				"deletionPolicy": s.Repositories[0].DeletionPolicy, "verifierLink": s.Repositories[0].BackupVerifier.Name,
				"verifier": bv.Namespace + "/" + bv.Name, "verifySchedule": bv.Spec.Scheduler.Schedule, "xrReady": readyStatus(objs["Protection"]),
			}
			want := map[string]any{
				"configuration": "demo/app", "target": storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "app"},
				"storage": storagev1alpha1.ObjectReference{Namespace: "platform", Name: "shared"}, "schedule": schedules[0],
				"params": `{"paths":["/var/lib/app"]}`, "repository": "demo/app", "deletionPolicy": corev1alpha1.RepositoryDeletionPolicyRetain,
				"verifierLink": "app-verifier", "verifier": "demo/app-verifier", "verifySchedule": schedules[1], "xrReady": "False",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: composed: -want +got:\n%s", file, diff)
			}
		}
	})

	t.Run("ReadyAndVerified", func(t *testing.T) {
		out, _ := run(t, false, "render", xr, comp, functions, "--observed-resources", filepath.Join(ex, "observed.yaml"), "--required-resources", required)
		p := decode(t, out)["Protection"]
		last, _, _ := unstructured.NestedStringMap(p.Object, "status", "lastSnapshot")
		phase, _, _ := unstructured.NestedString(p.Object, "status", "configuration", "phase")
		got := map[string]string{"ready": readyStatus(p), "phase": phase, "snapshot": last["name"], "verification": last["verification"], "restoreDuration": last["restoreDuration"]}
		want := map[string]string{"ready": "True", "phase": "Ready", "snapshot": "app-app-scheduled-1796374800", "verification": "Verified", "restoreDuration": "4.1s"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Protection with its composed objects ready: -want +got:\n%s\n%s", diff, out)
		}
	})

	t.Run("FatalOnMissingStorage", func(t *testing.T) {
		noStorage := withReplaced(t, required, dir, "name: shared\n", "name: elsewhere\n")
		_, stderr := run(t, true, "render", xr, comp, functions, "--required-resources", noStorage)
		if !strings.Contains(stderr, "spec.storage.name: backupstorage platform/shared does not exist") {
			t.Errorf("render error does not name the missing storage:\n%s", stderr)
		}
	})

	t.Run("FatalOnBadSchedule", func(t *testing.T) {
		bad := withReplaced(t, xr, dir, `encryptionSecret: app-encryption`, "encryptionSecret: app-encryption\n  schedule: every hour")
		_, stderr := run(t, true, "render", bad, comp, functions)
		if !strings.Contains(stderr, `spec.schedule: cannot parse \"every hour\"`) && !strings.Contains(stderr, `spec.schedule: cannot parse "every hour"`) {
			t.Errorf("render error does not name the schedule:\n%s", stderr)
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
