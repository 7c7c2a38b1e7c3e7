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
)

// MaxTemplateLength bounds the size of a Function's CUE template, so that
// evaluating it stays cheap.
const MaxTemplateLength = 256 * 1024

// Variables a Function's template may read. Each is filled in by the
// controller that renders the template; those that do not apply to the
// current step are empty.
const (
	VarNamespace                 = "namespace"
	VarBackupSession             = "backupSession"
	VarRestoreSession            = "restoreSession"
	VarBackupVerificationSession = "backupVerificationSession"
	VarSnapshot                  = "snapshot"
	VarTarget                    = "target"
	VarRepository                = "repository"
	VarEnableCache               = "enableCache"
	VarInterimDataDir            = "interimDataDir"
	VarInvokerKind               = "invokerKind"
	VarInvokerName               = "invokerName"
)

// FunctionSpec is the desired state of a Function.
//
// Stashplane deviates here from the image/command/args form with shell-style
// variable substitution: a Function is a CUE template that renders the Job
// or Jobs of one step, with the same variables available.
type FunctionSpec struct {
	// Template is the CUE source that renders the step's Jobs.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	Template string `json:"template"`

	// Description of what the Function does.
	// +optional
	Description string `json:"description,omitempty"`

	// Image the template uses when it does not choose one.
	// +optional
	Image string `json:"image,omitempty"`
}

// Function condition types.
const (
	// TypeTemplateValid is True when the template compiles and validates
	// against Stashplane's Function schema, False with the CUE error when it
	// does not. Set and cleared by the Function controller.
	TypeTemplateValid xpv2.ConditionType = "TemplateValid"
)

// Function condition reasons.
const (
	// ReasonTemplateCompiled: the template compiled and validated.
	ReasonTemplateCompiled xpv2.ConditionReason = "TemplateCompiled"
	// ReasonTemplateInvalid: the template did not compile or validate.
	ReasonTemplateInvalid xpv2.ConditionReason = "TemplateInvalid"
)

// FunctionStatus is the observed state of a Function.
type FunctionStatus struct {
	xpv2.ConditionedStatus `json:",inline"`

	// ObservedGeneration is the generation of the spec the conditions
	// describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// A Function is a CUE template that renders the Jobs of one step of a
// backup, restore, verification or hook.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=stashplane
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=='TemplateValid')].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Function struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec   FunctionSpec   `json:"spec"`
	Status FunctionStatus `json:"status,omitempty"`
}

// FunctionList is a list of Functions.
// +kubebuilder:object:root=true
type FunctionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Function `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Function{}, &FunctionList{})
}
