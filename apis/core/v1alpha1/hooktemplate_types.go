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
	"k8s.io/apimachinery/pkg/util/intstr"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// HTTPPostAction sends an HTTP POST request.
type HTTPPostAction struct {
	// Path of the request.
	// +optional
	Path string `json:"path,omitempty"`

	// Port to send the request to, by number or by name.
	// +kubebuilder:validation:Required
	Port intstr.IntOrString `json:"port"`

	// Host to send the request to; empty means the pod's IP.
	// +optional
	Host string `json:"host,omitempty"`

	// Scheme of the request, HTTP or HTTPS.
	// +kubebuilder:validation:Enum=HTTP;HTTPS
	// +optional
	Scheme corev1.URIScheme `json:"scheme,omitempty"`

	// HTTPHeaders sent with the request.
	// +optional
	HTTPHeaders []corev1.HTTPHeader `json:"httpHeaders,omitempty"`

	// Body of the request.
	// +optional
	Body string `json:"body,omitempty"`

	// Form sends the request as a form with these entries.
	// +optional
	Form []FormEntry `json:"form,omitempty"`
}

// FormEntry is one entry of a form.
type FormEntry struct {
	// Key of the entry.
	// +kubebuilder:validation:Required
	Key string `json:"key"`

	// Values of the entry.
	// +optional
	Values []string `json:"values,omitempty"`
}

// HookAction is what a hook does. Exactly one action is set.
// +kubebuilder:validation:ExactlyOneOf=exec;httpGet;httpPost;tcpSocket
type HookAction struct {
	// Exec runs a command in a container.
	// +optional
	Exec *corev1.ExecAction `json:"exec,omitempty"`

	// HTTPGet sends an HTTP GET request.
	// +optional
	HTTPGet *corev1.HTTPGetAction `json:"httpGet,omitempty"`

	// HTTPPost sends an HTTP POST request.
	// +optional
	HTTPPost *HTTPPostAction `json:"httpPost,omitempty"`

	// TCPSocket opens a TCP connection.
	// +optional
	TCPSocket *corev1.TCPSocketAction `json:"tcpSocket,omitempty"`

	// ContainerName is the container Exec runs in; empty means the first.
	// +optional
	ContainerName string `json:"containerName,omitempty"`
}

// HookExecutorType says where a hook runs.
// +kubebuilder:validation:Enum=Function;Pod;Operator
type HookExecutorType string

// Hook executor types.
const (
	// HookExecutorFunction runs the hook in a Job rendered from a Function.
	HookExecutorFunction HookExecutorType = "Function"
	// HookExecutorPod runs the hook in pods of the target.
	HookExecutorPod HookExecutorType = "Pod"
	// HookExecutorOperator runs the hook from the Stashplane controller.
	HookExecutorOperator HookExecutorType = "Operator"
)

// PodHookExecutionStrategy says which of the selected pods a hook runs in.
// +kubebuilder:validation:Enum=ExecuteOnOne;ExecuteOnAll
type PodHookExecutionStrategy string

// Pod hook execution strategies.
const (
	ExecuteOnOne PodHookExecutionStrategy = "ExecuteOnOne"
	ExecuteOnAll PodHookExecutionStrategy = "ExecuteOnAll"
)

// FunctionHookExecutorSpec runs a hook in a Job rendered from a Function.
type FunctionHookExecutorSpec struct {
	// Name of the Function.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Env of the hook's container.
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// VolumeMounts of the hook's container.
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`

	// Volumes of the hook's Job.
	// +optional
	Volumes []corev1.Volume `json:"volumes,omitempty"`
}

// PodHookExecutorSpec runs a hook in pods of the target.
type PodHookExecutorSpec struct {
	// Selector of the pods, as a label selector string; empty means the
	// target's pods.
	// +optional
	Selector string `json:"selector,omitempty"`

	// Owner keeps only the selected pods that this object owns directly:
	// its kind and name must match one of a pod's owner references (its
	// uid too, when given; the apiVersion's group, when given).
	// +optional
	Owner *metav1.OwnerReference `json:"owner,omitempty"`

	// Strategy says whether the hook runs in one of the pods or in all.
	// +kubebuilder:default=ExecuteOnOne
	// +optional
	Strategy PodHookExecutionStrategy `json:"strategy,omitempty"`
}

// HookExecutor says where a hook runs.
// +kubebuilder:validation:XValidation:rule="self.type != 'Function' || has(self.function)",message="function is required when type is Function"
type HookExecutor struct {
	// Type of executor.
	// +kubebuilder:validation:Required
	Type HookExecutorType `json:"type"`

	// Function runs the hook in a Job rendered from a Function.
	// +optional
	Function *FunctionHookExecutorSpec `json:"function,omitempty"`

	// Pod runs the hook in pods of the target.
	// +optional
	Pod *PodHookExecutorSpec `json:"pod,omitempty"`
}

// HookTemplateSpec is the desired state of a HookTemplate.
type HookTemplateSpec struct {
	// UsagePolicy limits which namespaces may use this HookTemplate.
	// +optional
	UsagePolicy *storagev1alpha1.UsagePolicy `json:"usagePolicy,omitempty"`

	// Params the hook takes, given values by each HookInfo.
	// +optional
	// +listType=map
	// +listMapKey=name
	Params []addonsv1alpha1.ParameterDefinition `json:"params,omitempty"`

	// Action the hook takes.
	// +optional
	Action *HookAction `json:"action,omitempty"`

	// Executor says where the hook runs.
	// +kubebuilder:validation:Required
	Executor HookExecutor `json:"executor"`
}

// A HookTemplate is a reusable action run before or after a backup or a
// restore. It has no status.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,categories=stashplane,shortName=ht
// +kubebuilder:printcolumn:name="Executor",type=string,JSONPath=`.spec.executor.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type HookTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec HookTemplateSpec `json:"spec"`
}

// HookTemplateList is a list of HookTemplates.
// +kubebuilder:object:root=true
type HookTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HookTemplate `json:"items"`
}

func init() {
	SchemeBuilder.Register(&HookTemplate{}, &HookTemplateList{})
}
