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

// BackupVerificationSessionSpec is the desired state of a
// BackupVerificationSession. It cannot change once created.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable"
type BackupVerificationSessionSpec struct {
	// Invoker is the BackupVerifier that started the verification, in the
	// session's namespace.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:XValidation:rule="!has(self.apiGroup) || self.apiGroup == 'core.stashplane.io'",message="invoker.apiGroup: a BackupVerifier is of core.stashplane.io"
	// +kubebuilder:validation:XValidation:rule="!has(self.__namespace__) || self.__namespace__ == ''",message="invoker.namespace: a verification session runs beside its verifier; leave the namespace empty"
	Invoker storagev1alpha1.TypedObjectReference `json:"invoker"`

	// Session of the BackupConfiguration whose Snapshot is verified.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Session string `json:"session"`

	// Repository holding the Snapshot.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Repository string `json:"repository"`

	// Snapshot to verify.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Snapshot string `json:"snapshot"`

	// RetryLeft is how many more times this verification may be retried if
	// it fails.
	// +kubebuilder:validation:Minimum=0
	// +optional
	RetryLeft int32 `json:"retryLeft,omitempty"`
}

// BackupVerificationSessionPhase summarises the conditions of a
// BackupVerificationSession.
// +kubebuilder:validation:Enum=Running;Succeeded;Failed;Skipped
type BackupVerificationSessionPhase string

// BackupVerificationSession phases.
const (
	VerificationSessionRunning   BackupVerificationSessionPhase = "Running"
	VerificationSessionSucceeded BackupVerificationSessionPhase = "Succeeded"
	VerificationSessionFailed    BackupVerificationSessionPhase = "Failed"
	VerificationSessionSkipped   BackupVerificationSessionPhase = "Skipped"
)

// BackupVerificationSession condition types.
const (
	// TypeBackupVerificationSkipped is True when the verification was not
	// run, for example because the Snapshot is already Verified. A True
	// value makes the phase Skipped. Set by the BackupVerificationSession
	// controller.
	TypeBackupVerificationSkipped xpv2.ConditionType = "BackupVerificationSkipped"

	// TypeVerificationExecutorEnsured is True once the Jobs that restore and
	// check the Snapshot exist. Set and cleared by the
	// BackupVerificationSession controller.
	TypeVerificationExecutorEnsured xpv2.ConditionType = "VerificationExecutorEnsured"

	// TypeRestoreSucceeded is True once the Snapshot was restored into the
	// verifier's target, False if the restore failed. Set by the
	// BackupVerificationSession controller.
	TypeRestoreSucceeded xpv2.ConditionType = "RestoreSucceeded"

	// TypeBackupVerified is the verdict: True when the Snapshot was restored
	// and, for Query and Script verifiers, the check passed; False when
	// either failed. The verdict is written to the Snapshot's
	// verificationStatus. Set by the BackupVerificationSession controller.
	TypeBackupVerified xpv2.ConditionType = "BackupVerified"

	// TypeVerificationSessionHistoryCleaned is True once older
	// BackupVerificationSessions beyond the verifier's history limit were
	// removed. Set by the BackupVerificationSession controller.
	TypeVerificationSessionHistoryCleaned xpv2.ConditionType = "VerificationSessionHistoryCleaned"
)

// BackupVerificationSession condition reasons.
const (
	// ReasonSnapshotAlreadyVerified: the Snapshot was verified before, so
	// this session was skipped.
	ReasonSnapshotAlreadyVerified xpv2.ConditionReason = "SnapshotAlreadyVerified"
	// ReasonVerificationExecutorEnsured: the verification Jobs exist.
	ReasonVerificationExecutorEnsured xpv2.ConditionReason = "VerificationExecutorEnsured"
	// ReasonVerificationExecutorNotEnsured: a verification Job could not be
	// created.
	ReasonVerificationExecutorNotEnsured xpv2.ConditionReason = "VerificationExecutorNotEnsured"
	// ReasonRestoreSucceeded: the Snapshot was restored.
	ReasonRestoreSucceeded xpv2.ConditionReason = "RestoreSucceeded"
	// ReasonRestoreFailed: the Snapshot could not be restored.
	ReasonRestoreFailed xpv2.ConditionReason = "RestoreFailed"
	// ReasonRestoreRunning: the restore runs, after it waited for a prune
	// (RestoreSucceeded Unknown).
	ReasonRestoreRunning xpv2.ConditionReason = "RestoreRunning"
	// ReasonVerificationPassed: the check passed.
	ReasonVerificationPassed xpv2.ConditionReason = "VerificationPassed"
	// ReasonVerificationFailed: the restore or the check failed.
	ReasonVerificationFailed xpv2.ConditionReason = "VerificationFailed"
	// ReasonVerificationNotRunnable: the verification cannot run as the
	// verifier and the session are written, for example the verifier or the
	// Snapshot is missing, the Snapshot has not Succeeded, or the scratch
	// target is of a kind that is not created for a run. No verdict is
	// written to the Snapshot.
	ReasonVerificationNotRunnable xpv2.ConditionReason = "VerificationNotRunnable"
	// ReasonVerificationTypeNotImplemented: the verifier's type was not
	// implemented when the session ran; nothing was restored and no verdict
	// was written. Query and Script verifiers run now, so it is no longer
	// set; sessions that ended with it keep their Failed phase.
	ReasonVerificationTypeNotImplemented xpv2.ConditionReason = "VerificationTypeNotImplemented"
	// ReasonVerificationWaiting: another BackupVerificationSession is
	// verifying the same Snapshot; this one starts once it ends.
	ReasonVerificationWaiting xpv2.ConditionReason = "WaitingForSession"
	// ReasonSnapshotPaused: the Snapshot is paused, so it is not verified.
	ReasonSnapshotPaused xpv2.ConditionReason = "SnapshotPaused"
	// ReasonContentNotChecked: the restore succeeded, but a component whose
	// backup holds data compared no restored file with a content manifest
	// (the manifest is missing or belongs to another restic snapshot), so
	// nothing supports a verdict. The session fails; the Snapshot's verdict
	// is left as it was (NotVerified if it had none).
	ReasonContentNotChecked xpv2.ConditionReason = "ContentNotChecked"
	// ReasonVerificationSetupFailed: the restore failed for how the
	// verifier asked for it, not for what the backup holds (include
	// patterns that match nothing, a path the backup does not hold, a
	// database load of a file backup, a scratch target too small). The
	// session fails saying what to fix; the Snapshot keeps its verdict.
	ReasonVerificationSetupFailed xpv2.ConditionReason = "VerificationSetupFailed"
	// ReasonVerifierNotRun: the verifier's Job ended without its check
	// saying pass or fail: an exit code other than 0 or 1, an image that
	// could not be pulled, its deadline, an eviction or a Job that
	// vanished. The session fails; the Snapshot's verdict is left as it
	// was (NotVerified if it had none).
	ReasonVerifierNotRun xpv2.ConditionReason = "VerifierNotRun"
	// ReasonVerificationSessionHistoryCleaned: old sessions were removed.
	ReasonVerificationSessionHistoryCleaned xpv2.ConditionReason = "VerificationSessionHistoryCleaned"
	// ReasonVerificationSessionHistoryCleanupFailed: old sessions could not
	// be removed.
	ReasonVerificationSessionHistoryCleanupFailed xpv2.ConditionReason = "VerificationSessionHistoryCleanupFailed"
)

