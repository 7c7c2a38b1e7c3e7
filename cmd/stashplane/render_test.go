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

package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestRenderCommand runs `stashplane render` as a user would and compares
// its output with testdata/render/*.golden (-update rewrites them).
func TestRenderCommand(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	b, err := os.ReadFile(filepath.Join("testdata", "render", "app-backup.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, bytes.Replace(b, []byte(`paths: ["/var/lib/app"]`), []byte(`paths: 42`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	unnamed := filepath.Join(t.TempDir(), "unnamed.yaml")
	if err := os.WriteFile(unnamed, bytes.ReplaceAll(b, []byte("  namespace: demo\n"), nil), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		reason string
		args   []string
		golden string
		// errParts must all be in the error.
		errParts []string
		// outParts must all be in the output, when there is no golden.
		outParts []string
	}{
		"NamespaceFlag": {
			reason:   "-n gives objects that name no namespace one, as kubectl does.",
			args:     []string{"-f", unnamed, "-n", "team-a", "--time", "1767225600"},
			outParts: []string{"# team-a/app-backup session app-backup-hourly-1767225600", "namespace: team-a"},
		},
		"JSON": {
			reason:   "-o json prints the Jobs as one JSON List.",
			args:     []string{"-f", filepath.Join("testdata", "render", "app-backup.yaml"), "-o", "json", "--time", "1767225600"},
			outParts: []string{`"kind": "List"`, `"kind": "Job"`, `"namespace": "demo"`},
		},
		"WorkloadBackup": {
			reason: "The example configuration renders the workload-addon backup Job.",
			args:   []string{"-f", filepath.Join("testdata", "render", "app-backup.yaml"), "--time", "1767225600", "--image", "ghcr.io/stashplane/stashplane:v0.1.0"},
			golden: "app-backup",
		},
		"StatefulSetPerPod": {
			reason: "A StatefulSet renders one backup Job per pod, each mounting the claims of its ordinal.",
			args:   []string{"-f", filepath.Join("testdata", "render", "db-statefulset.yaml"), "--time", "1767225600", "--image", "ghcr.io/stashplane/stashplane:v0.1.0"},
			golden: "db-statefulset",
		},
		"BadParams": {
			reason:   "Parameters that violate the Function's #Params are an error with CUE's position and path, and nothing is printed.",
			args:     []string{"-f", broken, "--time", "1"},
			errParts: []string{`cannot render task "logical-backup" of addon "workload-addon"`, "workload-backup.cue:", "params.paths: conflicting values"},
		},
		"NoBuiltin": {
			reason:   "Without the built-in addons the configuration's addon is unknown.",
			args:     []string{"-f", filepath.Join("testdata", "render", "app-backup.yaml"), "--no-builtin"},
			errParts: []string{`cannot find addon "workload-addon"`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := renderCommand()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(tc.args)
			err := cmd.Execute()
			if len(tc.outParts) > 0 {
				if err != nil {
					t.Fatalf("\n%s\nrender: %v", tc.reason, err)
				}
				for _, p := range tc.outParts {
					if !strings.Contains(out.String(), p) {
						t.Errorf("\n%s\nrender: output does not contain %q:\n%s", tc.reason, p, out.String())
					}
				}
				return
			}
			if tc.golden == "" {
				if err == nil {
					t.Fatalf("\n%s\nrender: want error, got output:\n%s", tc.reason, out.String())
				}
				for _, p := range tc.errParts {
					if !strings.Contains(err.Error(), p) {
						t.Errorf("\n%s\nrender: error %q does not contain %q", tc.reason, err, p)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("\n%s\nrender: %v", tc.reason, err)
			}
			path := filepath.Join("testdata", "render", tc.golden+".golden")
			if *update {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("\n%s\nrender: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
