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

package protection

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/xfn/input/v1alpha1"
)

func spec(mod func(*Spec)) Spec {
	s := Spec{Paths: []string{"/var/lib/app"}, Storage: v1alpha1.Reference{Name: "shared", Namespace: "platform"}, EncryptionSecret: "app-encryption"}
	s.Target.APIGroup, s.Target.Kind, s.Target.Name = "apps", "Deployment", "app"
	if mod != nil {
		mod(&s)
	}
	return s
}

func class(mod func(*v1alpha1.Class)) *v1alpha1.Class {
	c := &v1alpha1.Class{BackupSchedule: "0 * * * *", VerifySchedule: "30 3 * * *"}
	if mod != nil {
		mod(c)
	}
	return c
}

func TestCheck(t *testing.T) {
	cases := map[string]struct {
		reason string
		spec   Spec
		class  *v1alpha1.Class
		want   string
	}{
		"Valid":             {"A Deployment's absolute path to a named storage is composed.", spec(nil), class(nil), ""},
		"OwnSchedule":       {"A schedule of the Protection's own that parses is taken.", spec(func(s *Spec) { s.Schedule = "@daily" }), class(nil), ""},
		"Kind":              {"A kind the workload-addon cannot read paths from is refused by field.", spec(func(s *Spec) { s.Target.Kind = "CronJob" }), class(nil), `spec.target.kind: kind "CronJob" cannot be protected: use one of [Deployment StatefulSet DaemonSet]`},
		"Group":             {"Another group's Deployment is refused.", spec(func(s *Spec) { s.Target.APIGroup = "example.org" }), class(nil), `spec.target.apiGroup: group "example.org" has no Deployment: use apps`},
		"NoPaths":           {"Nothing to back up is refused.", spec(func(s *Spec) { s.Paths = nil }), class(nil), "spec.paths: name at least one directory of the workload to back up"},
		"RelativePath":      {"A relative path is refused by index.", spec(func(s *Spec) { s.Paths = []string{"/a", "data"} }), class(nil), `spec.paths[1]: "data" is not an absolute path`},
		"NoStorage":         {"A storage without a name is refused.", spec(func(s *Spec) { s.Storage.Name = "" }), class(nil), "spec.storage.name: the BackupStorage's name is required"},
		"NoSecret":          {"A Protection without a password Secret is refused.", spec(func(s *Spec) { s.EncryptionSecret = "" }), class(nil), "spec.encryptionSecret: the password Secret's name is required"},
		"BadSchedule":       {"A schedule that does not parse is refused, naming the field.", spec(func(s *Spec) { s.Schedule = "every hour" }), class(nil), `spec.schedule: cannot parse "every hour"`},
		"BadClassBackup":    {"A class whose schedule does not parse is named as the Composition's.", spec(nil), class(func(c *v1alpha1.Class) { c.BackupSchedule = "61 * * * *" }), `input.backupSchedule: the Composition's schedule "61 * * * *" does not parse`},
		"BadClassVerify":    {"So is a verify schedule that does not parse.", spec(nil), class(func(c *v1alpha1.Class) { c.VerifySchedule = "x" }), `input.verifySchedule: the Composition's schedule "x" does not parse`},
		"BadDeletionPolicy": {"A deletion policy Crossplane let through unchecked is refused, naming the input field.", spec(nil), class(func(c *v1alpha1.Class) { c.DeletionPolicy = "Keep" }), `input.deletionPolicy: "Keep" is none of Retain, Delete, WipeOut`},
		"OwnBeatsClasses":   {"The Protection's own schedule stands in for a bad class backup schedule.", spec(func(s *Spec) { s.Schedule = "0 1 * * *" }), class(func(c *v1alpha1.Class) { c.BackupSchedule = "x" }), ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := ""
			if err := Check(tc.spec, tc.class); err != nil {
				got = err.Error()
			}
			if tc.want == "" && got != "" || tc.want != "" && (len(got) < len(tc.want) || got[:len(tc.want)] != tc.want) {
				t.Errorf("\n%s\nCheck(...) = %q, want it to start with %q", tc.reason, got, tc.want)
			}
		})
	}
}

