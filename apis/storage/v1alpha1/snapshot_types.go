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
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Labels Stashplane puts on every Snapshot so they can be listed by
// Repository and by the application they hold.
const (
	LabelRepository      = "storage.stashplane.io/repository"
	LabelAppRefKind      = "storage.stashplane.io/app-ref-kind"
	LabelAppRefNamespace = "storage.stashplane.io/app-ref-namespace"
	LabelAppRefName      = "storage.stashplane.io/app-ref-name"
)

// AnnotationComponentNodes on a Snapshot records, as a JSON object, the
// node of each component that lives on one node (a DaemonSet's), written
// when the Snapshot is made: a component's name may end in a hash instead
// of the whole node name, so a restore reads the node from here.
const AnnotationComponentNodes = "stashplane.io/component-nodes"

// AnnotationEndedPods on a Snapshot whose run was replaced by a newer one
// (concurrencyPolicy Replace) records, as a JSON list, the pods of the
// run's Jobs for the Snapshot's Repository that the BackupSession
// controller ended. restic records a pod's name as the host of the locks
// it takes, so these name the locks the ended run may have left.
const AnnotationEndedPods = "stashplane.io/ended-pods"

// AnnotationReplacedPods on the Snapshot of the run that replaced others
// lists, as a JSON list, the pods those runs ended with (their Snapshots'
// AnnotationEndedPods, for the same Repository). The run's agent removes
// the restic locks these pods hold once they no longer run, so neither it
// nor a later prune waits for restic's 30 minutes.
const AnnotationReplacedPods = "stashplane.io/replaced-pods"

// Well-known component names of a Snapshot. Workloads with one replica set of
// data use ComponentDump; StatefulSets use one "dump-pod-<ordinal>" component
// per replica and DaemonSets one "dump-<node>" component per node.
const (
	ComponentDump     = "dump"
	ComponentManifest = "manifest"
)

// SnapshotType says whether a Snapshot holds all data or changes since the
// previous one.
// +kubebuilder:validation:Enum=FullBackup;IncrementalBackup
type SnapshotType string

// Snapshot types.
const (
	SnapshotFullBackup        SnapshotType = "FullBackup"
	SnapshotIncrementalBackup SnapshotType = "IncrementalBackup"
)

// SnapshotSpec is the desired state of a Snapshot. Snapshots are created by
// Stashplane, never by users.
type SnapshotSpec struct {
	// SnapshotID is a ULID that identifies the Snapshot across clusters.
	// +kubebuilder:validation:Pattern=`^[0-9A-HJKMNP-TV-Z]{26}$`
	// +optional
	SnapshotID string `json:"snapshotID,omitempty"`

	// Type of the Snapshot.
	// +optional
	Type SnapshotType `json:"type,omitempty"`

	// Repository that holds the Snapshot, in the Snapshot's namespace.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Repository string `json:"repository"`

	// Session of the BackupConfiguration that took the Snapshot.
	// +optional
	Session string `json:"session,omitempty"`

	// BackupSession that took the Snapshot.
	// +optional
	BackupSession string `json:"backupSession,omitempty"`

	// Version of the layout of the Snapshot's data in the backend.
	// +kubebuilder:default=v1
	// +kubebuilder:validation:Enum=v1
	// +optional
	Version string `json:"version,omitempty"`

	// AppRef is the workload or application the Snapshot holds.
	// +optional
	AppRef *TypedObjectReference `json:"appRef,omitempty"`

	// DeletionPolicy says whether the Snapshot's data is removed from the
	// backend (WipeOut) or kept (Delete) when the Snapshot is deleted.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// Paused stops retention and verification from acting on the Snapshot.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// ManagementPolicies say which actions Stashplane may take on the
	// record this object mirrors. The default, ["*"], allows all of them.
	// +kubebuilder:default={"*"}
	// +optional
	ManagementPolicies xpv2.ManagementPolicies `json:"managementPolicies,omitempty"`
}

// SnapshotPhase summarises a Snapshot's conditions and components.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type SnapshotPhase string

// Snapshot phases.
const (
	SnapshotPending   SnapshotPhase = "Pending"
	SnapshotRunning   SnapshotPhase = "Running"
	SnapshotSucceeded SnapshotPhase = "Succeeded"
	SnapshotFailed    SnapshotPhase = "Failed"
)

// ComponentPhase is the state of one component of a Snapshot.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type ComponentPhase string

