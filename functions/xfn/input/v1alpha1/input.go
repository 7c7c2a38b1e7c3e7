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

// Package v1alpha1 is the input of Stashplane's composition function: the
// class of protection a Composition offers.
// +kubebuilder:object:generate=true
// +groupName=render.fn.stashplane.io
// +versionName=v1alpha1
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProtectionClass is the input of a Composition of Protections: what
// every Protection it composes shares. The Protection itself names the
// workload, its paths, the storage and the password Secret; the class adds
// the schedules, the retention and what becomes of the data when the
// Protection is deleted (docs/crossplane.md).
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:resource:categories=crossplane
type ProtectionClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Class `json:",inline"`
}

// Class is how a workload is protected: when it is backed up and
// verified, which backups are kept, and what becomes of them.
type Class struct {
	// BackupSchedule is the cron schedule of the backups, unless a
	// Protection names a schedule of its own.
	// +kubebuilder:validation:MinLength=1
	BackupSchedule string `json:"backupSchedule"`

	// VerifySchedule is the cron schedule on which the newest backup is
	// restored into a scratch claim and verified. Empty composes no
	// verifier.
	// +optional
	VerifySchedule string `json:"verifySchedule,omitempty"`

	// RetentionPolicy decides which backups are kept; none keeps every
	// backup.
	// +optional
	RetentionPolicy *Reference `json:"retentionPolicy,omitempty"`

	// DeletionPolicy says what becomes of the backups when what composed
	// them is deleted: Retain keeps the Repository and its data, Delete
	// removes the Repository but keeps the data in the storage, WipeOut
	// removes the data too.
	// +kubebuilder:validation:Enum=Delete;WipeOut;Retain
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy string `json:"deletionPolicy,omitempty"`
}

// Protect is the input of a protect step in any Composition: it backs up
// and verifies workloads that the steps before it composed, so every
// composite resource of that Composition is protected without its owner
// writing anything (docs/crossplane.md, "The protect step").
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:resource:categories=crossplane
type Protect struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Class `json:",inline"`

	// Storage is the BackupStorage the backups go to; its usage policy
	// must admit the composite resource's namespace.
	Storage Reference `json:"storage"`

	// EncryptionSecret is the Secret, in the composite resource's
	// namespace, whose RESTIC_PASSWORD key encrypts the backups.
	EncryptionSecret SecretSource `json:"encryptionSecret"`

	// Workloads are the composed resources to protect.
	// +kubebuilder:validation:MinItems=1
	Workloads []Workload `json:"workloads"`
}

// SecretSource names a Secret outright or by a field of the composite
// resource.
// +kubebuilder:validation:XValidation:rule="has(self.name) != has(self.fromFieldPath)",message="set one of name and fromFieldPath"
type SecretSource struct {
	// Name of the Secret.
	// +optional
	Name string `json:"name,omitempty"`

	// FromFieldPath is the composite resource's field holding the
	// Secret's name, for example spec.backupSecretName.
	// +optional
	FromFieldPath string `json:"fromFieldPath,omitempty"`
}

// Workload is one composed workload a protect step backs up.
type Workload struct {
	// Resource is the composed resource's name in the pipeline (the name
	// an earlier step gave it), a Deployment, StatefulSet or DaemonSet
	// with a metadata.name.
	// +kubebuilder:validation:MinLength=1
	Resource string `json:"resource"`

	// Paths are the directories of its pods backed up.
	// +kubebuilder:validation:MinItems=1
	Paths []string `json:"paths"`
}

// Reference names an object, in the Protection's namespace when the
// namespace is empty.
type Reference struct {
	// Name of the object.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Namespace of the object.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}
