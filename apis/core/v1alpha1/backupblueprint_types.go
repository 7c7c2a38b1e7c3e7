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

// Annotations and labels of blueprints. A workload asks for a blueprint by
// annotation; variables fill the blueprint's ${name} references.
const (
	// AnnotationBlueprintName names the BackupBlueprint a workload is
	// backed up by.
	AnnotationBlueprintName = "blueprint.stashplane.io/name"
	// AnnotationBlueprintNamespace is the blueprint's namespace; the
	// workload's own when absent.
	AnnotationBlueprintNamespace = "blueprint.stashplane.io/namespace"
	// AnnotationBlueprintSkip set to "true" keeps a workload out of every
	// blueprint that selects its namespace.
	AnnotationBlueprintSkip = "blueprint.stashplane.io/skip"
	// AnnotationVariablePrefix begins the annotations that give a
	// variable: variables.stashplane.io/<name>: <value>.
	AnnotationVariablePrefix = "variables.stashplane.io/"

	// LabelBlueprintName and LabelBlueprintNamespace name, on a
	// BackupConfiguration made from a blueprint, the blueprint.
	LabelBlueprintName      = "core.stashplane.io/blueprint-name"
	LabelBlueprintNamespace = "core.stashplane.io/blueprint-namespace"
)

// Variables every blueprint may use beside the annotated ones; an
// annotation of the same name does not replace them.
const (
	// VarTargetName is the workload's name.
	VarTargetName = "targetName"
	// VarTargetKind is its kind, for example Deployment.
	VarTargetKind = "targetKind"
	// VarTargetNamespace and VarNamespace are its namespace.
	VarTargetNamespace = "targetNamespace"
	VarNamespace       = "namespace"
)

// BlueprintSubjects selects workloads a blueprint protects without their
// being annotated: those of the listed kinds in every namespace the
// selector picks (and the blueprint's usagePolicy admits). A workload
// annotated with a blueprint of its own, or with
// blueprint.stashplane.io/skip: "true", is left out.
type BlueprintSubjects struct {
	// NamespaceSelector picks the namespaces by their labels.
	// +kubebuilder:validation:Required
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`

	// Kinds of the workloads protected: Deployment, StatefulSet,
	// DaemonSet, PersistentVolumeClaim. All four when empty.
	// +kubebuilder:validation:MaxItems=4
	// +listType=set
	// +optional
	Kinds []BlueprintKind `json:"kinds,omitempty"`
}

// BlueprintKind is a kind of workload a blueprint protects.
// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet;PersistentVolumeClaim
type BlueprintKind string

// BackupBlueprintSpec is the desired state of a BackupBlueprint.
type BackupBlueprintSpec struct {
	// UsagePolicy limits which namespaces' workloads may use this blueprint.
	// +optional
	UsagePolicy *storagev1alpha1.UsagePolicy `json:"usagePolicy,omitempty"`

	// Subjects protects the workloads of the namespaces it selects without
	// annotations.
	// +optional
	Subjects *BlueprintSubjects `json:"subjects,omitempty"`

	// BackupConfigurationTemplate is the configuration made for each
	// workload.
	// +kubebuilder:validation:Required
	BackupConfigurationTemplate BackupConfigurationTemplate `json:"backupConfigurationTemplate"`

	// VerifierTemplate is the BackupVerifier made beside each workload's
	// configuration, with the same name, labels, owner and variables; the
	// configuration's repositories that name no backupVerifier are
	// verified by it. Without it, no verifier is made: a repository that
	// names one names a verifier that exists in the workload's namespace.
	// +optional
	VerifierTemplate *BackupVerifierSpec `json:"verifierTemplate,omitempty"`
}

// BlueprintFailure is a workload a blueprint should protect and does not.
type BlueprintFailure struct {
	// Kind, Namespace and Name of the workload.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Reason it is not protected, for example an unfilled variable.
	Reason string `json:"reason"`
}

// BackupBlueprint condition types.
const (
	// TypeWorkloadsProtected is True when every workload that asks for the
	// blueprint, or that it selects, has its BackupConfiguration; False
	// naming the first that has not.
	TypeWorkloadsProtected xpv2.ConditionType = "WorkloadsProtected"
)

// BackupBlueprint condition reasons.
const (
	ReasonAllProtected    xpv2.ConditionReason = "AllProtected"
	ReasonSomeUnprotected xpv2.ConditionReason = "SomeUnprotected"
)

// BackupBlueprintStatus is the observed state of a BackupBlueprint.
type BackupBlueprintStatus struct {
	xpv2.ConditionedStatus `json:",inline"`

	// Protected is how many workloads have their BackupConfiguration made
	// from this blueprint.
	// +optional
	Protected int32 `json:"protected"`

	// Failures are the workloads it should protect and does not, with why
	// (at most 50).
	// +optional
	Failures []BlueprintFailure `json:"failures,omitempty"`
}

// A BackupBlueprint is a template of a BackupConfiguration. Annotating a
// workload with a blueprint's name, or creating it in a namespace the
// blueprint's subjects select, makes a BackupConfiguration for it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=stashplane,shortName=bb
// +kubebuilder:printcolumn:name="Protected",type=integer,JSONPath=`.status.protected`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=='WorkloadsProtected')].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupBlueprint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec   BackupBlueprintSpec   `json:"spec"`
	Status BackupBlueprintStatus `json:"status,omitempty"`
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