// BackupVerificationSessionStatus is the observed state of a
// BackupVerificationSession.
type BackupVerificationSessionStatus struct {
	xpv2.ConditionedStatus `json:",inline"`

	// Phase is Skipped when BackupVerificationSkipped is True, Succeeded
	// when BackupVerified is True, Failed when it or RestoreSucceeded is
	// False or VerificationExecutorEnsured is False because the
	// verification cannot run (VerificationNotRunnable,
	// VerificationTypeNotImplemented), and Running otherwise.
	// +optional
	Phase BackupVerificationSessionPhase `json:"phase,omitempty"`

	// Duration of the verification.
	// +optional
	Duration string `json:"duration,omitempty"`

	// RestoreSession that restored the Snapshot for this verification.
	// +optional
	RestoreSession string `json:"restoreSession,omitempty"`

	// RestoreSessionNamespace is the namespace of the RestoreSession and
	// the scratch target when the verifier restores into another
	// namespace than the session's; empty means the session's.
	// +optional
	RestoreSessionNamespace string `json:"restoreSessionNamespace,omitempty"`

	// RestoreDuration is the measured time to restore the Snapshot: from
	// the RestoreSession's creation to its outcome.
	// +optional
	RestoreDuration string `json:"restoreDuration,omitempty"`

	// VerifierJob is the Job that ran a Query or Script verifier's
	// Function on the restored data, once it was created.
	// +optional
	VerifierJob string `json:"verifierJob,omitempty"`

	// VerifierResult is the last line the verifier Job printed, for
	// example the value a query returned, once the Job ended.
	// +optional
	VerifierResult string `json:"verifierResult,omitempty"`

	// Retried is true once a new session was created to retry this failed
	// one.
	// +optional
	Retried *bool `json:"retried,omitempty"`

	// BytesRestored is the sum of the bytes restic restored over the
	// components.
	// +optional
	BytesRestored int64 `json:"bytesRestored,omitempty"`

	// FilesChecked is how many restored files were compared with the
	// backup's content manifest.
	// +optional
	FilesChecked int64 `json:"filesChecked,omitempty"`

	// Differences is a sample, at most ten, of the restored files that do
	// not match the backup's content manifest, over all components.
	// +kubebuilder:validation:MaxItems=10
	// +optional
	Differences []RestoreDifference `json:"differences,omitempty"`

	// DataChecked is the part of the repository's packs restic's check
	// read before the restore (spec.readDataSubset of the verifier).
	// +optional
	DataChecked string `json:"dataChecked,omitempty"`
}

// A BackupVerificationSession is one verification of one Snapshot. Its name
// is "<repository>-<session>-<unix time>".
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=stashplane,shortName=bvs
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository`
// +kubebuilder:printcolumn:name="Snapshot",type=string,JSONPath=`.spec.snapshot`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Restore-Time",type=string,JSONPath=`.status.restoreDuration`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupVerificationSession struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec   BackupVerificationSessionSpec   `json:"spec"`
	Status BackupVerificationSessionStatus `json:"status,omitempty"`
}

// BackupVerificationSessionList is a list of BackupVerificationSessions.
// +kubebuilder:object:root=true
type BackupVerificationSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupVerificationSession `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BackupVerificationSession{}, &BackupVerificationSessionList{})
}
