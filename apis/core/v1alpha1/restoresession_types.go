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

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// SnapshotLatest, as a restore's snapshot, means the newest Succeeded
// Snapshot of the Repository.
const SnapshotLatest = "latest"

// PITR asks for a point-in-time restore, for drivers that support it.
type PITR struct {
	// TargetTime to restore to.
	// +kubebuilder:validation:Required
	TargetTime metav1.Time `json:"targetTime"`

	// Exclusive stops the restore just before TargetTime rather than at it.
	// +optional
	Exclusive bool `json:"exclusive,omitempty"`
}

// RestoreDataSource says which backed-up data to restore.
// +kubebuilder:validation:XValidation:rule="!has(self.pitr)",message="pitr: point-in-time restore is not built (it needs the WalG driver, which is refused); restore a Snapshot instead"
type RestoreDataSource struct {
	// Namespace of the Repository; empty means the RestoreSession's
	// namespace. A Repository in another namespace may be restored from
	// when its BackupStorage's usagePolicy admits the RestoreSession's
	// namespace, and then EncryptionSecret is required.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Repository to restore from.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Repository string `json:"repository"`

	// Snapshot to restore: a Snapshot name, or "latest".
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Snapshot string `json:"snapshot"`

	// Components of the Snapshot to restore; empty means all of them.
	// +optional
	Components []string `json:"components,omitempty"`

	// EncryptionSecret holding RESTIC_PASSWORD, in the RestoreSession's
	// namespace; empty means the Repository's own, which only a restore in
	// the Repository's namespace may use.
	// +optional
	EncryptionSecret *storagev1alpha1.ObjectReference `json:"encryptionSecret,omitempty"`

	// PITR asks for a point-in-time restore. Refused: no built driver keeps
	// a log to replay.
	// +optional
	PITR *PITR `json:"pitr,omitempty"`
}

// RestoreSessionSpec is the desired state of a RestoreSession.
type RestoreSessionSpec struct {
	// Target is the workload or application to restore into.
	// +optional
	Target *storagev1alpha1.TypedObjectReference `json:"target,omitempty"`

	// DataSource says what to restore.
	// +kubebuilder:validation:Required
	DataSource RestoreDataSource `json:"dataSource"`

	// Addon that does the restore.
	// +optional
	Addon *AddonInfo `json:"addon,omitempty"`

	// Hooks run before and after the restore.
	// +optional
	Hooks *RestoreHooks `json:"hooks,omitempty"`

	// RestoreTimeout bounds how long the restore may run.
	// +optional
	RestoreTimeout *metav1.Duration `json:"restoreTimeout,omitempty"`

	// ReadDataSubset, when set, makes each component's agent run restic's
	// check with --read-data-subset before restoring: "n/t" (part n of t),
	// "x%" of the packs, or a size such as "500M". Empty or "0" skips the
	// check. A BackupVerificationSession sets it from its verifier.
	// +kubebuilder:validation:Pattern=`^$|^0$|^[1-9][0-9]*/[1-9][0-9]*$|^[0-9]+(\.[0-9]+)?%$|^[1-9][0-9]*[KMGT]?$`
	// +optional
	ReadDataSubset string `json:"readDataSubset,omitempty"`
}

// RestorePhase is the state of a restore or of one of its components.
// +kubebuilder:validation:Enum=Pending;Running;Failed;Succeeded;Invalid;Unknown
type RestorePhase string

// Restore phases.
const (
	RestorePending   RestorePhase = "Pending"
	RestoreRunning   RestorePhase = "Running"
	RestoreFailed    RestorePhase = "Failed"
	RestoreSucceeded RestorePhase = "Succeeded"
	RestoreInvalid   RestorePhase = "Invalid"
	RestoreUnknown   RestorePhase = "Unknown"
)