// Component phases.
const (
	ComponentPending   ComponentPhase = "Pending"
	ComponentRunning   ComponentPhase = "Running"
	ComponentSucceeded ComponentPhase = "Succeeded"
	ComponentFailed    ComponentPhase = "Failed"
)

// VerificationStatus is the verdict of the last verification of a Snapshot.
// +kubebuilder:validation:Enum=Verified;NotVerified;VerificationFailed
type VerificationStatus string

// Verification verdicts.
const (
	// SnapshotVerified: the Snapshot was restored (and checked) successfully.
	SnapshotVerified VerificationStatus = "Verified"
	// SnapshotNotVerified: no verification has finished yet.
	SnapshotNotVerified VerificationStatus = "NotVerified"
	// SnapshotVerificationFailed: the restore or the check failed.
	SnapshotVerificationFailed VerificationStatus = "VerificationFailed"
)

// Snapshot condition types.
const (
	// TypeSnapshotMetadataUploaded is True once the Snapshot's record has been
	// written to the backend. Set and cleared by the Snapshot controller.
	TypeSnapshotMetadataUploaded xpv2.ConditionType = "SnapshotMetadataUploaded"

	// TypeRecentSnapshotListUpdated is True once the Snapshot appears in its
	// Repository's recentSnapshots. Reserved: no controller sets it yet
	// (the Repository controller lists recent Snapshots without telling
	// them); the Snapshot controller will, once it confirms its Repository
	// lists it.
	TypeRecentSnapshotListUpdated xpv2.ConditionType = "RecentSnapshotListUpdated"

	// TypeBackupIncomplete is True when the backup ended before every
	// component was written, for example because the executor failed or timed
	// out. A True value makes the Snapshot Failed. Set by the BackupSession
	// controller.
	TypeBackupIncomplete xpv2.ConditionType = "BackupIncomplete"

	// TypeOutcomeRecorded is False while a backup has ended but the
	// Snapshot's record in the storage cannot be written to hold its
	// outcome: the phase stays Running meanwhile, and the backup fails
	// once the record has waited two minutes. True once the record holds
	// it. Absent on a Snapshot whose record was never late. Set by the
	// Snapshot controller.
	TypeOutcomeRecorded xpv2.ConditionType = "OutcomeRecorded"
)

// Snapshot condition reasons.
const (
	// ReasonSnapshotMetadataUploadSucceeded: the record was written.
	ReasonSnapshotMetadataUploadSucceeded xpv2.ConditionReason = "SnapshotMetadataUploadSucceeded"
	// ReasonSnapshotMetadataUploadFailed: the record could not be written.
	ReasonSnapshotMetadataUploadFailed xpv2.ConditionReason = "SnapshotMetadataUploadFailed"
	// ReasonRecordPending: the backup ended; its record waits to be
	// written (OutcomeRecorded False).
	ReasonRecordPending xpv2.ConditionReason = "RecordPending"
	// ReasonRecorded: the record holds the outcome (OutcomeRecorded True).
	ReasonRecorded xpv2.ConditionReason = "Recorded"
	// ReasonRecentSnapshotListUpdateSucceeded: the Repository lists the
	// Snapshot.
	ReasonRecentSnapshotListUpdateSucceeded xpv2.ConditionReason = "RecentSnapshotListUpdateSucceeded"
	// ReasonRecentSnapshotListUpdateFailed: the Repository could not be
	// updated.
	ReasonRecentSnapshotListUpdateFailed xpv2.ConditionReason = "RecentSnapshotListUpdateFailed"
	// ReasonBackupExecutorFailed: the backup executor ended without writing
	// every component.
	ReasonBackupExecutorFailed xpv2.ConditionReason = "BackupExecutorFailed"
	// ReasonPreBackupHookFailed: a pre-backup hook failed, so no backup Job
	// ran.
	ReasonPreBackupHookFailed xpv2.ConditionReason = "PreBackupHookFailed"
	// ReasonReplacedByNewerRun: a newer run of the same session, whose
	// concurrencyPolicy is Replace, ended this one; its Jobs were deleted.
	ReasonReplacedByNewerRun xpv2.ConditionReason = "ReplacedByNewerRun"
)

