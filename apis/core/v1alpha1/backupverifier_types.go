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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// VerificationType says how a restored Snapshot is judged.
// +kubebuilder:validation:Enum=RestoreOnly;Query;Script
type VerificationType string

// Verification types.
const (
	// VerificationRestoreOnly judges a Snapshot by whether it restores.
	VerificationRestoreOnly VerificationType = "RestoreOnly"
	// VerificationQuery restores the Snapshot, then runs the verifier's
	// Function with the query and judges by its result.
	VerificationQuery VerificationType = "Query"
	// VerificationScript restores the Snapshot, then runs the script at
	// script.location through the verifier's Function.
	VerificationScript VerificationType = "Script"
)

// Operators a query may compare a value with. The query itself is
// free-form, one shape per kind of database.
const (
	OperatorEqual              = "Equal"
	OperatorNotEqual           = "NotEqual"
	OperatorLessThan           = "LessThan"
	OperatorLessThanOrEqual    = "LessThanOrEqual"
	OperatorGreaterThan        = "GreaterThan"
	OperatorGreaterThanOrEqual = "GreaterThanOrEqual"
)

// RestoreOption says where and how a Snapshot is restored to be verified.
type RestoreOption struct {
	// Target is the scratch workload or application restored into.
	// +kubebuilder:validation:Required
	Target storagev1alpha1.TypedObjectReference `json:"target"`

	// AddonInfo is the Addon, and its restore tasks, that do the restore.
	// +kubebuilder:validation:Required
	AddonInfo AddonInfo `json:"addonInfo"`
}

// ScriptVerifierSpec is the script a Script verifier runs.
type ScriptVerifierSpec struct {
	// Location of the script, a path inside the verifier's volumes.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Location string `json:"location"`

	// Args passed to the script.
	// +optional
	Args []string `json:"args,omitempty"`
}

// BackupVerifierSpec is the desired state of a BackupVerifier.
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type == 'RestoreOnly' || (has(self.function) && size(self.function) > 0)",message="function is required when type is Query or Script"
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'Script' || (has(self.script) && size(self.script.location) > 0)",message="script.location is required when type is Script"
type BackupVerifierSpec struct {
	// RestoreOption says where and how Snapshots are restored for the test.
	// +kubebuilder:validation:Required
	RestoreOption RestoreOption `json:"restoreOption"`

	// Scheduler says when the newest Snapshot of each linked Repository is
	// verified. Its concurrencyPolicy may not be Replace: verification
	// sessions of one Snapshot already take turns, and ending one half way
	// is not built.
	// +kubebuilder:validation:XValidation:rule="!has(self.concurrencyPolicy) || self.concurrencyPolicy != 'Replace'",message="concurrencyPolicy: Replace is not carried out for a BackupVerifier (ending a verification half way is not built); use Forbid or Allow"
	// +optional
	Scheduler *SchedulerSpec `json:"scheduler,omitempty"`

	// Type says how a restored Snapshot is judged.
	// +kubebuilder:default=RestoreOnly
	// +optional
	Type VerificationType `json:"type,omitempty"`

	// Function that runs the query or script; required for Query and
	// Script.
	// +optional
	Function string `json:"function,omitempty"`

	// Query for a Query verifier, given to its Function as its
	// parameters: free-form fields the Function takes (a query and the
	// value it must return), and KubeStash's structured row counts for
	// PostgreSQL (postgres[]), which the schema checks.
	// +optional
	Query *VerifierQuery `json:"query,omitempty"`

	// Script for a Script verifier.
	// +optional
	Script *ScriptVerifierSpec `json:"script,omitempty"`

	// Volumes available to the verifier's Job.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Volumes []Volume `json:"volumes,omitempty"`

	// VolumeMounts of those volumes in the verifier's container.
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`

	// ReadDataSubset makes each verification also run restic's check with
	// --read-data-subset (and --no-lock, so a running backup is not
	// blocked) over the repository before restoring: "n/t" (part n of t),
	// "x%" of the packs, or a size such as "500M". The default, empty, or
	// "0" runs no check: the restore and the manifest comparison then read
	// only the Snapshot's own data.
	// +kubebuilder:validation:Pattern=`^$|^0$|^[1-9][0-9]*/[1-9][0-9]*$|^[0-9]+(\.[0-9]+)?%$|^[1-9][0-9]*[KMGT]?$`
	// +optional
	ReadDataSubset string `json:"readDataSubset,omitempty"`

	// RetryConfig says how a failed verification is retried.
	// +optional
	RetryConfig *RetryConfig `json:"retryConfig,omitempty"`

	// VerdictMaxAge is how long a Verified verdict spares a Snapshot a new
	// verification: once it is older, the next session verifies the
	// Snapshot again, so that data storage lost since is found even when no
	// backup runs. "0s" never verifies a Verified Snapshot again.
	// +kubebuilder:default="168h"
	// +optional
	VerdictMaxAge *metav1.Duration `json:"verdictMaxAge,omitempty"`

	// SessionHistoryLimit is how many finished BackupVerificationSessions
	// are kept per Repository.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=1
	// +optional
	SessionHistoryLimit int32 `json:"sessionHistoryLimit,omitempty"`

	// RuntimeSettings of the verifier's Job.
	// +optional
	RuntimeSettings *storagev1alpha1.RuntimeSettings `json:"runtimeSettings,omitempty"`
}

// A BackupVerifier says how and when the Snapshots of a Repository are
// proven restorable. A Repository is linked to it from the repositories of
// a BackupConfiguration's session. It has no status; each verification is a
// BackupVerificationSession.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,categories=stashplane,shortName=bv
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupVerifier struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec BackupVerifierSpec `json:"spec"`
}

// BackupVerifierList is a list of BackupVerifiers.
// +kubebuilder:object:root=true
type BackupVerifierList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupVerifier `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BackupVerifier{}, &BackupVerifierList{})
}