// RestoreSession condition types.
const (
	// TypeRestoreExecutorEnsured is True once the Jobs that do the restore
	// exist. Set and cleared by the RestoreSession controller.
	TypeRestoreExecutorEnsured xpv2.ConditionType = "RestoreExecutorEnsured"

	// TypeRestoreTargetFound is True once the restore's target exists; False
	// with TargetRecreating while a task recreates it from the Snapshot's
	// resource manifests. Set and cleared by the RestoreSession controller.
	TypeRestoreTargetFound xpv2.ConditionType = "RestoreTargetFound"

	// TypeRestoreIncomplete is True when the restore ended before every
	// component was restored, for example because a Job failed or the
	// restore timed out. A True value makes the phase Failed. Set by the
	// RestoreSession controller.
	TypeRestoreIncomplete xpv2.ConditionType = "RestoreIncomplete"

	// TypeObjectsKept is True when a task that recreates objects from the
	// Snapshot's resource manifests found some of them in the session's
	// namespace already and kept them as they are (its overwriteResources
	// parameter replaces them); it names them. Absent when none existed.
	// Set by the RestoreSession controller.
	TypeObjectsKept xpv2.ConditionType = "ObjectsKept"

	// TypePreRestoreHooksExecutionSucceeded is True once every pre-restore
	// hook succeeded and False as soon as one failed; a restore whose
	// pre-restore hook failed creates no restore Job and fails. Set by the
	// RestoreSession controller.
	TypePreRestoreHooksExecutionSucceeded xpv2.ConditionType = "PreRestoreHooksExecutionSucceeded"

	// TypePostRestoreHooksExecutionSucceeded is True once every
	// post-restore hook that was due succeeded and False as soon as one
	// failed (the restore then fails). Set by the RestoreSession controller
	// once the restore has an outcome; hooks whose executionPolicy is
	// Always run after a failed restore too.
	TypePostRestoreHooksExecutionSucceeded xpv2.ConditionType = "PostRestoreHooksExecutionSucceeded"
)

// RestoreSession condition reasons.
const (
	// ReasonRestoreExecutorEnsured: the restore Jobs exist.
	ReasonRestoreExecutorEnsured xpv2.ConditionReason = "RestoreExecutorEnsured"
	// ReasonRestoreExecutorNotEnsured: a restore Job could not be created.
	ReasonRestoreExecutorNotEnsured xpv2.ConditionReason = "RestoreExecutorNotEnsured"
	// ReasonRestoreTargetFound: the target exists.
	ReasonRestoreTargetFound xpv2.ConditionReason = "RestoreTargetFound"
	// ReasonRestoreTargetNotFound: the target does not exist yet.
	ReasonRestoreTargetNotFound xpv2.ConditionReason = "RestoreTargetNotFound"
	// ReasonRestoreTargetRecreating: the target does not exist and a task
	// of the session recreates it from the Snapshot's resource manifests;
	// its data is restored once it exists.
	ReasonRestoreTargetRecreating xpv2.ConditionReason = "TargetRecreating"
	// ReasonObjectsExisted: objects of the resource manifests existed in
	// the session's namespace and were kept (TypeObjectsKept).
	ReasonObjectsExisted xpv2.ConditionReason = "ObjectsExisted"
	// ReasonRestoreTimedOut: the restore passed its deadline.
	ReasonRestoreTimedOut xpv2.ConditionReason = "RestoreTimedOut"
	// ReasonRestoreExecutorFailed: a restore Job failed.
	ReasonRestoreExecutorFailed xpv2.ConditionReason = "RestoreExecutorFailed"

	// Reasons of a RestoreExecutorEnsured=False that refuse the restore:
	// no Job is made and nothing is overwritten.

	// ReasonRestoreSpecInvalid: the RestoreSession cannot be run as written;
	// the phase is Invalid.
	ReasonRestoreSpecInvalid xpv2.ConditionReason = "RestoreSpecInvalid"
	// ReasonRestoreRepositoryNotFound: the Repository does not exist.
	ReasonRestoreRepositoryNotFound xpv2.ConditionReason = "RepositoryNotFound"
	// ReasonRestoreSnapshotNotFound: the named Snapshot does not exist in
	// the Repository, or the Repository has no Succeeded Snapshot (latest).
	ReasonRestoreSnapshotNotFound xpv2.ConditionReason = "SnapshotNotFound"
	// ReasonRestoreSnapshotNotSucceeded: the Snapshot is not Succeeded.
	ReasonRestoreSnapshotNotSucceeded xpv2.ConditionReason = "SnapshotNotSucceeded"
	// ReasonRestoreEncryptionSecretNotFound: the encryption Secret is
	// missing or holds no RESTIC_PASSWORD.
	ReasonRestoreEncryptionSecretNotFound xpv2.ConditionReason = "EncryptionSecretNotFound"
	// ReasonRestoreNamespaceNotAllowed: the usagePolicy of the Repository's
	// BackupStorage does not admit the RestoreSession's namespace.
	ReasonRestoreNamespaceNotAllowed xpv2.ConditionReason = "NamespaceNotAllowed"
	// ReasonRestoreEncryptionSecretRequired: a restore from a Repository in
	// another namespace names no encryption Secret of its own; the
	// Repository's Secret is never read from or copied out of its
	// namespace.
	ReasonRestoreEncryptionSecretRequired xpv2.ConditionReason = "EncryptionSecretRequired"
	// ReasonRestoreStorageNotReachable: the BackupStorage is in another
	// namespace and keeps its data on a PersistentVolumeClaim, which the
	// restore Jobs cannot mount from theirs.
	ReasonRestoreStorageNotReachable xpv2.ConditionReason = "StorageNotReachable"
	// ReasonPreRestoreHookFailed: a pre-restore hook failed, so no restore
	// Job ran (RestoreIncomplete).
	ReasonPreRestoreHookFailed xpv2.ConditionReason = "PreRestoreHookFailed"
)

