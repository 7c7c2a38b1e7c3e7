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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// BackupConfigurationTemplate is the part of a BackupConfiguration a
// blueprint fills in. Its strings may use variables that are replaced with
// values from the annotations of the workload the blueprint is applied to.
type BackupConfigurationTemplate struct {
	// Backends of the configuration.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	// +listType=map
	// +listMapKey=name
	Backends []BackendReference `json:"backends,omitempty"`

	// Sessions of the configuration.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	// +listType=map
	// +listMapKey=name
	Sessions []Session `json:"sessions,omitempty"`
}

// BackupBlueprintSpec is the desired state of a BackupBlueprint. Blueprints
// are not carried out yet, so every BackupBlueprint is refused at admission
// rather than accepted and left without effect.
// +kubebuilder:validation:XValidation:rule="false",message="BackupBlueprint is not built yet: no BackupConfiguration would be made from it; write a BackupConfiguration for the workload instead"
type BackupBlueprintSpec struct {
	// UsagePolicy limits which namespaces' workloads may use this blueprint.
	// +optional
	UsagePolicy *storagev1alpha1.UsagePolicy `json:"usagePolicy,omitempty"`

	// BackupConfigurationTemplate is the configuration made for each
	// workload.
	// +kubebuilder:validation:Required
	BackupConfigurationTemplate BackupConfigurationTemplate `json:"backupConfigurationTemplate"`
}

// A BackupBlueprint is a template of a BackupConfiguration. Annotating a
// workload with a blueprint's name makes a BackupConfiguration for it. It
// has no status.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,categories=stashplane,shortName=bb
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupBlueprint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec BackupBlueprintSpec `json:"spec"`
}

// BackupBlueprintList is a list of BackupBlueprints.
// +kubebuilder:object:root=true
type BackupBlueprintList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupBlueprint `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BackupBlueprint{}, &BackupBlueprintList{})
}
