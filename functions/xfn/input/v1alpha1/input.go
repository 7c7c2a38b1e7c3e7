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

// ProtectionClass is a Composition step's input: what every Protection
// composed by that Composition shares. The Protection itself names the
// workload, its paths, the storage and the password Secret; the class
// adds the schedules, the retention and what becomes of the data when the
// Protection is deleted (docs/crossplane.md).
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:resource:categories=crossplane
type ProtectionClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// BackupSchedule is the cron schedule of the backups of a Protection
	// that names no schedule of its own.
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

	// DeletionPolicy says what becomes of the backups when a Protection
	// is deleted: Retain keeps the Repository and its data, Delete
	// removes the Repository but keeps the data in the storage, WipeOut
	// removes the data too.
	// +kubebuilder:validation:Enum=Delete;WipeOut;Retain
	// +kubebuilder:default=Retain
	// +optional
	DeletionPolicy string `json:"deletionPolicy,omitempty"`
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
