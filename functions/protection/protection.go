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

// Package protection turns a Protection, the composite resource an app
// team creates in its own namespace, into what the provider runs: a
// BackupConfiguration of the workload and, when the class verifies, a
// BackupVerifier restoring the newest backup into a scratch claim. It also
// reads back, from those objects and the Repository's Snapshots, what the
// Protection shows. It knows nothing of Crossplane's wire format: the
// composition function (functions/xfn) carries its results.
package protection

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/xfn/input/v1alpha1"
	"github.com/stashplane/stashplane/internal/schedule"
)

// Names of what a Protection composes.
const (
	// Session is the name of the composed configuration's one session.
	Session = "scheduled"
	// Backend is the name of its one backend.
	Backend = "storage"
	// Addon backs up the workload's paths; RestoreAddon restores them
	// into the scratch claim a verification makes.
	Addon        = "workload-addon"
	Task         = "logical-backup"
	RestoreAddon = "pvc-addon"
	RestoreTask  = "logical-backup-restore"
)

// Kinds a Protection may target: the workloads whose pods the
// workload-addon reads paths from.
var Kinds = []string{"Deployment", "StatefulSet", "DaemonSet"}

// Spec is what an app team writes in a Protection.
type Spec struct {
	// Target is the workload in the Protection's namespace.
	Target struct {
		APIGroup string `json:"apiGroup"`
		Kind     string `json:"kind"`
		Name     string `json:"name"`
	} `json:"target"`
	// Paths are the directories of the workload's pods backed up.
	Paths []string `json:"paths"`
	// Storage is the platform's BackupStorage, in its own namespace.
	Storage v1alpha1.Reference `json:"storage"`
	// EncryptionSecret is the Secret, in the Protection's namespace, whose
	// RESTIC_PASSWORD key encrypts the backups.
	EncryptionSecret string `json:"encryptionSecret"`
	// Schedule of the backups; the class's when empty.
	Schedule string `json:"schedule"`
}

// FieldError is input a Protection or its class cannot be composed from;
// Field is its path, for example spec.schedule.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Check refuses a Protection, or a class, that no composed configuration
// could carry out, naming the field. It is what the XRD's schema cannot
// say: a cron schedule that parses, absolute paths.
func Check(spec Spec, class *v1alpha1.Class) error {
	if !slices.Contains(Kinds, spec.Target.Kind) {
		return &FieldError{Field: "spec.target.kind", Message: fmt.Sprintf("kind %q cannot be protected: use one of %v", spec.Target.Kind, Kinds)}
	}
	if spec.Target.APIGroup != "" && spec.Target.APIGroup != "apps" {
		return &FieldError{Field: "spec.target.apiGroup", Message: fmt.Sprintf("group %q has no %s: use apps", spec.Target.APIGroup, spec.Target.Kind)}
	}
	if spec.Target.Name == "" {
		return &FieldError{Field: "spec.target.name", Message: "the workload's name is required"}
	}
	if len(spec.Paths) == 0 {
		return &FieldError{Field: "spec.paths", Message: "name at least one directory of the workload to back up"}
	}
	for i, p := range spec.Paths {
		if !path.IsAbs(p) {
			return &FieldError{Field: fmt.Sprintf("spec.paths[%d]", i), Message: fmt.Sprintf("%q is not an absolute path", p)}
		}
	}
	if spec.Storage.Name == "" {
		return &FieldError{Field: "spec.storage.name", Message: "the BackupStorage's name is required"}
	}
	if spec.EncryptionSecret == "" {
		return &FieldError{Field: "spec.encryptionSecret", Message: "the password Secret's name is required"}
	}
	if spec.Schedule != "" {
		if _, err := schedule.Parse(spec.Schedule); err != nil {
			return &FieldError{Field: "spec.schedule", Message: fmt.Sprintf("cannot parse %q: %v", spec.Schedule, err)}
		}
	} else if _, err := schedule.Parse(class.BackupSchedule); err != nil {
		return &FieldError{Field: "input.backupSchedule", Message: fmt.Sprintf("the Composition's schedule %q does not parse: %v", class.BackupSchedule, err)}
	}
	switch corev1alpha1.RepositoryDeletionPolicy(class.DeletionPolicy) {
	case "", corev1alpha1.RepositoryDeletionPolicyRetain, corev1alpha1.RepositoryDeletionPolicyDelete, corev1alpha1.RepositoryDeletionPolicyWipeOut:
	default:
		return &FieldError{Field: "input.deletionPolicy", Message: fmt.Sprintf("%q is none of Retain, Delete, WipeOut", class.DeletionPolicy)}
	}
	if class.VerifySchedule != "" {
		if _, err := schedule.Parse(class.VerifySchedule); err != nil {
			return &FieldError{Field: "input.verifySchedule", Message: fmt.Sprintf("the Composition's schedule %q does not parse: %v", class.VerifySchedule, err)}
		}
	}
	return nil
}

