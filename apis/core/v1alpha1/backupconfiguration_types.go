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
	"strings"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// BackendReference names a BackupStorage, and the RetentionPolicy applied to
// it, under a name the sessions of a configuration use.
type BackendReference struct {
	// Name of the backend within the configuration.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// StorageRef is the BackupStorage of the backend. Omitted, it is the
	// default BackupStorage (spec.default) of the configuration's namespace,
	// else the one default BackupStorage of another namespace whose
	// usagePolicy admits the configuration's; the validation controller
	// writes the storage it resolved here, and refuses the configuration
	// (naming this field) when there is none or more than one.
	// +optional
	StorageRef *storagev1alpha1.ObjectReference `json:"storageRef,omitempty"`

	// RetentionPolicy applied to the Snapshots in this backend; empty means
	// the default RetentionPolicy.
	// +optional
	RetentionPolicy *storagev1alpha1.ObjectReference `json:"retentionPolicy,omitempty"`
}

// Storage is the backend's BackupStorage reference; empty until the
// default BackupStorage is resolved for an omitted storageRef.
func (b BackendReference) Storage() storagev1alpha1.ObjectReference {
	if b.StorageRef == nil {
		return storagev1alpha1.ObjectReference{}
	}
	return *b.StorageRef
}

// RepositoryDeletionPolicy says what becomes of a configuration's
// Repository: KubeStash's values for repositories[].deletionPolicy.
// +kubebuilder:validation:Enum=Delete;WipeOut;Retain
type RepositoryDeletionPolicy string

// Repository deletion policies of a configuration.
const (
	// RepositoryDeletionPolicyDelete: the Repository's deletionPolicy is
	// Delete; deleting it keeps the data in the backend.
	RepositoryDeletionPolicyDelete RepositoryDeletionPolicy = "Delete"
	// RepositoryDeletionPolicyWipeOut: the Repository's deletionPolicy is
	// WipeOut; deleting it removes its data from the backend.
	RepositoryDeletionPolicyWipeOut RepositoryDeletionPolicy = "WipeOut"
	// RepositoryDeletionPolicyRetain: the Repository outlives the
	// configuration, with its data (its deletionPolicy is Delete).
	RepositoryDeletionPolicyRetain RepositoryDeletionPolicy = "Retain"
)

// Repository is the deletionPolicy the Repository gets: Retain keeps the
// Repository and so its data, which is Delete's meaning for a Repository.
func (p RepositoryDeletionPolicy) Repository() storagev1alpha1.DeletionPolicy {
	if p == RepositoryDeletionPolicyWipeOut {
		return storagev1alpha1.DeletionPolicyWipeOut
	}
	return storagev1alpha1.DeletionPolicyDelete
}

// RepositoryInfo says which Repository a session writes to and how that
// Repository is created.
// +kubebuilder:validation:XValidation:rule="has(self.encryptionSecret)",message="encryptionSecret is required: the built-in addons back up with restic, which always encrypts; name a Secret holding RESTIC_PASSWORD"
type RepositoryInfo struct {
	// Name of the Repository, created in the configuration's namespace.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Backend is the name of one of the configuration's backends.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Backend string `json:"backend"`

	// Directory of the Repository, relative to the root of the storage. A
	// leading or trailing slash, as KubeStash's examples write it ("/dep"),
	// names the same place as without.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Directory string `json:"directory"`

	// EncryptionSecret holds RESTIC_PASSWORD for the Repository. KubeStash
	// leaves it out only for a driver that does not encrypt; every built-in
	// addon backs up with restic, which always encrypts, so an omitted
	// encryptionSecret is refused at admission saying so.
	// +optional
	EncryptionSecret storagev1alpha1.ObjectReference `json:"encryptionSecret"`

	// BackupVerifier that proves this Repository's Snapshots restorable;
	// empty means they are not verified.
	// +optional
	BackupVerifier *storagev1alpha1.ObjectReference `json:"backupVerifier,omitempty"`

	// DeletionPolicy of the Repository: Delete (deleting the Repository
	// keeps its data) or WipeOut (deleting it removes its data) become the
	// Repository's deletionPolicy; Retain, KubeStash's value for a
	// Repository that outlives its configuration, keeps the Repository and
	// its data (the Repository's deletionPolicy is Delete). Deleting a
	// configuration never deletes its Repositories, whatever the value.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy RepositoryDeletionPolicy `json:"deletionPolicy,omitempty"`
}

