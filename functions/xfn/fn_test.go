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
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/google/go-cmp/cmp"
)

const (
	class = `{"apiVersion": "render.fn.stashplane.io/v1alpha1", "kind": "ProtectionClass",
 "backupSchedule": "0 * * * *", "verifySchedule": "30 3 * * *"}`
	xr = `{"apiVersion": "platform.stashplane.io/v1alpha1", "kind": "Protection",
 "metadata": {"name": "app", "namespace": "demo"},
 "spec": {"target": {"apiGroup": "apps", "kind": "Deployment", "name": "app"}, "paths": ["/var/lib/app"],
  "storage": {"name": "shared", "namespace": "platform"}, "encryptionSecret": "app-encryption", "schedule": SCHEDULE}}`
	storage = `{"apiVersion": "storage.stashplane.io/v1alpha1", "kind": "BackupStorage", "metadata": {"name": "shared", "namespace": "platform"}}`
	ready   = `{"apiVersion": "core.stashplane.io/v1alpha1", "kind": "BackupConfiguration", "metadata": {"name": "app", "namespace": "demo"}, "status": {"phase": "Ready"}}`
	refused = `{"apiVersion": "core.stashplane.io/v1alpha1", "kind": "BackupConfiguration", "metadata": {"name": "app", "namespace": "demo"},
 "status": {"phase": "Invalid", "conditions": [{"type": "ValidationPassed", "status": "False", "reason": "ResourceValidationFailed", "message": "the storage does not admit namespace demo", "lastTransitionTime": "2026-12-04T10:00:00Z"}]}}`
	verifier = `{"apiVersion": "core.stashplane.io/v1alpha1", "kind": "BackupVerifier", "metadata": {"name": "app-verifier", "namespace": "demo"}}`
	verified = `{"apiVersion": "storage.stashplane.io/v1alpha1", "kind": "Snapshot", "metadata": {"name": "app-app-scheduled-1", "namespace": "demo"},
 "status": {"phase": "Succeeded", "snapshotTime": "2026-12-04T10:00:00Z", "verificationStatus": "Verified", "restoreDuration": "4s"}}`
)

// run runs the function and returns its response and Fatal result.
func run(t *testing.T, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, string) {
	t.Helper()
	rsp, err := New(logging.NewNopLogger()).RunFunction(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rsp.GetResults() {
		if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
			return rsp, r.GetMessage()
		}
	}
	return rsp, ""
}

