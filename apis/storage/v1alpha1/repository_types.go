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

package v1alpha1

import (
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// AnnotationAdopt, set to "true" on a Repository or BackupStorage, takes
// over a path whose record (repository.yaml, metadata.yaml) another object
// wrote (another cluster's, or one deleted and made again): the record is
// rewritten with this object's UID. Without it such a path is refused
// (PathOwned, StorageOwned); an object whose managementPolicies are
// [Observe] reads it without writing anything.
const AnnotationAdopt = "storage.stashplane.io/adopt"

// SecretKeyResticPassword is the key of a Repository's encryption Secret
// that holds the password of its restic repositories.
const SecretKeyResticPassword = "RESTIC_PASSWORD"

// RepositorySpec is the desired state of a Repository.
type RepositorySpec struct {
	// AppRef is the workload or application whose backups this Repository
	// holds.
	// +optional
	AppRef *TypedObjectReference `json:"appRef,omitempty"`

	// StorageRef is the BackupStorage the Repository lives in. It cannot
	// change: the Repository's backups stay where they were written.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="storageRef cannot change: a Repository's backups stay in the storage they were written to; name a new Repository for another storage"
	StorageRef ObjectReference `json:"storageRef"`

	// Path of the Repository's directory, relative to the root of the
	// storage. It may not be absolute or climb out of the storage, and
	// cannot change: a path belongs to the Repository that was made with it
	// (the storage's broker grants it on that ground).
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && self.split('/').all(s, s != '..')",message="path must be relative and may not contain '..'"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="path cannot change: a Repository's backups stay where they were written; name a new Repository for another path"
	Path string `json:"path"`

	// DeletionPolicy says whether the Repository's data is removed from the
	// backend (WipeOut) or kept (Delete) when the Repository is deleted.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// Paused stops backups into, and retention runs on, this Repository.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// Maintenance says when the Repository's restic repositories are
	// pruned: daily by default.
	// +kubebuilder:default={schedule: "@daily"}
	// +optional
	Maintenance *MaintenanceSpec `json:"maintenance,omitempty"`

	// EncryptionSecret is the Secret holding RESTIC_PASSWORD, the password
	// every restic repository under this Repository is encrypted with.
	// +kubebuilder:validation:Required
	EncryptionSecret ObjectReference `json:"encryptionSecret"`

	// ManagementPolicies say which actions Stashplane may take on the
	// directory this object mirrors. The default, ["*"], allows all of them.
	// +kubebuilder:default={"*"}
	// +optional
	ManagementPolicies xpv2.ManagementPolicies `json:"managementPolicies,omitempty"`
}

// MaintenanceSpec schedules a Repository's prunes.
type MaintenanceSpec struct {
	// Schedule of the prunes, in cron format ("0 3 * * *", "@daily").
	// +kubebuilder:default="@daily"
	// +kubebuilder:validation:MinLength=1
	// +optional
	Schedule string `json:"schedule,omitempty"`

	// Suspend stops the scheduled prunes; `stashplane prune` still runs
	// one.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// RepositoryPhase summarises the conditions of a Repository.
// +kubebuilder:validation:Enum=NotReady;Ready
type RepositoryPhase string

// Repository phases.
const (
	RepositoryNotReady RepositoryPhase = "NotReady"
	RepositoryReady    RepositoryPhase = "Ready"
)

// Repository condition types.
const (
	// TypeRepositoryInitialized is True once the Repository's directory and
	// its record exist in the backend. The Repository is Ready exactly when
	// this is True. Set and cleared by the Repository controller.
	TypeRepositoryInitialized xpv2.ConditionType = "RepositoryInitialized"
)

// Repository condition reasons.
const (
	// ReasonRepositoryInitializationSucceeded: the directory and record were
	// written.
	ReasonRepositoryInitializationSucceeded xpv2.ConditionReason = "RepositoryInitializationSucceeded"
	// ReasonRepositoryInitializationFailed: the backend refused the write or
	// the storage is not ready.
	ReasonRepositoryInitializationFailed xpv2.ConditionReason = "RepositoryInitializationFailed"
)

// SnapshotInfo is a short record of one recent Snapshot of a Repository.
type SnapshotInfo struct {
	// Name of the Snapshot.
	Name string `json:"name"`

	// Phase of the Snapshot.
	// +optional
	Phase SnapshotPhase `json:"phase,omitempty"`

	// Session of the BackupConfiguration that took the Snapshot.
	// +optional
	Session string `json:"session,omitempty"`

	// Size of the Snapshot.
	// +optional
	Size string `json:"size,omitempty"`

	// SnapshotTime is when the Snapshot was taken.
	// +optional
	SnapshotTime *metav1.Time `json:"snapshotTime,omitempty"`
}

// RepositoryStatus is the observed state of a Repository.
type RepositoryStatus struct {
	xpv2.ConditionedStatus `json:",inline"`

	// Phase is Ready exactly when RepositoryInitialized is True.
	// +optional
	Phase RepositoryPhase `json:"phase,omitempty"`

	// LastBackupTime is when the newest Snapshot was taken.
	// +optional
	LastBackupTime *metav1.Time `json:"lastBackupTime,omitempty"`

	// Integrity is true when every Snapshot of the Repository passed its
	// integrity check.
	// +optional
	Integrity *bool `json:"integrity,omitempty"`

	// SnapshotCount is the number of Snapshots in the Repository.
	// +optional
	SnapshotCount *int32 `json:"snapshotCount,omitempty"`

	// Size of the Repository's data in the backend.
	// +optional
	Size string `json:"size,omitempty"`

	// RecentSnapshots are the newest Snapshots of the Repository.
	// +optional
	RecentSnapshots []SnapshotInfo `json:"recentSnapshots,omitempty"`

	// ComponentPaths are the directories, relative to the Repository, that
	// hold the restic repositories of its components.
	// +optional
	ComponentPaths []string `json:"componentPaths,omitempty"`

	// LastPruneTime is when the last prune of the Repository's restic
	// repositories finished. Written by the prune Job's agent.
	// +optional
	LastPruneTime *metav1.Time `json:"lastPruneTime,omitempty"`

	// LastPruneFreed is how much the last prune removed from the storage,
	// for example "12 MiB". Written by the prune Job's agent.
	// +optional
	LastPruneFreed string `json:"lastPruneFreed,omitempty"`
}

// A Repository is one directory in a BackupStorage that holds the backups of
// one target.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=stashplane,shortName=repo
// +kubebuilder:printcolumn:name="Storage",type=string,JSONPath=`.spec.storageRef.name`
// +kubebuilder:printcolumn:name="Integrity",type=boolean,JSONPath=`.status.integrity`
// +kubebuilder:printcolumn:name="Snapshot-Count",type=integer,JSONPath=`.status.snapshotCount`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.status.size`
// +kubebuilder:printcolumn:name="Last-Prune",type=date,JSONPath=`.status.lastPruneTime`
// +kubebuilder:printcolumn:name="Freed",type=string,JSONPath=`.status.lastPruneFreed`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Repository struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec   RepositorySpec   `json:"spec"`
	Status RepositoryStatus `json:"status,omitempty"`
}

// StorageKey is the BackupStorage the Repository uses: its storageRef,
// whose empty namespace is the Repository's own.
func (r *Repository) StorageKey() types.NamespacedName {
	ns := r.Spec.StorageRef.Namespace
	if ns == "" {
		ns = r.Namespace
	}
	return types.NamespacedName{Namespace: ns, Name: r.Spec.StorageRef.Name}
}

// RepositoryList is a list of Repositories.
// +kubebuilder:object:root=true
type RepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Repository `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Repository{}, &RepositoryList{})
}

// SnapshotDeletionPolicy is the deletionPolicy a new Snapshot of the
// Repository takes: the Repository's own, Delete when it has none.
func SnapshotDeletionPolicy(r *Repository) DeletionPolicy {
	if r.Spec.DeletionPolicy == "" {
		return DeletionPolicyDelete
	}
	return r.Spec.DeletionPolicy
}

// VerdictBeforePrune says whether a Snapshot's verdict was given before the
// Repository's last prune removed or rewrote data: the packs the Snapshot
// reads may have changed since, so the verdict no longer spares it a
// verification.
func VerdictBeforePrune(r *Repository, s *Snapshot) bool {
	if r == nil || r.Status.LastPruneTime == nil || s.Status.VerificationStatus == "" || s.Status.VerificationStatus == SnapshotNotVerified {
		return false
	}
	if freed, err := ParseSize(r.Status.LastPruneFreed); err != nil || freed == 0 {
		return false
	}
	return s.Status.VerificationTime == nil || s.Status.VerificationTime.Before(r.Status.LastPruneTime)
}
