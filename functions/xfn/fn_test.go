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

package xfn

import (
	"context"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/google/go-cmp/cmp"

	"github.com/stashplane/stashplane/functions/render"
	stashpkg "github.com/stashplane/stashplane/package"
)

const xr = `{"apiVersion": "platform.stashplane.io/v1alpha1", "kind": "VolumeBackup",
 "metadata": {"name": "app-nightly", "namespace": "demo"},
 "spec": {"target": {"kind": "Deployment", "name": "app",
   "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "app-data"}}],
   "volumeMounts": [{"name": "data", "mountPath": "/var/lib/app"}]},
  "storage": {"name": "s3", "namespace": "demo", "secretName": "s3-credentials"},
  "repository": {"name": "app-s3", "directory": "demo/app", "encryptionSecret": "app-enc"},
  "params": PARAMS}}`

const completedJob = `{"apiVersion": "batch/v1", "kind": "Job",
 "metadata": {"name": "app-nightly-logical-backup", "namespace": "demo"},
 "status": {"conditions": [{"type": "Complete", "status": "True"}]}}`

func TestRunFunction(t *testing.T) {
	objs, err := stashpkg.Addons()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := render.NewCatalog(objs...)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		fatal     string
		resources map[string]resource.Ready
	}
	cases := map[string]struct {
		reason   string
		input    string
		params   string
		observed string
		want     want
	}{
		"Rendered": {
			reason: "The backup Job is desired, not ready until it has run.",
			input:  `{"apiVersion": "render.fn.stashplane.io/v1alpha1", "kind": "Input", "addon": "workload-addon", "task": "logical-backup"}`,
			params: `{"paths": ["/var/lib/app"]}`,
			want:   want{resources: map[string]resource.Ready{"Job-app-nightly-logical-backup": resource.ReadyFalse}},
		},
		"Completed": {
			reason:   "A Job observed complete is ready.",
			input:    `{"apiVersion": "render.fn.stashplane.io/v1alpha1", "kind": "Input", "addon": "workload-addon", "task": "logical-backup"}`,
			params:   `{"paths": ["/var/lib/app"]}`,
			observed: completedJob,
			want:     want{resources: map[string]resource.Ready{"Job-app-nightly-logical-backup": resource.ReadyTrue}},
		},
		"BadParams": {
			reason: "Parameters that break #Params are a Fatal result with the CUE error.",
			input:  `{"apiVersion": "render.fn.stashplane.io/v1alpha1", "kind": "Input", "addon": "workload-addon", "task": "logical-backup"}`,
			params: `{}`,
			want:   want{fatal: "params.paths: parameter is required by the addon task but not set"},
		},
		"UnknownAddon": {
			reason: "An unknown Addon is a Fatal result.",
			input:  `{"apiVersion": "render.fn.stashplane.io/v1alpha1", "kind": "Input", "addon": "nope", "task": "logical-backup"}`,
			params: `{}`,
			want:   want{fatal: `cannot find addon "nope"`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := &fnv1.RunFunctionRequest{
				Input:    resource.MustStructJSON(tc.input),
				Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: resource.MustStructJSON(strings.Replace(xr, "PARAMS", tc.params, 1))}},
			}
			if tc.observed != "" {
				req.Observed.Resources = map[string]*fnv1.Resource{"Job-app-nightly-logical-backup": {Resource: resource.MustStructJSON(tc.observed)}}
			}
			rsp, err := New(logging.NewNopLogger(), cat, render.Image("v0.1.0")).RunFunction(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			got := want{resources: map[string]resource.Ready{}}
			for _, r := range rsp.GetResults() {
				if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
					got.fatal = r.GetMessage()
				}
			}
			for n, r := range rsp.GetDesired().GetResources() {
				got.resources[n] = map[fnv1.Ready]resource.Ready{fnv1.Ready_READY_TRUE: resource.ReadyTrue, fnv1.Ready_READY_FALSE: resource.ReadyFalse}[r.GetReady()]
			}
			if tc.want.fatal != "" {
				if !strings.Contains(got.fatal, tc.want.fatal) {
					t.Errorf("\n%s\nfatal result %q does not contain %q", tc.reason, got.fatal, tc.want.fatal)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("\n%s\nRunFunction(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