// DifferenceKind says how a restored file differs from the backup's
// content manifest.
// +kubebuilder:validation:Enum=Missing;Extra;Changed
type DifferenceKind string

// Difference kinds.
const (
	// DifferenceMissing: the manifest lists the file; it was not restored.
	DifferenceMissing DifferenceKind = "Missing"
	// DifferenceExtra: the file was restored; the manifest does not list
	// it.
	DifferenceExtra DifferenceKind = "Extra"
	// DifferenceChanged: the restored file's size or content differs.
	DifferenceChanged DifferenceKind = "Changed"
)

// MaxDifferences bounds the sample of differences a status keeps.
const MaxDifferences = 10

// RestoreDifference is one restored file that does not match the backup.
type RestoreDifference struct {
	// Path of the file as it was backed up.
	Path string `json:"path"`

	// Kind of difference.
	Kind DifferenceKind `json:"kind"`

	// Want is what the manifest recorded: the size in bytes and a short prefix of
	// the manifest's hash, for example "1024 bytes, blake3 3f2a9c01".
	// +optional
	Want string `json:"want,omitempty"`

	// Got is what was restored, in the same form, or why it could not be
	// read.
	// +optional
	Got string `json:"got,omitempty"`
}

// MaxResourceOutcomes bounds the object outcomes a component's status lists.
const MaxResourceOutcomes = 100

// ResourceResult is what a restore did with one Kubernetes object of a
// Snapshot's resource manifests.
// +kubebuilder:validation:Enum=Created;Updated;Kept;Refused;Accepted
type ResourceResult string

// The results of recreating an object.
const (
	// ResourceCreated: the object did not exist and was created.
	ResourceCreated ResourceResult = "Created"
	// ResourceUpdated: the object existed and was replaced, as the
	// session's overwriteResources asked.
	ResourceUpdated ResourceResult = "Updated"
	// ResourceKept: the object existed and was left as it was.
	ResourceKept ResourceResult = "Kept"
	// ResourceRefused: the API server refused the object; the message
	// says why.
	ResourceRefused ResourceResult = "Refused"
	// ResourceAccepted: a dry run (a verification's) found that the API
	// server validates and admits the object today; nothing was made.
	ResourceAccepted ResourceResult = "Accepted"
)

