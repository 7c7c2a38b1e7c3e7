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

// BackupSessionSpec is the desired state of a BackupSession.
type BackupSessionSpec struct {
	// Invoker is the BackupConfiguration whose session this is a run of,
	// in the BackupSession's namespace.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:XValidation:rule="!has(self.kind) || self.kind == 'BackupConfiguration'",message="invoker.kind: a BackupSession runs a session of a BackupConfiguration"
	// +kubebuilder:validation:XValidation:rule="!has(self.apiGroup) || self.apiGroup == 'core.stashplane.io'",message="invoker.apiGroup: a BackupConfiguration is of core.stashplane.io"
	// +kubebuilder:validation:XValidation:rule="!has(self.__namespace__) || self.__namespace__ == ''",message="invoker.namespace: a BackupSession runs in its configuration's namespace; leave the namespace empty"
	Invoker storagev1alpha1.TypedObjectReference `json:"invoker"`

	// Session is the name of the invoker's session.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Session string `json:"session"`

	// RetryLeft is how many more times this run may be retried if it fails.
	// +kubebuilder:validation:Minimum=0
	// +optional
	RetryLeft int32 `json:"retryLeft,omitempty"`

	// BackupTimeout bounds how long this run may take.
	// +optional
	BackupTimeout *metav1.Duration `json:"backupTimeout,omitempty"`
}

// BackupSessionPhase summarises the conditions of a BackupSession.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Skipped
type BackupSessionPhase string

// BackupSession phases.
const (
	BackupSessionPending   BackupSessionPhase = "Pending"
	BackupSessionRunning   BackupSessionPhase = "Running"
	BackupSessionSucceeded BackupSessionPhase = "Succeeded"
	BackupSessionFailed    BackupSessionPhase = "Failed"
	BackupSessionSkipped   BackupSessionPhase = "Skipped"
)

// BackupSession condition types.
const (
	// TypeBackupSkipped is True when the run was not started, because
	// another run of the same invoker is in progress or the invoker is not
	// Ready. A True value makes the phase Skipped. Set by the BackupSession
	// controller.
	TypeBackupSkipped xpv2.ConditionType = "BackupSkipped"

	// TypeSnapshotsEnsured is True once a Snapshot exists for every
	// Repository of the session. Set and cleared by the BackupSession
	// controller.
	TypeSnapshotsEnsured xpv2.ConditionType = "SnapshotsEnsured"

	// TypePreBackupHooksExecutionSucceeded is True once every pre-backup hook
	// succeeded and False as soon as one failed; a session whose pre-backup
	// hook failed creates no backup Job and fails. Set by the BackupSession
	// controller, as the step between its Snapshots and its Jobs.
	TypePreBackupHooksExecutionSucceeded xpv2.ConditionType = "PreBackupHooksExecutionSucceeded"

	// TypeBackupExecutorEnsured is True once the Jobs that take the backup
	// exist. Set and cleared by the BackupSession controller.
	TypeBackupExecutorEnsured xpv2.ConditionType = "BackupExecutorEnsured"

	// TypePostBackupHooksExecutionSucceeded is True once every post-backup
	// hook that was due succeeded and False as soon as one failed (the
	// session then fails). Set by the BackupSession controller once the
	// backup has an outcome; hooks whose executionPolicy is Always run even
	// after a failed backup or a failed pre-backup hook.
	TypePostBackupHooksExecutionSucceeded xpv2.ConditionType = "PostBackupHooksExecutionSucceeded"

	// TypeRetentionPolicyExecutorEnsured is True once the retention policy
	// of every repository of the session was applied after the backup,
	// False while a removal waits for a Snapshot in use or a policy could
	// not be applied. Set by the retention controller
	// (controllers/retention) once the session has an outcome.
	TypeRetentionPolicyExecutorEnsured xpv2.ConditionType = "RetentionPolicyExecutorEnsured"

	// TypeSessionHistoryCleaned is True once older BackupSessions beyond the
	// session's history limit were removed. Set by the BackupSession
	// controller.
	TypeSessionHistoryCleaned xpv2.ConditionType = "SessionHistoryCleaned"

	// TypeBackupReplaced is True when a newer run of the same session,
	// whose concurrencyPolicy is Replace, started while this one had not
	// ended; its message names the newer run. The run then ends: Skipped
	// when it had made no Snapshot yet, else Failed with its Jobs deleted
	// and its unfinished Snapshots Failed (ReplacedByNewerRun), and it is
	// not retried. Set by the BackupSession controller reconciling the
	// newer run; acted on by the same controller reconciling this one.
	TypeBackupReplaced xpv2.ConditionType = "BackupReplaced"
)

