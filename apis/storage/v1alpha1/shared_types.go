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
)

// TypedObjectReference points at an object of any kind, for example the
// workload a Repository holds backups of.
type TypedObjectReference struct {
	// APIGroup of the referenced object; empty for the core group.
	// +optional
	APIGroup string `json:"apiGroup,omitempty"`

	// Kind of the referenced object.
	// +optional
	Kind string `json:"kind,omitempty"`

	// Namespace of the referenced object; empty means the namespace of the
	// object holding the reference (or a cluster-scoped object).
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Name of the referenced object.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// ObjectReference points at an object whose kind is implied by the field
// holding the reference, for example the Secret of an encryptionSecret.
type ObjectReference struct {
	// Namespace of the referenced object; empty means the namespace of the
	// object holding the reference.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Name of the referenced object.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// DeletionPolicy says what happens to the data in the backend when an object
// that mirrors it is deleted.
// +kubebuilder:validation:Enum=Delete;WipeOut
type DeletionPolicy string

// Deletion policies.
const (
	// DeletionPolicyDelete deletes the Kubernetes object and the objects that
	// depend on it, but leaves the backed-up data in the backend.
	DeletionPolicyDelete DeletionPolicy = "Delete"

	// DeletionPolicyWipeOut deletes the Kubernetes object, the objects that
	// depend on it and the backed-up data in the backend.
	DeletionPolicyWipeOut DeletionPolicy = "WipeOut"
)

// Driver is the tool that moves the data of one backup component.
// +kubebuilder:validation:Enum=Restic;WalG;VolumeSnapshotter
type Driver string

// Drivers.
const (
	// DriverRestic stores the component as a plain restic repository.
	DriverRestic Driver = "Restic"

	// DriverWalG stores the component with WAL-G.
	DriverWalG Driver = "WalG"

	// DriverVolumeSnapshotter takes a CSI VolumeSnapshot of the component.
	DriverVolumeSnapshotter Driver = "VolumeSnapshotter"
)

// FromNamespaces says which namespaces may use an object.
// +kubebuilder:validation:Enum=All;Selector;Same
type FromNamespaces string

// Namespace sources of a usage policy.
const (
	// NamespacesFromAll allows every namespace.
	NamespacesFromAll FromNamespaces = "All"

	// NamespacesFromSelector allows the namespaces matched by the selector.
	NamespacesFromSelector FromNamespaces = "Selector"

	// NamespacesFromSame allows only the namespace of the object itself.
	NamespacesFromSame FromNamespaces = "Same"
)

// UsagePolicy limits which namespaces may refer to a shared object such as a
// BackupStorage, a RetentionPolicy or a HookTemplate.
type UsagePolicy struct {
	// AllowedNamespaces are the namespaces whose objects may refer to this one.
	// +optional
	AllowedNamespaces AllowedNamespaces `json:"allowedNamespaces,omitempty"`
}

// AllowedNamespaces selects namespaces for a UsagePolicy.
// +kubebuilder:validation:XValidation:rule="!has(self.from) || self.from != 'Selector' || has(self.selector)",message="selector is required when from is Selector"
type AllowedNamespaces struct {
	// From says where the allowed namespaces come from: All namespaces,
	// the namespaces matched by Selector, or only the Same namespace.
	// +kubebuilder:default=Same
	// +optional
	From *FromNamespaces `json:"from,omitempty"`

	// Selector matches the labels of allowed namespaces when From is Selector.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// RuntimeSettings tune the pods and containers Stashplane runs on behalf of
// an object, such as backup, restore and verification jobs.
type RuntimeSettings struct {
	// Pod settings applied to every pod that is run.
	// +optional
	Pod *PodRuntimeSettings `json:"pod,omitempty"`

	// Container settings applied to every container that is run.
	// +optional
	Container *ContainerRuntimeSettings `json:"container,omitempty"`
}

// PodRuntimeSettings are the pod-level runtime settings.
type PodRuntimeSettings struct {
	// PodLabels are added to the pod's labels; Stashplane's own labels win.
	// +optional
	PodLabels map[string]string `json:"podLabels,omitempty"`

	// PodAnnotations are added to the pod's annotations.
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`

	// NodeSelector restricts the nodes the pod may run on.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// ServiceAccountName the pod runs as.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// Tolerations of the pod.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// PriorityClassName of the pod.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// ImagePullSecrets used to pull the pod's images.
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// SecurityContext of the pod.
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`
}

// ContainerRuntimeSettings are the container-level runtime settings. One
// rule holds for their env wherever they appear: of the RESTIC_* variables
// only restic's tuning ones are accepted (internal/agentapi.ResticTuningEnv,
// which the agent passes on to restic), and variables that would send the
// agent or restic elsewhere (kubeconfig, proxies, CA bundles, cloud
// credentials, Stashplane's own) are refused.
// +kubebuilder:validation:XValidation:rule="!has(self.env) || self.env.all(e, !e.name.startsWith('RESTIC_') || e.name in ['RESTIC_COMPRESSION', 'RESTIC_PACK_SIZE', 'RESTIC_READ_CONCURRENCY'])",message="env: of the RESTIC_* variables only RESTIC_COMPRESSION, RESTIC_PACK_SIZE and RESTIC_READ_CONCURRENCY are accepted; the agent sets restic's repository, password and cache itself"
// +kubebuilder:validation:XValidation:rule="!has(self.env) || self.env.all(e, !(e.name in ['KUBECONFIG', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'XDG_CACHE_HOME']) && !e.name.startsWith('STASHPLANE_') && !e.name.startsWith('AWS_') && !e.name.startsWith('AZURE_') && !e.name.startsWith('GOOGLE_'))",message="env: variables that redirect the agent (KUBECONFIG, proxies, CA bundles, XDG_CACHE_HOME, AWS_*, AZURE_*, GOOGLE_*, STASHPLANE_*) are refused; the agent reaches only the API server and the storage it is given"
type ContainerRuntimeSettings struct {
	// Resources requested by and limited for the container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// Env adds environment variables to the container.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// SecurityContext of the container.
	// +optional
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
}