// ResourceOutcome is the outcome of one object a restore recreated.
type ResourceOutcome struct {
	// Kind of the object.
	Kind string `json:"kind"`
	// Name of the object.
	Name string `json:"name"`
	// Namespace of the object; empty for a cluster-scoped one.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Result of its restore.
	Result ResourceResult `json:"result"`
	// Message says why an object was refused, or how a dry run checked one
	// it accepted.
	// +optional
	Message string `json:"message,omitempty"`
}

// ComponentRestoreStatus is the state of restoring one component.
type ComponentRestoreStatus struct {
	// Phase of the component's restore.
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`

	// Duration of the component's restore.
	// +optional
	Duration string `json:"duration,omitempty"`

	// Error that made the component's restore fail.
	// +optional
	Error string `json:"error,omitempty"`

	// FilesRestored is how many files restic restored.
	// +optional
	FilesRestored int64 `json:"filesRestored,omitempty"`

	// BytesRestored is how many bytes restic restored.
	// +optional
	BytesRestored int64 `json:"bytesRestored,omitempty"`

	// FilesChecked is how many restored files were compared with the
	// backup's content manifest.
	// +optional
	FilesChecked int64 `json:"filesChecked,omitempty"`

	// Differences is a sample, at most MaxDifferences, of the restored
	// files that do not match the manifest.
	// +kubebuilder:validation:MaxItems=10
	// +optional
	Differences []RestoreDifference `json:"differences,omitempty"`

	// TotalDifferences is how many files differ, of which Differences is
	// a sample.
	// +optional
	TotalDifferences int64 `json:"totalDifferences,omitempty"`

	// DataChecked is the part of the repository's packs restic's check
	// read, as spec.readDataSubset asked for it; empty when no check ran.
	// +optional
	DataChecked string `json:"dataChecked,omitempty"`

	// Resources are the outcomes of the Kubernetes objects a component of
	// resource manifests recreated, refusals first, at most
	// MaxResourceOutcomes of them.
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Resources []ResourceOutcome `json:"resources,omitempty"`

	// TotalResources is how many objects the component's resource
	// manifests held, of which Resources lists the outcomes.
	// +optional
	TotalResources int64 `json:"totalResources,omitempty"`
}

// RestoreSessionStatus is the observed state of a RestoreSession.
type RestoreSessionStatus struct {
	xpv2.ConditionedStatus `json:",inline"`

	// Phase is Failed when RestoreIncomplete is True or a component failed,
	// Succeeded when every component was restored, and Pending or Running
	// otherwise.
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`

	// TargetFound is true when the target exists.
	// +optional
	TargetFound *bool `json:"targetFound,omitempty"`

	// Duration of the restore.
	// +optional
	Duration string `json:"duration,omitempty"`

	// RestoreDeadline is when the restore times out.
	// +optional
	RestoreDeadline *metav1.Time `json:"restoreDeadline,omitempty"`

	// TotalComponents is the number of components to restore.
	// +optional
	TotalComponents int32 `json:"totalComponents,omitempty"`

	// Components by name.
	// +optional
	Components map[string]ComponentRestoreStatus `json:"components,omitempty"`

	// Hooks of the restore.
	// +optional
	Hooks HookStatus `json:"hooks,omitempty"`
}

// A RestoreSession restores a Snapshot, or some of its components, into a
// target.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=stashplane,shortName=restore
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.dataSource.repository`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.duration`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RestoreSession struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec   RestoreSessionSpec   `json:"spec"`
	Status RestoreSessionStatus `json:"status,omitempty"`
}

// RestoreSessionList is a list of RestoreSessions.
// +kubebuilder:object:root=true
type RestoreSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RestoreSession `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RestoreSession{}, &RestoreSessionList{})
}