// BackupSession condition reasons.
const (
	// ReasonSkippedConcurrentSession: another run of the invoker is in
	// progress.
	ReasonSkippedConcurrentSession xpv2.ConditionReason = "SkippedConcurrentSession"
	// ReasonSkippedInvokerNotReady: the invoker is not Ready.
	ReasonSkippedInvokerNotReady xpv2.ConditionReason = "SkippedInvokerNotReady"
	// ReasonSkippedInvokerPaused: the invoker is paused, so a session
	// created by hand does not run either.
	ReasonSkippedInvokerPaused xpv2.ConditionReason = "SkippedInvokerPaused"
	// ReasonSkippedRepositoriesPaused: every repository of the session is
	// paused, so there is nothing to back up.
	ReasonSkippedRepositoriesPaused xpv2.ConditionReason = "SkippedRepositoriesPaused"
	// ReasonSnapshotsEnsured: every Snapshot exists.
	ReasonSnapshotsEnsured xpv2.ConditionReason = "SnapshotsEnsured"
	// ReasonSnapshotsNotEnsured: a Snapshot could not be created.
	ReasonSnapshotsNotEnsured xpv2.ConditionReason = "SnapshotsNotEnsured"
	// ReasonWaitingForPrune: a prune of one of the session's Repositories
	// runs; the run starts once it ended, and its backupTimeout counts
	// from then. A RestoreSession gives it in RestoreExecutorEnsured, and
	// a BackupVerificationSession whose restore waits in RestoreSucceeded
	// (Unknown).
	ReasonWaitingForPrune xpv2.ConditionReason = "WaitingForPrune"
	// ReasonReplacedByNewerRun: a newer run of the session, whose
	// concurrencyPolicy is Replace, ended this one.
	ReasonReplacedByNewerRun xpv2.ConditionReason = "ReplacedByNewerRun"
	// ReasonWaitingForReplacedRun: the run waits for the older runs it
	// replaces to end and their pods to be gone; its backupTimeout counts
	// from then.
	ReasonWaitingForReplacedRun xpv2.ConditionReason = "WaitingForReplacedRun"
	// ReasonHooksExecutionSucceeded: the hooks succeeded.
	ReasonHooksExecutionSucceeded xpv2.ConditionReason = "HooksExecutionSucceeded"
	// ReasonHooksExecutionFailed: a hook failed.
	ReasonHooksExecutionFailed xpv2.ConditionReason = "HooksExecutionFailed"
	// ReasonBackupExecutorEnsured: the backup Jobs exist.
	ReasonBackupExecutorEnsured xpv2.ConditionReason = "BackupExecutorEnsured"
	// ReasonBackupExecutorNotEnsured: a backup Job could not be created.
	ReasonBackupExecutorNotEnsured xpv2.ConditionReason = "BackupExecutorNotEnsured"
	// ReasonRetentionPolicyApplied: every retention policy was applied.
	ReasonRetentionPolicyApplied xpv2.ConditionReason = "RetentionPolicyApplied"
	// ReasonRetentionPolicyFailedToApply: a retention policy failed.
	ReasonRetentionPolicyFailedToApply xpv2.ConditionReason = "RetentionPolicyFailedToApply"
	// ReasonRetentionPolicyPending: a Snapshot due to go is in use or
	// paused; it is removed once it no longer is.
	ReasonRetentionPolicyPending xpv2.ConditionReason = "RetentionPolicyPending"
	// ReasonSessionHistoryCleaned: old sessions were removed.
	ReasonSessionHistoryCleaned xpv2.ConditionReason = "SessionHistoryCleaned"
	// ReasonSessionHistoryCleanupFailed: old sessions could not be removed.
	ReasonSessionHistoryCleanupFailed xpv2.ConditionReason = "SessionHistoryCleanupFailed"
)