func TestRunFunction(t *testing.T) {
	type want struct {
		Fatal      string
		Resources  map[string]fnv1.Ready
		Required   []string
		Conditions map[string]string
		Snapshot   string
	}
	cases := map[string]struct {
		reason   string
		schedule string
		observed map[string]string
		required map[string][]string
		want     want
	}{
		"Composed": {
			reason:   "Before anything is observed the configuration and the verifier are desired, not ready, and the storage and Snapshots are asked for.",
			schedule: `""`,
			want: want{
				Resources:  map[string]fnv1.Ready{"configuration": fnv1.Ready_READY_FALSE, "verifier": fnv1.Ready_READY_FALSE},
				Required:   []string{"snapshots", "storage"},
				Conditions: map[string]string{"BackupReady": "Unknown/Creating", "Verified": "Unknown/NoBackupYet"},
			},
		},
		"ReadyAndVerified": {
			reason:   "A Ready configuration and an existing verifier are ready; the newest Snapshot's verdict is shown.",
			schedule: `""`,
			observed: map[string]string{"configuration": ready, "verifier": verifier},
			required: map[string][]string{"storage": {storage}, "snapshots": {verified}},
			want: want{
				Resources:  map[string]fnv1.Ready{"configuration": fnv1.Ready_READY_TRUE, "verifier": fnv1.Ready_READY_TRUE},
				Required:   []string{"snapshots", "storage"},
				Conditions: map[string]string{"BackupReady": "True/Ready", "Verified": "True/Verified"},
				Snapshot:   "app-app-scheduled-1",
			},
		},
		"Refused": {
			reason:   "A configuration the provider refuses keeps the Protection from being ready and says why.",
			schedule: `""`,
			observed: map[string]string{"configuration": refused, "verifier": verifier},
			required: map[string][]string{"storage": {storage}, "snapshots": {}},
			want: want{
				Resources:  map[string]fnv1.Ready{"configuration": fnv1.Ready_READY_FALSE, "verifier": fnv1.Ready_READY_TRUE},
				Required:   []string{"snapshots", "storage"},
				Conditions: map[string]string{"BackupReady": "False/Invalid: backupconfiguration \"app\" is Invalid: the storage does not admit namespace demo", "Verified": "Unknown/NoBackupYet"},
			},
		},
		"NoStorage": {
			reason:   "A storage Crossplane looked for and did not find is a Fatal result naming the field; nothing is composed.",
			schedule: `""`,
			required: map[string][]string{"storage": {}, "snapshots": {}},
			want:     want{Fatal: "spec.storage.name: backupstorage platform/shared does not exist"},
		},
		"BadSchedule": {
			reason:   "A schedule that does not parse is a Fatal result naming the field.",
			schedule: `"every hour"`,
			want:     want{Fatal: `spec.schedule: cannot parse "every hour"`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := &fnv1.RunFunctionRequest{
				Input:    resource.MustStructJSON(class),
				Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: resource.MustStructJSON(strings.Replace(xr, "SCHEDULE", tc.schedule, 1))}},
			}
			if tc.observed != nil {
				req.Observed.Resources = map[string]*fnv1.Resource{}
				for n, o := range tc.observed {
					req.Observed.Resources[n] = &fnv1.Resource{Resource: resource.MustStructJSON(o)}
				}
			}
			if tc.required != nil {
				req.RequiredResources = map[string]*fnv1.Resources{}
				for n, objs := range tc.required {
					rs := &fnv1.Resources{}
					for _, o := range objs {
						rs.Items = append(rs.Items, &fnv1.Resource{Resource: resource.MustStructJSON(o)})
					}
					req.RequiredResources[n] = rs
				}
			}
			rsp, fatal := run(t, req)
			got := want{Fatal: fatal}
			if tc.want.Fatal != "" {
				if !strings.HasPrefix(got.Fatal, tc.want.Fatal) || len(rsp.GetDesired().GetResources()) > 0 {
					t.Errorf("\n%s\nfatal result %q, want it to start with %q, and no desired resources (got %d)", tc.reason, got.Fatal, tc.want.Fatal, len(rsp.GetDesired().GetResources()))
				}
				return
			}
			got.Resources = map[string]fnv1.Ready{}
			for n, r := range rsp.GetDesired().GetResources() {
				got.Resources[n] = r.GetReady()
			}
			for n := range rsp.GetRequirements().GetResources() {
				got.Required = append(got.Required, n)
			}
			if len(got.Required) == 2 && got.Required[0] > got.Required[1] {
				got.Required[0], got.Required[1] = got.Required[1], got.Required[0]
			}
			got.Conditions = map[string]string{}
			for _, c := range rsp.GetConditions() {
				v := strings.TrimPrefix(c.GetStatus().String(), "STATUS_CONDITION_")
				v = strings.ToUpper(v[:1]) + strings.ToLower(v[1:]) + "/" + c.GetReason()
				if c.GetStatus() == fnv1.Status_STATUS_CONDITION_FALSE {
					v += ": " + c.GetMessage()
				}
				got.Conditions[c.GetType()] = v
			}
			if s := rsp.GetDesired().GetComposite().GetResource().GetFields()["status"]; s != nil {
				got.Snapshot = s.GetStructValue().GetFields()["lastSnapshot"].GetStructValue().GetFields()["name"].GetStringValue()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\nRunFunction(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

const (
	platformXR = `{"apiVersion": "example.org/v1alpha1", "kind": "KeyValueStore",
 "metadata": {"name": "cache", "namespace": "demo"}, "spec": {"backupSecret": "cache-backups"}}`
	statefulSet = `{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "cache-db"}}`
	deploy      = `{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cache-web"}}`
	service     = `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cache"}}`
	dbReady     = `{"apiVersion": "core.stashplane.io/v1alpha1", "kind": "BackupConfiguration", "metadata": {"name": "cache-db", "namespace": "demo"}, "status": {"phase": "Ready"}}`
	webRefused  = `{"apiVersion": "core.stashplane.io/v1alpha1", "kind": "BackupConfiguration", "metadata": {"name": "cache-web", "namespace": "demo"},
 "status": {"phase": "NotReady", "conditions": [{"type": "ValidationPassed", "status": "False", "reason": "ResourceValidationFailed", "message": "secret demo/cache-backups not found", "lastTransitionTime": "2026-12-04T10:00:00Z"}]}}`
)

// protect is a Protect input with the given workloads and secret source.
func protect(workloads, secret string) string {
	return `{"apiVersion": "render.fn.stashplane.io/v1alpha1", "kind": "Protect", "backupSchedule": "0 * * * *", "verifySchedule": "0 4 * * *",
 "storage": {"name": "shared", "namespace": "platform"}, "encryptionSecret": ` + secret + `, "workloads": ` + workloads + `}`
}

// TestRunFunctionProtect shows the protect step adding backup and
// verification to workloads the steps before it composed.
func TestRunFunctionProtect(t *testing.T) {
	type want struct {
		Fatal      string
		Resources  []string
		Required   []string
		Conditions map[string]string
		Secrets    map[string]string
	}
	both := `[{"resource": "db", "paths": ["/data"]}, {"resource": "web", "paths": ["/srv"]}]`
	fromField := `{"fromFieldPath": "spec.backupSecret"}`
	cases := map[string]struct {
		reason   string
		xr       string
		input    string
		desired  map[string]string
		observed map[string]string
		want     want
	}{
		"TwoWorkloads": {
			reason:  "Each named workload gets a configuration and a verifier beside what the earlier step composed; the Secret comes from the XR's field.",
			input:   protect(both, fromField),
			desired: map[string]string{"db": statefulSet, "web": deploy, "svc": service},
			want: want{
				Resources: []string{"db", "db-backup", "db-verifier", "svc", "web", "web-backup", "web-verifier"},
				Required:  []string{"snapshots-db", "snapshots-web", "storage"},
				Conditions: map[string]string{
					"BackupReady": "Unknown/Creating: StatefulSet cache-db: the BackupConfiguration is not reported yet; Deployment cache-web: the BackupConfiguration is not reported yet",
					"Verified":    "Unknown/NoBackupYet: ",
				},
				Secrets: map[string]string{"cache-db": "cache-backups", "cache-web": "cache-backups"},
			},
		},
		"OneNotReady": {
			reason:   "The workload whose configuration is not ready is named; the ready one is not.",
			input:    protect(both, `{"name": "fixed"}`),
			desired:  map[string]string{"db": statefulSet, "web": deploy},
			observed: map[string]string{"db-backup": dbReady, "web-backup": webRefused},
			want: want{
				Resources: []string{"db", "db-backup", "db-verifier", "web", "web-backup", "web-verifier"},
				Required:  []string{"snapshots-db", "snapshots-web", "storage"},
				Conditions: map[string]string{
					"BackupReady": `False/NotReady: Deployment cache-web: backupconfiguration "cache-web" is NotReady: secret demo/cache-backups not found`,
					"Verified":    "Unknown/NoBackupYet: ",
				},
				Secrets: map[string]string{"cache-db": "fixed", "cache-web": "fixed"},
			},
		},
		"NoSuchResource": {
			reason:  "A workload no earlier step composes is Fatal, naming the field.",
			input:   protect(`[{"resource": "db", "paths": ["/data"]}]`, fromField),
			desired: map[string]string{"web": deploy},
			want:    want{Fatal: `input.workloads[0].resource: no step before this one composes a resource "db"`},
		},
		"NotAWorkload": {
			reason:  "A composed resource that is not a workload is Fatal.",
			input:   protect(`[{"resource": "svc", "paths": ["/data"]}]`, fromField),
			desired: map[string]string{"svc": service},
			want:    want{Fatal: `input.workloads[0].resource (target.kind): kind "Service" cannot be protected`},
		},
		"NoName": {
			reason:  "A workload without a name has no stable Repository: Fatal.",
			input:   protect(`[{"resource": "db", "paths": ["/data"]}]`, fromField),
			desired: map[string]string{"db": `{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {}}`},
			want:    want{Fatal: `input.workloads[0].resource: composed StatefulSet "db" has no metadata.name`},
		},
		"RelativePath": {
			reason:  "A workload's path is checked as a Protection's, named by the workload's field.",
			input:   protect(`[{"resource": "db", "paths": ["data"]}]`, fromField),
			desired: map[string]string{"db": statefulSet},
			want:    want{Fatal: `input.workloads[0].paths[0]: "data" is not an absolute path`},
		},
		"SecretFieldMissing": {
			reason:  "A Secret field the XR does not have is Fatal.",
			xr:      `{"apiVersion": "example.org/v1alpha1", "kind": "KeyValueStore", "metadata": {"name": "cache", "namespace": "demo"}, "spec": {}}`,
			input:   protect(`[{"resource": "db", "paths": ["/data"]}]`, fromField),
			desired: map[string]string{"db": statefulSet},
			want:    want{Fatal: `input.encryptionSecret.fromFieldPath: KeyValueStore "cache" has no spec.backupSecret`},
		},
		"SecretBoth": {
			reason:  "A Secret named both outright and by field is refused: which one was meant is not known.",
			input:   protect(`[{"resource": "db", "paths": ["/data"]}]`, `{"name": "s", "fromFieldPath": "spec.backupSecret"}`),
			desired: map[string]string{"db": statefulSet},
			want:    want{Fatal: `input.encryptionSecret: set one of name and fromFieldPath`},
		},
		"SecretNeither": {
			reason:  "A Protect naming no Secret is refused, naming the input field.",
			input:   protect(`[{"resource": "db", "paths": ["/data"]}]`, `{}`),
			desired: map[string]string{"db": statefulSet},
			want:    want{Fatal: `input.encryptionSecret: set one of name and fromFieldPath`},
		},
		"ClusterScoped": {
			reason:  "A cluster-scoped XR has no namespace to compose into: Fatal.",
			xr:      `{"apiVersion": "example.org/v1alpha1", "kind": "KeyValueStore", "metadata": {"name": "cache"}, "spec": {"backupSecret": "s"}}`,
			input:   protect(`[{"resource": "db", "paths": ["/data"]}]`, fromField),
			desired: map[string]string{"db": statefulSet},
			want:    want{Fatal: `KeyValueStore "cache" is cluster scoped`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			x := tc.xr
			if x == "" {
				x = platformXR
			}
			req := &fnv1.RunFunctionRequest{
				Input:    resource.MustStructJSON(tc.input),
				Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: resource.MustStructJSON(x)}, Resources: map[string]*fnv1.Resource{}},
				Desired:  &fnv1.State{Resources: map[string]*fnv1.Resource{}},
			}
			for n, o := range tc.desired {
				req.Desired.Resources[n] = &fnv1.Resource{Resource: resource.MustStructJSON(o)}
			}
			for n, o := range tc.observed {
				req.Observed.Resources[n] = &fnv1.Resource{Resource: resource.MustStructJSON(o)}
			}
			rsp, fatal := run(t, req)
			got := want{Fatal: fatal}
			if tc.want.Fatal != "" {
				if !strings.HasPrefix(got.Fatal, tc.want.Fatal) {
					t.Errorf("\n%s\nfatal result %q, want it to start with %q", tc.reason, got.Fatal, tc.want.Fatal)
				}
				return
			}
			got.Secrets = map[string]string{}
			for n, r := range rsp.GetDesired().GetResources() {
				got.Resources = append(got.Resources, n)
				f := r.GetResource().GetFields()
				if f["kind"].GetStringValue() == "BackupConfiguration" {
					repo := f["spec"].GetStructValue().GetFields()["sessions"].GetListValue().GetValues()[0].GetStructValue().GetFields()["repositories"].GetListValue().GetValues()[0]
					got.Secrets[f["metadata"].GetStructValue().GetFields()["name"].GetStringValue()] = repo.GetStructValue().GetFields()["encryptionSecret"].GetStructValue().GetFields()["name"].GetStringValue()
				}
			}
			sort.Strings(got.Resources)
			for n := range rsp.GetRequirements().GetResources() {
				got.Required = append(got.Required, n)
			}
			sort.Strings(got.Required)
			got.Conditions = map[string]string{}
			for _, c := range rsp.GetConditions() {
				v := strings.TrimPrefix(c.GetStatus().String(), "STATUS_CONDITION_")
				got.Conditions[c.GetType()] = strings.ToUpper(v[:1]) + strings.ToLower(v[1:]) + "/" + c.GetReason() + ": " + c.GetMessage()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\nRunFunction(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRunFunctionCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rsp, err := New(logging.NewNopLogger()).RunFunction(ctx, &fnv1.RunFunctionRequest{})
	if !errors.Is(err, context.Canceled) || rsp != nil {
		t.Errorf("RunFunction(cancelled request): got response %v and error %v, want no response and %v", rsp, err, context.Canceled)
	}
}