// StorageKey is where the Protection's storage is: its own namespace when
// the reference names none.
func StorageKey(namespace string, spec Spec) (string, string) {
	if spec.Storage.Namespace != "" {
		return spec.Storage.Namespace, spec.Storage.Name
	}
	return namespace, spec.Storage.Name
}

// Repository is the name of the Repository a Protection's backups go to:
// the Protection's own name.
func Repository(name string) string { return name }

// Verifier is the name of the composed BackupVerifier.
func Verifier(name string) string { return name + "-verifier" }

// Compose returns the objects a Protection of the given class composes in
// its namespace: the BackupConfiguration and, when the class verifies,
// the BackupVerifier its repository links. Check must have passed.
func Compose(namespace, name string, spec Spec, class *v1alpha1.Class) []runtime.Object {
	sched := spec.Schedule
	if sched == "" {
		sched = class.BackupSchedule
	}
	params, _ := json.Marshal(map[string]any{"paths": spec.Paths})
	storageNS, storageName := StorageKey(namespace, spec)
	backend := corev1alpha1.BackendReference{
		Name:       Backend,
		StorageRef: &storagev1alpha1.ObjectReference{Namespace: storageNS, Name: storageName},
	}
	if r := class.RetentionPolicy; r != nil {
		backend.RetentionPolicy = &storagev1alpha1.ObjectReference{Namespace: r.Namespace, Name: r.Name}
	}
	deletion := corev1alpha1.RepositoryDeletionPolicy(class.DeletionPolicy)
	if deletion == "" {
		deletion = corev1alpha1.RepositoryDeletionPolicyRetain
	}
	repo := corev1alpha1.RepositoryInfo{
		Name:             Repository(name),
		Backend:          Backend,
		Directory:        path.Join(namespace, name),
		EncryptionSecret: storagev1alpha1.ObjectReference{Name: spec.EncryptionSecret},
		DeletionPolicy:   deletion,
	}
	var out []runtime.Object
	if class.VerifySchedule != "" {
		repo.BackupVerifier = &storagev1alpha1.ObjectReference{Name: Verifier(name)}
		out = append(out, &corev1alpha1.BackupVerifier{
			TypeMeta:   metav1.TypeMeta{APIVersion: corev1alpha1.GroupVersion.String(), Kind: "BackupVerifier"},
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: Verifier(name)},
			Spec: corev1alpha1.BackupVerifierSpec{
				Type:      corev1alpha1.VerificationRestoreOnly,
				Scheduler: &corev1alpha1.SchedulerSpec{Schedule: class.VerifySchedule},
				RestoreOption: corev1alpha1.RestoreOption{
					// A claim that does not exist: each verification makes
					// one and removes it afterwards.
					Target:    storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: name + "-scratch"},
					AddonInfo: corev1alpha1.AddonInfo{Name: RestoreAddon, Tasks: []corev1alpha1.TaskReference{{Name: RestoreTask}}},
				},
			},
		})
	}
	group := spec.Target.APIGroup
	if group == "" {
		group = "apps"
	}
	bc := &corev1alpha1.BackupConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: corev1alpha1.GroupVersion.String(), Kind: "BackupConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target:   &storagev1alpha1.TypedObjectReference{APIGroup: group, Kind: spec.Target.Kind, Name: spec.Target.Name},
			Backends: []corev1alpha1.BackendReference{backend},
			Sessions: []corev1alpha1.Session{{
				Name:      Session,
				Scheduler: &corev1alpha1.SchedulerSpec{Schedule: sched},
				Addon: &corev1alpha1.AddonInfo{Name: Addon, Tasks: []corev1alpha1.TaskReference{{
					Name: Task, Params: &runtime.RawExtension{Raw: params},
				}}},
				Repositories: []corev1alpha1.RepositoryInfo{repo},
			}},
		},
	}
	return append([]runtime.Object{bc}, out...)
}

// Status is what a Protection shows of what it composed.
type Status struct {
	// Configuration is the composed BackupConfiguration and its phase.
	Configuration *ConfigurationSummary `json:"configuration,omitempty"`
	// LastSnapshot is the newest backup of the Protection's Repository.
	LastSnapshot *SnapshotSummary `json:"lastSnapshot,omitempty"`
}

// ConfigurationSummary is the composed configuration as a Protection
// shows it.
type ConfigurationSummary struct {
	Name string `json:"name"`
	// Phase is Ready, NotReady or Invalid.
	Phase string `json:"phase,omitempty"`
}