// SnapshotStatus is what a BackupSession knows of one Snapshot it took.
type SnapshotStatus struct {
	// Name of the Snapshot.
	Name string `json:"name"`

	// Phase of the Snapshot.
	// +optional
	Phase storagev1alpha1.SnapshotPhase `json:"phase,omitempty"`

	// AppRef is the workload or application the Snapshot holds.
	// +optional
	AppRef *storagev1alpha1.TypedObjectReference `json:"appRef,omitempty"`

	// Repository that holds the Snapshot.
	// +optional
	Repository string `json:"repository,omitempty"`
}

// RetentionPolicyApplyPhase is the state of applying a retention policy.
// +kubebuilder:validation:Enum=Pending;Applied;FailedToApply
type RetentionPolicyApplyPhase string

// Retention policy apply phases.
const (
	RetentionPolicyPending       RetentionPolicyApplyPhase = "Pending"
	RetentionPolicyApplied       RetentionPolicyApplyPhase = "Applied"
	RetentionPolicyFailedToApply RetentionPolicyApplyPhase = "FailedToApply"
)

// RetentionPolicyApplyStatus is the state of applying one retention policy
// to one Repository after a backup.
type RetentionPolicyApplyStatus struct {
	// Ref is the RetentionPolicy.
	// +optional
	Ref storagev1alpha1.ObjectReference `json:"ref,omitempty"`

	// Repository the policy was applied to.
	// +optional
	Repository string `json:"repository,omitempty"`

	// Phase of applying the policy.
	// +optional
	Phase RetentionPolicyApplyPhase `json:"phase,omitempty"`

	// Error that made applying the policy fail.
	// +optional
	Error string `json:"error,omitempty"`

	// Removed are the Snapshots the policy removed, each with the rule
	// that removed it.
	// +optional
	Removed []RetentionRemoval `json:"removed,omitempty"`

	// Message says what the policy kept against its rules and why: the
	// newest Verified Snapshot kept past maxRetentionPeriod, a Snapshot
	// that waits while in use or paused.
	// +optional
	Message string `json:"message,omitempty"`
}

// RetentionRemoval is one Snapshot a retention policy removed.
type RetentionRemoval struct {
	// Snapshot that was removed.
	Snapshot string `json:"snapshot"`

	// Rule that removed it: maxRetentionPeriod, successfulSnapshots (no
	// keep rule kept it) or failedSnapshots.last.
	Rule string `json:"rule"`
}

// BackupSessionStatus is the observed state of a BackupSession.
type BackupSessionStatus struct {
	xpv2.ConditionedStatus `json:",inline"`

	// Phase is Skipped when BackupSkipped is True, Failed when a condition
	// failed or a Snapshot failed, Succeeded when every Snapshot succeeded
	// and every step after the backup ran, and Running or Pending otherwise.
	// +optional
	Phase BackupSessionPhase `json:"phase,omitempty"`

	// Duration of the run, for example "2m13s".
	// +optional
	Duration string `json:"duration,omitempty"`

	// BackupDeadline is when the run times out.
	// +optional
	BackupDeadline *metav1.Time `json:"backupDeadline,omitempty"`

	// TotalSnapshots is the number of Snapshots the run takes.
	// +optional
	TotalSnapshots *int32 `json:"totalSnapshots,omitempty"`

	// Snapshots taken by the run.
	// +optional
	Snapshots []SnapshotStatus `json:"snapshots,omitempty"`

	// Hooks of the run.
	// +optional
	Hooks HookStatus `json:"hooks,omitempty"`

	// RetentionPolicy is the state of applying retention after the run.
	// +optional
	RetentionPolicy []RetentionPolicyApplyStatus `json:"retentionPolicy,omitempty"`

	// Retried is true once a new run was created to retry this failed one.
	// +optional
	Retried *bool `json:"retried,omitempty"`

	// NextRetry is when the retry of this failed run will be created.
	// +optional
	NextRetry *metav1.Time `json:"nextRetry,omitempty"`
}

// A BackupSession is one run of one session of a BackupConfiguration. Its
// name is "<invoker>-<session>-<unix time>".
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=stashplane,shortName=bks
// +kubebuilder:printcolumn:name="Invoker",type=string,JSONPath=`.spec.invoker.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.duration`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupSession struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec   BackupSessionSpec   `json:"spec"`
	Status BackupSessionStatus `json:"status,omitempty"`
}

// BackupSessionList is a list of BackupSessions.
// +kubebuilder:object:root=true
type BackupSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupSession `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BackupSession{}, &BackupSessionList{})
}