// ResticSummary is restic's summary of one backup of one host path.
type ResticSummary struct {
	// ID of the restic snapshot.
	// +optional
	ID string `json:"id,omitempty"`

	// Uploaded is the amount of new data uploaded, for example "12 MiB".
	// +optional
	Uploaded string `json:"uploaded,omitempty"`

	// HostPath is the path that was backed up.
	// +optional
	HostPath string `json:"hostPath,omitempty"`

	// Size of the data that was backed up.
	// +optional
	Size string `json:"size,omitempty"`

	// Files is the number of files restic read for this path.
	// +optional
	Files int64 `json:"files,omitempty"`

	// StartTime of the backup of this path.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// EndTime of the backup of this path.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
}

// ResticProgress is the last progress report of a running restic backup.
type ResticProgress struct {
	// PercentDone of the backup, 0 to 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	PercentDone int32 `json:"percentDone,omitempty"`

	// TotalFiles to back up.
	// +optional
	TotalFiles int64 `json:"totalFiles,omitempty"`

	// FilesDone so far.
	// +optional
	FilesDone int64 `json:"filesDone,omitempty"`

	// TotalBytes to back up.
	// +optional
	TotalBytes int64 `json:"totalBytes,omitempty"`

	// BytesDone so far.
	// +optional
	BytesDone int64 `json:"bytesDone,omitempty"`

	// SecondsElapsed since the backup started.
	// +optional
	SecondsElapsed int64 `json:"secondsElapsed,omitempty"`
}

// ResticStats are the statistics restic reported for one host path.
type ResticStats struct {
	// Summary of the finished backup.
	// +optional
	Summary *ResticSummary `json:"summary,omitempty"`

	// Progress of a backup that is still running.
	// +optional
	Progress *ResticProgress `json:"progress,omitempty"`
}

// Component is the state of one component of a Snapshot, for example the
// data of one pod or the manifests of a workload.
type Component struct {
	// Path of the component's directory, relative to the Repository.
	// +optional
	Path string `json:"path,omitempty"`

	// Phase of the component.
	// +optional
	Phase ComponentPhase `json:"phase,omitempty"`

	// Size of the component's data.
	// +optional
	Size string `json:"size,omitempty"`

	// Duration of the component's backup, for example "1m3s".
	// +optional
	Duration string `json:"duration,omitempty"`

	// Integrity is true when the component's data passed its integrity check.
	// +optional
	Integrity *bool `json:"integrity,omitempty"`

	// Error that made the component fail.
	// +optional
	Error string `json:"error,omitempty"`

	// Driver that wrote the component.
	// +optional
	Driver Driver `json:"driver,omitempty"`

	// ResticStats, one entry per host path, when Driver is Restic.
	// +optional
	ResticStats []ResticStats `json:"resticStats,omitempty"`

	// Healing is what the component's backup found lost from its restic
	// repository and what it healed: set only when the repository's check
	// found data missing.
	// +optional
	Healing *ComponentHealing `json:"healing,omitempty"`
}

// ComponentHealing is what a backup found missing from its component's
// restic repository, and what became of the restic snapshots that used it.
type ComponentHealing struct {
	// MissingPacks are the packs the repository's index named and storage
	// no longer held.
	// +optional
	MissingPacks []string `json:"missingPacks,omitempty"`

	// HealedSnapshots are restic snapshots that used the missing packs and
	// are whole again: the backup stored their lost data again from its
	// source.
	// +optional
	HealedSnapshots []string `json:"healedSnapshots,omitempty"`

	// LostSnapshots are restic snapshots whose lost data is no longer in
	// the source, with the files that lost it.
	// +optional
	LostSnapshots []LostResticSnapshot `json:"lostSnapshots,omitempty"`
}

// LostResticSnapshot is a restic snapshot some of whose data is gone.
type LostResticSnapshot struct {
	// ID of the restic snapshot.
	ID string `json:"id"`

	// Files that lost data, at most ten.
	// +optional
	Files []string `json:"files,omitempty"`
}

// DamageState says whether a Snapshot whose data storage lost is whole
// again.
// +kubebuilder:validation:Enum=Healed;Lost
type DamageState string

// Damage states.
const (
	// DamageHealed: every lost piece of the Snapshot's data was stored
	// again from the source by a later backup; its verdict is given again.
	DamageHealed DamageState = "Healed"
	// DamageLost: some of the Snapshot's data is gone for good.
	DamageLost DamageState = "Lost"
)

