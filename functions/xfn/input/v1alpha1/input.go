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

// Package v1alpha1 is the input of Stashplane's composition function: which
// Addon task to render for the composite resource.
// +kubebuilder:object:generate=true
// +groupName=render.fn.stashplane.io
// +versionName=v1alpha1
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Input tells the function which task of which Addon renders the composite
// resource's Jobs. The composite resource's spec supplies the context:
// target, storage, repository and params (see docs/addons.md).
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:resource:categories=crossplane
type Input struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Addon whose task is rendered; a built-in Addon such as
	// workload-addon or pvc-addon.
	// +kubebuilder:validation:MinLength=1
	Addon string `json:"addon"`

	// Task of the Addon to render.
	// +kubebuilder:validation:MinLength=1
	Task string `json:"task"`

	// TaskKind is the list the task is in.
	// +kubebuilder:validation:Enum=backup;restore;verification
	// +kubebuilder:default=backup
	// +optional
	TaskKind string `json:"taskKind,omitempty"`

	// Image is the stashplane image the Jobs run; the function's own
	// version if empty.
	// +optional
	Image string `json:"image,omitempty"`
}
