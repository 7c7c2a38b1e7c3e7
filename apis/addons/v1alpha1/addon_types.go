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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// TaskExecutor says what runs a task.
// +kubebuilder:validation:Enum=Job
type TaskExecutor string

// Task executors.
const (
	// TaskExecutorJob runs the task in Jobs rendered from its Function.
	TaskExecutorJob TaskExecutor = "Job"
)

// ParameterDefinition declares one parameter of a task or hook.
type ParameterDefinition struct {
	// Name of the parameter.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Usage explains what the parameter does.
	// +optional
	Usage string `json:"usage,omitempty"`

	// Required parameters must be given a value.
	// +optional
	Required bool `json:"required,omitempty"`

	// Default value of the parameter.
	// +optional
	Default string `json:"default,omitempty"`
}

// VolumeTemplate declares a volume a task needs; the user fills it through
// the addonVolumes of a task reference, or Source is used as is.
type VolumeTemplate struct {
	// Name of the volume.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Usage explains what the volume is for.
	// +optional
	Usage string `json:"usage,omitempty"`

	// Source of the volume, a Kubernetes volume source that may use the
	// Function variables in its strings.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	// +optional
	Source *runtime.RawExtension `json:"source,omitempty"`
}

// Task is one step an Addon can do, carried out by a Function. The fields
// Stashplane does not carry out are refused at admission, so that no Addon
// says more than its Jobs do (README, "Refused KubeStash features").
// +kubebuilder:validation:XValidation:rule="!has(self.driver) || self.driver == 'Restic'",message="driver: only Restic is built; the WalG and VolumeSnapshotter drivers are refused"
// +kubebuilder:validation:XValidation:rule="!has(self.singleton) || !self.singleton",message="singleton is not carried out: every task runs once per component of its target; remove the field"
// +kubebuilder:validation:XValidation:rule="!has(self.volumeTemplate) || size(self.volumeTemplate) == 0",message="volumeTemplate is not carried out: a task's Function declares the volumes its Jobs mount"
// +kubebuilder:validation:XValidation:rule="!has(self.volumeMounts) || size(self.volumeMounts) == 0",message="volumeMounts is not carried out: a task's Function declares the mounts of its Jobs"
type Task struct {
	// Name of the task, unique within its list.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Function that renders the task's Jobs.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Function string `json:"function"`

	// Driver that moves the task's data. Only Restic is built; WalG and
	// VolumeSnapshotter are refused.
	// +kubebuilder:default=Restic
	// +optional
	Driver storagev1alpha1.Driver `json:"driver,omitempty"`

	// Executor that runs the task.
	// +kubebuilder:default=Job
	// +optional
	Executor TaskExecutor `json:"executor,omitempty"`

	// Component is the one component of a Snapshot the task's Jobs store
	// or restore, whatever the target: "manifest" for a task that backs up
	// or recreates Kubernetes objects (resource manifests). Empty: the
	// target's data, one component per part of the target (dump,
	// dump-pod-<ordinal>, dump-<node>). A restore task with a component
	// restores only that component; one without restores the components
	// no other task of the addon claims.
	// +kubebuilder:validation:Enum=manifest
	// +optional
	Component string `json:"component,omitempty"`

	// Singleton is KubeStash's "run once per session rather than once per
	// target pod". Refused when true: a Stashplane task runs once per
	// component of its target.
	// +optional
	Singleton bool `json:"singleton,omitempty"`

	// Parameters the task takes.
	// +optional
	// +listType=map
	// +listMapKey=name
	Parameters []ParameterDefinition `json:"parameters,omitempty"`

	// VolumeTemplate lists the volumes the task needs. Refused when set:
	// the task's Function declares its volumes.
	// +optional
	// +listType=map
	// +listMapKey=name
	VolumeTemplate []VolumeTemplate `json:"volumeTemplate,omitempty"`

	// VolumeMounts of those volumes in the task's container. Refused when
	// set, with VolumeTemplate.
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
}

// AddonSpec is the desired state of an Addon.
type AddonSpec struct {
	// BackupTasks back up a target.
	// +optional
	// +listType=map
	// +listMapKey=name
	BackupTasks []Task `json:"backupTasks,omitempty"`

	// RestoreTasks restore a target.
	// +optional
	// +listType=map
	// +listMapKey=name
	RestoreTasks []Task `json:"restoreTasks,omitempty"`
}

// Addon condition types.
const (
	// TypeFunctionsResolved is True when every task's Function exists and
	// its template is valid, False naming the first that is not. Set and
	// cleared by the Addon controller.
	TypeFunctionsResolved xpv2.ConditionType = "FunctionsResolved"
)

// Addon condition reasons.
const (
	// ReasonFunctionsResolved: every Function exists and is valid.
	ReasonFunctionsResolved xpv2.ConditionReason = "FunctionsResolved"
	// ReasonFunctionNotFound: a task's Function does not exist.
	ReasonFunctionNotFound xpv2.ConditionReason = "FunctionNotFound"
	// ReasonFunctionInvalid: a task's Function has an invalid template.
	ReasonFunctionInvalid xpv2.ConditionReason = "FunctionInvalid"
)

// AddonStatus is the observed state of an Addon.
type AddonStatus struct {
	xpv2.ConditionedStatus `json:",inline"`

	// ObservedGeneration is the generation of the spec the conditions
	// describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// An Addon groups the Functions that back up, restore and verify one kind
// of target, for example a workload's volumes or a PVC.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=stashplane
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=='FunctionsResolved')].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Addon struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec   AddonSpec   `json:"spec,omitempty"`
	Status AddonStatus `json:"status,omitempty"`
}

// AddonList is a list of Addons.
// +kubebuilder:object:root=true
type AddonList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Addon `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Addon{}, &AddonList{})
}