// SnapshotDamage records data of a Snapshot that storage lost, as a later
// backup into the same Repository found it.
type SnapshotDamage struct {
	// State of the Snapshot's data.
	State DamageState `json:"state"`

	// FoundBy is the Snapshot whose backup found the loss.
	// +optional
	FoundBy string `json:"foundBy,omitempty"`

	// MissingPacks are the lost packs that held the Snapshot's data.
	// +optional
	MissingPacks []string `json:"missingPacks,omitempty"`

	// Files that lost data for good, by component, at most ten each.
	// +optional
	Files map[string][]string `json:"files,omitempty"`

	// Time the loss was recorded.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}

// SnapshotStatus is the observed state of a Snapshot.
type SnapshotStatus struct {
	xpv2.ConditionedStatus `json:",inline"`

	// Phase is Failed if an upload condition is False or BackupIncomplete is
	// True, Pending while there are no components, and otherwise follows the
	// components: Failed if any failed, Succeeded when all succeeded.
	// +optional
	Phase SnapshotPhase `json:"phase,omitempty"`

	// VerificationStatus is the verdict of the last BackupVerificationSession
	// that checked this Snapshot.
	// +optional
	VerificationStatus VerificationStatus `json:"verificationStatus,omitempty"`

	// VerificationSession is the BackupVerificationSession that gave the
	// verdict.
	// +optional
	VerificationSession string `json:"verificationSession,omitempty"`

	// VerificationTime is when the verdict was given.
	// +optional
	VerificationTime *metav1.Time `json:"verificationTime,omitempty"`

	// RestoreDuration is how long the verification's restore took.
	// +optional
	RestoreDuration string `json:"restoreDuration,omitempty"`

	// BytesRestored is how many bytes the verification's restore wrote.
	// +optional
	BytesRestored int64 `json:"bytesRestored,omitempty"`

	// SnapshotTime is when the Snapshot was taken.
	// +optional
	SnapshotTime *metav1.Time `json:"snapshotTime,omitempty"`

	// LastUpdateTime is when the status last changed.
	// +optional
	LastUpdateTime *metav1.Time `json:"lastUpdateTime,omitempty"`

	// Size is the sum of the sizes of the components.
	// +optional
	Size string `json:"size,omitempty"`

	// Integrity is true when every component passed its integrity check.
	// +optional
	Integrity *bool `json:"integrity,omitempty"`

	// TotalComponents is the number of components the Snapshot will hold.
	// +optional
	TotalComponents int32 `json:"totalComponents,omitempty"`

	// Components by name.
	// +optional
	Components map[string]Component `json:"components,omitempty"`

	// Damage is data of the Snapshot that storage lost, found by a later
	// backup: Lost Snapshots are VerificationFailed, Healed ones are
	// verified again.
	// +optional
	Damage *SnapshotDamage `json:"damage,omitempty"`
}

// A Snapshot is the record of one backup run into one Repository. Its name
// is "<repository>-<backup session>".
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=stashplane,shortName=snap
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Verification",type=string,JSONPath=`.status.verificationStatus`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.status.size`
// +kubebuilder:printcolumn:name="Restore-Time",type=string,JSONPath=`.status.restoreDuration`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Snapshot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec   SnapshotSpec   `json:"spec"`
	Status SnapshotStatus `json:"status,omitempty"`
}

// SnapshotList is a list of Snapshots.
// +kubebuilder:object:root=true
type SnapshotList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Snapshot `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Snapshot{}, &SnapshotList{})
}

// SnapshotRepositoryField names the provider's cache index of Snapshots by
// the Repository they are of (spec.repository): a Repository's Snapshots
// are found among a namespace's thousands without reading each.
const SnapshotRepositoryField = "spec.repository"

// SnapshotRepository is the index function of SnapshotRepositoryField.
func SnapshotRepository(o client.Object) []string {
	s, ok := o.(*Snapshot)
	if !ok {
		return nil
	}
	return []string{s.Spec.Repository}
}

// SnapshotBackupSessionField names the provider's cache index of
// Snapshots by the BackupSession that made them (spec.backupSession): a
// session's Snapshots are found among a namespace's thousands without
// copying each.
const SnapshotBackupSessionField = "spec.backupSession"

// SnapshotBackupSession is the index function of SnapshotBackupSessionField.
func SnapshotBackupSession(o client.Object) []string {
	s, ok := o.(*Snapshot)
	if !ok || s.Spec.BackupSession == "" {
		return nil
	}
	return []string{s.Spec.BackupSession}
}