// SnapshotSummary is one Snapshot as a Protection shows it.
type SnapshotSummary struct {
	Name             string       `json:"name"`
	Phase            string       `json:"phase,omitempty"`
	Time             *metav1.Time `json:"time,omitempty"`
	Size             string       `json:"size,omitempty"`
	Verification     string       `json:"verification,omitempty"`
	VerificationTime *metav1.Time `json:"verificationTime,omitempty"`
	RestoreDuration  string       `json:"restoreDuration,omitempty"`
}

// Condition is one condition the Protection carries, by type.
type Condition struct {
	Type    string
	Status  corev1.ConditionStatus
	Reason  string
	Message string
}

// Condition types a Protection carries besides Crossplane's own.
const (
	// TypeBackupReady follows whether the composed configuration is
	// Ready, with its reason and message when it is not (a storage that
	// does not admit the namespace, a Secret that is missing).
	TypeBackupReady = "BackupReady"
	// TypeVerified follows the verdict on the newest backup.
	TypeVerified = "Verified"
)

// Observe reads what a Protection shows from its composed configuration
// (nil until it exists) and its Repository's Snapshots.
func Observe(bc *corev1alpha1.BackupConfiguration, snaps []storagev1alpha1.Snapshot, verifies bool) (Status, []Condition) {
	st := Status{}
	ready := Condition{Type: TypeBackupReady, Status: corev1.ConditionUnknown, Reason: "Creating", Message: "the BackupConfiguration is not reported yet"}
	if bc != nil && bc.Status.Phase != "" {
		st.Configuration = &ConfigurationSummary{Name: bc.Name, Phase: string(bc.Status.Phase)}
		ready = Condition{Type: TypeBackupReady, Status: corev1.ConditionTrue, Reason: string(bc.Status.Phase)}
		if bc.Status.Phase != corev1alpha1.BackupInvokerReady {
			ready.Status = corev1.ConditionFalse
			ready.Message = fmt.Sprintf("backupconfiguration %q is %s", bc.Name, bc.Status.Phase)
			// The first condition that is not True says why.
			for _, c := range bc.Status.Conditions {
				if c.Status != corev1.ConditionTrue && c.Message != "" {
					ready.Message += ": " + c.Message
					break
				}
			}
		}
	}
	conds := []Condition{ready}
	if newest := Newest(snaps); newest != nil {
		st.LastSnapshot = &SnapshotSummary{
			Name: newest.Name, Phase: string(newest.Status.Phase), Time: newest.Status.SnapshotTime, Size: newest.Status.Size,
			Verification: string(newest.Status.VerificationStatus), VerificationTime: newest.Status.VerificationTime,
			RestoreDuration: newest.Status.RestoreDuration,
		}
	}
	if !verifies {
		return st, conds
	}
	verified := Condition{Type: TypeVerified, Status: corev1.ConditionUnknown, Reason: "NoBackupYet"}
	if s := st.LastSnapshot; s != nil {
		switch storagev1alpha1.VerificationStatus(s.Verification) {
		case storagev1alpha1.SnapshotVerified:
			verified = Condition{Type: TypeVerified, Status: corev1.ConditionTrue, Reason: s.Verification,
				Message: fmt.Sprintf("snapshot %q restored in %s", s.Name, s.RestoreDuration)}
		case storagev1alpha1.SnapshotVerificationFailed:
			verified = Condition{Type: TypeVerified, Status: corev1.ConditionFalse, Reason: s.Verification,
				Message: fmt.Sprintf("snapshot %q failed its verification: see its BackupVerificationSession", s.Name)}
		default:
			verified = Condition{Type: TypeVerified, Status: corev1.ConditionUnknown, Reason: "NotVerifiedYet",
				Message: fmt.Sprintf("snapshot %q is not verified yet", s.Name)}
		}
	}
	return st, append(conds, verified)
}

// Newest is the Snapshot taken last, by its snapshot time or, before it
// has one, its creation; nil when there is none.
func Newest(snaps []storagev1alpha1.Snapshot) *storagev1alpha1.Snapshot {
	if len(snaps) == 0 {
		return nil
	}
	at := func(s storagev1alpha1.Snapshot) metav1.Time {
		if s.Status.SnapshotTime != nil {
			return *s.Status.SnapshotTime
		}
		return s.CreationTimestamp
	}
	sorted := append([]storagev1alpha1.Snapshot(nil), snaps...)
	sort.SliceStable(sorted, func(i, j int) bool {
		ai, aj := at(sorted[i]), at(sorted[j])
		if ai.Equal(&aj) {
			return sorted[i].Name < sorted[j].Name
		}
		return ai.Before(&aj)
	})
	return &sorted[len(sorted)-1]
}