func TestCompose(t *testing.T) {
	type want struct {
		Kinds      []string
		Target     storagev1alpha1.TypedObjectReference
		Backend    corev1alpha1.BackendReference
		Schedule   string
		Params     string
		Repository corev1alpha1.RepositoryInfo
		Verifier   *corev1alpha1.BackupVerifierSpec
	}
	verifier := &corev1alpha1.BackupVerifierSpec{
		Type:      corev1alpha1.VerificationRestoreOnly,
		Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "30 3 * * *"},
		RestoreOption: corev1alpha1.RestoreOption{
			Target:    storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "app-scratch"},
			AddonInfo: corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup-restore"}}},
		},
	}
	repo := corev1alpha1.RepositoryInfo{
		Name: "app", Backend: "storage", Directory: "demo/app", EncryptionSecret: storagev1alpha1.ObjectReference{Name: "app-encryption"},
		DeletionPolicy: corev1alpha1.RepositoryDeletionPolicyRetain, BackupVerifier: &storagev1alpha1.ObjectReference{Name: "app-verifier"},
	}
	cases := map[string]struct {
		reason string
		spec   Spec
		class  *v1alpha1.Class
		want   want
	}{
		"Verified": {
			reason: "A verifying class composes the configuration, whose repository links the verifier, and the verifier restoring into a scratch claim; backups are retained by default.",
			spec:   spec(nil), class: class(nil),
			want: want{
				Kinds:  []string{"BackupConfiguration", "BackupVerifier"},
				Target: storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "app"},
				Backend: corev1alpha1.BackendReference{Name: "storage",
					StorageRef: &storagev1alpha1.ObjectReference{Namespace: "platform", Name: "shared"}},
				Schedule: "0 * * * *", Params: `{"paths":["/var/lib/app"]}`, Repository: repo, Verifier: verifier,
			},
		},
		"NotVerified": {
			reason: "A class without a verify schedule composes no verifier; its retention and deletion policy are carried; the Protection's schedule and a storage in its own namespace are taken.",
			spec: spec(func(s *Spec) {
				s.Schedule, s.Storage.Namespace, s.Target.APIGroup = "@daily", "", ""
			}),
			class: class(func(c *v1alpha1.Class) {
				c.VerifySchedule, c.DeletionPolicy = "", "WipeOut"
				c.RetentionPolicy = &v1alpha1.Reference{Name: "keep-week", Namespace: "platform"}
			}),
			want: want{
				Kinds:  []string{"BackupConfiguration"},
				Target: storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "app"},
				Backend: corev1alpha1.BackendReference{Name: "storage",
					StorageRef:      &storagev1alpha1.ObjectReference{Namespace: "demo", Name: "shared"},
					RetentionPolicy: &storagev1alpha1.ObjectReference{Namespace: "platform", Name: "keep-week"}},
				Schedule: "@daily", Params: `{"paths":["/var/lib/app"]}`,
				Repository: func() corev1alpha1.RepositoryInfo {
					r := repo
					r.BackupVerifier, r.DeletionPolicy = nil, corev1alpha1.RepositoryDeletionPolicyWipeOut
					return r
				}(),
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := want{}
			for _, o := range Compose("demo", "app", tc.spec, tc.class) {
				switch o := o.(type) {
				case *corev1alpha1.BackupConfiguration:
					if o.Namespace != "demo" || o.Name != "app" {
						t.Errorf("configuration %s/%s, want demo/app", o.Namespace, o.Name)
					}
					got.Kinds = append(got.Kinds, o.Kind)
					got.Target, got.Backend = *o.Spec.Target, o.Spec.Backends[0]
					s := o.Spec.Sessions[0]
					got.Schedule, got.Params, got.Repository = s.Scheduler.Schedule, string(s.Addon.Tasks[0].Params.Raw), s.Repositories[0]
				case *corev1alpha1.BackupVerifier:
					if o.Namespace != "demo" || o.Name != "app-verifier" {
						t.Errorf("verifier %s/%s, want demo/app-verifier", o.Namespace, o.Name)
					}
					got.Kinds = append(got.Kinds, o.Kind)
					got.Verifier = &o.Spec
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\nCompose(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	at := func(h int) *metav1.Time { return &metav1.Time{Time: time.Date(2026, 12, 4, h, 0, 0, 0, time.UTC)} }
	snap := func(name string, h int, v storagev1alpha1.VerificationStatus) storagev1alpha1.Snapshot {
		s := storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: name}}
		s.Status.Phase, s.Status.SnapshotTime, s.Status.VerificationStatus, s.Status.RestoreDuration = storagev1alpha1.SnapshotSucceeded, at(h), v, "4s"
		return s
	}
	config := func(p corev1alpha1.BackupInvokerPhase, conds ...xpv2.Condition) *corev1alpha1.BackupConfiguration {
		bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "app"}}
		bc.Status.Phase = p
		bc.Status.SetConditions(conds...)
		return bc
	}
	refused := xpv2.Condition{Type: corev1alpha1.TypeValidationPassed, Status: corev1.ConditionFalse, Reason: corev1alpha1.ReasonResourceValidationFailed,
		Message: `backupstorage platform/shared does not admit namespace "team-b"`}
	type want struct {
		Status     Status
		Conditions []Condition
	}
	cases := map[string]struct {
		reason   string
		bc       *corev1alpha1.BackupConfiguration
		snaps    []storagev1alpha1.Snapshot
		verifies bool
		want     want
	}{
		"Creating": {
			reason: "Before the configuration reports, the Protection says it is being created.",
			want:   want{Conditions: []Condition{{Type: TypeBackupReady, Status: corev1.ConditionUnknown, Reason: "Creating", Message: "the BackupConfiguration is not reported yet"}}},
		},
		"Refused": {
			reason: "A configuration the storage's policy refuses shows its reason on the Protection.",
			bc:     config(corev1alpha1.BackupInvokerInvalid, refused),
			want: want{
				Status: Status{Configuration: &ConfigurationSummary{Name: "app", Phase: "Invalid"}},
				Conditions: []Condition{{Type: TypeBackupReady, Status: corev1.ConditionFalse, Reason: "Invalid",
					Message: `backupconfiguration "app" is Invalid: backupstorage platform/shared does not admit namespace "team-b"`}},
			},
		},
		"Verified": {
			reason: "The newest Snapshot, not the first listed, is shown with its verdict.",
			bc:     config(corev1alpha1.BackupInvokerReady), verifies: true,
			snaps: []storagev1alpha1.Snapshot{snap("b", 10, storagev1alpha1.SnapshotVerified), snap("a", 9, "")},
			want: want{
				Status: Status{Configuration: &ConfigurationSummary{Name: "app", Phase: "Ready"},
					LastSnapshot: &SnapshotSummary{Name: "b", Phase: "Succeeded", Time: at(10), Verification: "Verified", RestoreDuration: "4s"}},
				Conditions: []Condition{
					{Type: TypeBackupReady, Status: corev1.ConditionTrue, Reason: "Ready"},
					{Type: TypeVerified, Status: corev1.ConditionTrue, Reason: "Verified", Message: `snapshot "b" restored in 4s`},
				},
			},
		},
		"Failed": {
			reason: "A failed verdict on the newest Snapshot makes Verified False.",
			bc:     config(corev1alpha1.BackupInvokerReady), verifies: true,
			snaps: []storagev1alpha1.Snapshot{snap("a", 9, storagev1alpha1.SnapshotVerified), snap("b", 10, storagev1alpha1.SnapshotVerificationFailed)},
			want: want{
				Status: Status{Configuration: &ConfigurationSummary{Name: "app", Phase: "Ready"},
					LastSnapshot: &SnapshotSummary{Name: "b", Phase: "Succeeded", Time: at(10), Verification: "VerificationFailed", RestoreDuration: "4s"}},
				Conditions: []Condition{
					{Type: TypeBackupReady, Status: corev1.ConditionTrue, Reason: "Ready"},
					{Type: TypeVerified, Status: corev1.ConditionFalse, Reason: "VerificationFailed", Message: `snapshot "b" failed its verification: see its BackupVerificationSession`},
				},
			},
		},
		"NotYet": {
			reason: "A newest Snapshot without a verdict leaves Verified Unknown, even when an older one was verified.",
			bc:     config(corev1alpha1.BackupInvokerReady), verifies: true,
			snaps: []storagev1alpha1.Snapshot{snap("a", 9, storagev1alpha1.SnapshotVerified), snap("b", 10, "")},
			want: want{
				Status: Status{Configuration: &ConfigurationSummary{Name: "app", Phase: "Ready"},
					LastSnapshot: &SnapshotSummary{Name: "b", Phase: "Succeeded", Time: at(10), RestoreDuration: "4s"}},
				Conditions: []Condition{
					{Type: TypeBackupReady, Status: corev1.ConditionTrue, Reason: "Ready"},
					{Type: TypeVerified, Status: corev1.ConditionUnknown, Reason: "NotVerifiedYet", Message: `snapshot "b" is not verified yet`},
				},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st, conds := Observe(tc.bc, tc.snaps, tc.verifies)
			if diff := cmp.Diff(tc.want, want{Status: st, Conditions: conds}); diff != "" {
				t.Errorf("\n%s\nObserve(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestStatusFitsSchema keeps the status the function writes and the XRD's
// status schema in step: Crossplane drops what the schema does not name,
// and a field the schema names that nothing writes is a promise broken.
func TestStatusFitsSchema(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "compositions", "protection-xrd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type props struct {
		Properties map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"properties"`
	}
	var xrd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema struct {
						Properties struct {
							Status props `json:"status"`
						} `json:"properties"`
					} `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &xrd); err != nil {
		t.Fatal(err)
	}
	schema := map[string][]string{}
	for field, p := range xrd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties.Status.Properties {
		for k := range p.Properties {
			schema[field] = append(schema[field], k)
		}
		sort.Strings(schema[field])
	}
	full := Status{Configuration: &ConfigurationSummary{Name: "a", Phase: "Ready"}, LastSnapshot: &SnapshotSummary{
		Name: "s", Phase: "p", Time: &metav1.Time{}, Size: "1", Verification: "v", VerificationTime: &metav1.Time{}, RestoreDuration: "1s"}}
	j, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	var written map[string]map[string]any
	if err := json.Unmarshal(j, &written); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for field, m := range written {
		for k := range m {
			got[field] = append(got[field], k)
		}
		sort.Strings(got[field])
	}
	if diff := cmp.Diff(schema, got); diff != "" {
		t.Errorf("status fields: -XRD schema +written by the function:\n%s", diff)
	}
}