// Session is one schedule of backups of a configuration's target, with its
// own hooks, retry rules, Addon and Repositories.
type Session struct {
	// Name of the session within the configuration.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Scheduler says when backups of this session run.
	// +optional
	Scheduler *SchedulerSpec `json:"scheduler,omitempty"`

	// Hooks run before and after each backup.
	// +optional
	Hooks *BackupHooks `json:"hooks,omitempty"`

	// RetryConfig says how a failed backup is retried.
	// +optional
	RetryConfig *RetryConfig `json:"retryConfig,omitempty"`

	// BackupTimeout bounds how long one backup may run, for example "2h".
	// +optional
	BackupTimeout *metav1.Duration `json:"backupTimeout,omitempty"`

	// SessionHistoryLimit is how many finished BackupSessions of this
	// session are kept.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=1
	// +optional
	SessionHistoryLimit int32 `json:"sessionHistoryLimit,omitempty"`

	// Addon that takes the backup.
	// +optional
	Addon *AddonInfo `json:"addon,omitempty"`

	// Repositories the backup is written to.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	// +listType=map
	// +listMapKey=name
	Repositories []RepositoryInfo `json:"repositories,omitempty"`
}

// BackupConfigurationSpec is the desired state of a BackupConfiguration.
type BackupConfigurationSpec struct {
	// Target is the workload or application to back up.
	// +optional
	Target *storagev1alpha1.TypedObjectReference `json:"target,omitempty"`

	// Backends the sessions write to.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	Backends []BackendReference `json:"backends,omitempty"`

	// Sessions of backups.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	Sessions []Session `json:"sessions,omitempty"`

	// Paused stops new backups from starting.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// BackupInvokerPhase summarises the conditions of a BackupConfiguration.
// +kubebuilder:validation:Enum=NotReady;Ready;Invalid
type BackupInvokerPhase string

// BackupConfiguration phases.
const (
	BackupInvokerNotReady BackupInvokerPhase = "NotReady"
	BackupInvokerReady    BackupInvokerPhase = "Ready"
	BackupInvokerInvalid  BackupInvokerPhase = "Invalid"
)

// BackupConfiguration condition types.
const (
	// TypeValidationPassed is True when the configuration's references
	// (storages, retention policies, Addon, hook templates, verifiers) exist
	// and may be used from its namespace. False makes the phase Invalid. Set
	// and cleared by the BackupConfiguration controller.
	TypeValidationPassed xpv2.ConditionType = "ValidationPassed"

	// TypeSchedulerEnsured is True, in a session's status, once the
	// session's scheduler is in place. Set and cleared by the
	// BackupConfiguration controller.
	TypeSchedulerEnsured xpv2.ConditionType = "SchedulerEnsured"

	// TypeInitialBackupTriggered is True, in a session's status, once the
	// first BackupSession was created after the configuration became Ready.
	// Set by the BackupConfiguration controller, never cleared.
	TypeInitialBackupTriggered xpv2.ConditionType = "InitialBackupTriggered"
)

// BackupConfiguration condition reasons.
const (
	// ReasonResourceValidationPassed: every reference resolved.
	ReasonResourceValidationPassed xpv2.ConditionReason = "ResourceValidationPassed"
	// ReasonResourceValidationFailed: a reference is missing or not allowed.
	ReasonResourceValidationFailed xpv2.ConditionReason = "ResourceValidationFailed"
	// ReasonSchedulerEnsured: the scheduler exists and is up to date.
	ReasonSchedulerEnsured xpv2.ConditionReason = "SchedulerEnsured"
	// ReasonSchedulerNotEnsured: the scheduler could not be created or
	// updated.
	ReasonSchedulerNotEnsured xpv2.ConditionReason = "SchedulerNotEnsured"
	// ReasonInitialBackupTriggered: the first BackupSession was created.
	ReasonInitialBackupTriggered xpv2.ConditionReason = "InitialBackupTriggered"
)

// StoragePhase is the state of a configuration's BackupStorage.
// +kubebuilder:validation:Enum=Ready;NotReady;NotFound
type StoragePhase string

// Storage phases seen by a BackupConfiguration.
const (
	StorageReady    StoragePhase = "Ready"
	StorageNotReady StoragePhase = "NotReady"
	StorageNotFound StoragePhase = "NotFound"
)

// StorageStatus is what a configuration sees of one of its storages.
type StorageStatus struct {
	// Phase of the storage.
	// +optional
	Phase StoragePhase `json:"phase,omitempty"`

	// Reason the storage is not usable.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// RetentionPolicyStatus is what a configuration sees of the RetentionPolicy
// of one of its backends.
type RetentionPolicyStatus struct {
	// Found is true when the RetentionPolicy exists and may be used.
	// +optional
	Found *bool `json:"found,omitempty"`

	// Reason the RetentionPolicy is not usable.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// BackendStatus is the state of one backend of a configuration.
type BackendStatus struct {
	// Name of the backend.
	Name string `json:"name"`

	// Ready is true when the storage and the RetentionPolicy are usable.
	// +optional
	Ready *bool `json:"ready,omitempty"`

	// Storage of the backend.
	// +optional
	Storage *StorageStatus `json:"storage,omitempty"`

	// RetentionPolicy of the backend.
	// +optional
	RetentionPolicy *RetentionPolicyStatus `json:"retentionPolicy,omitempty"`
}

// RepositoryStatus is the state of one Repository of a configuration.
type RepositoryStatus struct {
	// Name of the Repository.
	Name string `json:"name"`

	// Phase of the Repository.
	// +optional
	Phase storagev1alpha1.RepositoryPhase `json:"phase,omitempty"`

	// Reason the Repository is not Ready.
	// +optional
	Reason string `json:"reason,omitempty"`

	// VerificationConfigured is true when a BackupVerifier is set for the
	// Repository and exists.
	// +optional
	VerificationConfigured *bool `json:"verificationConfigured,omitempty"`
}

// SessionStatus is the state of one session of a configuration.
type SessionStatus struct {
	xpv2.ConditionedStatus `json:",inline"`

	// Name of the session.
	Name string `json:"name"`

	// NextSchedule is when the next backup of the session is due.
	// +optional
	NextSchedule *metav1.Time `json:"nextSchedule,omitempty"`
}

// BackupConfigurationStatus is the observed state of a BackupConfiguration.
type BackupConfigurationStatus struct {
	xpv2.ConditionedStatus `json:",inline"`

	// Phase is Invalid when ValidationPassed is False, Ready when the
	// configuration and every session's conditions are True, and NotReady
	// otherwise.
	// +optional
	Phase BackupInvokerPhase `json:"phase,omitempty"`

	// TargetFound is true when the target exists.
	// +optional
	TargetFound *bool `json:"targetFound,omitempty"`

	// Backends of the configuration.
	// +optional
	Backends []BackendStatus `json:"backends,omitempty"`

	// Repositories of the configuration's sessions.
	// +optional
	Repositories []RepositoryStatus `json:"repositories,omitempty"`

	// Sessions of the configuration.
	// +optional
	Sessions []SessionStatus `json:"sessions,omitempty"`
}

// A BackupConfiguration says what to back up, where to and when. Once it is
// Ready, a first backup runs at once and later ones on each session's
// schedule.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=stashplane,shortName=bc
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Paused",type=boolean,JSONPath=`.spec.paused`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec   BackupConfigurationSpec   `json:"spec"`
	Status BackupConfigurationStatus `json:"status,omitempty"`
}

// BackupConfigurationList is a list of BackupConfigurations.
// +kubebuilder:object:root=true
type BackupConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupConfiguration `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BackupConfiguration{}, &BackupConfigurationList{})
}

// RepositoryPath is the Repository path a directory names: the directory
// without its leading and trailing slashes, so that "/dep" (as KubeStash's
// examples write it) and "dep" are one place in the storage.
func (r RepositoryInfo) RepositoryPath() string {
	return strings.Trim(r.Directory, "/")
}
