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
	"k8s.io/apimachinery/pkg/runtime"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// AddonInfo chooses the Addon, and the tasks of it, that do the work of a
// backup, restore or verification.
type AddonInfo struct {
	// Name of the Addon.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Tasks of the Addon to run, in order.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	Tasks []TaskReference `json:"tasks"`

	// JobTemplate tunes the Jobs that run the tasks and their pods; what
	// it sets wins over what the task's Function rendered.
	// +optional
	JobTemplate *AddonJobTemplate `json:"jobTemplate,omitempty"`

	// ContainerRuntimeSettings tune the containers that run the tasks.
	// +optional
	ContainerRuntimeSettings *storagev1alpha1.ContainerRuntimeSettings `json:"containerRuntimeSettings,omitempty"`
}

// ServiceAccount is the ServiceAccount the jobTemplate runs the addon's
// Jobs as, or "" when it names none (they run as the one Stashplane
// makes).
func (a *AddonInfo) ServiceAccount() string {
	if a == nil || a.JobTemplate == nil {
		return ""
	}
	return a.JobTemplate.Spec.ServiceAccountName
}

// AddonJobTemplate tunes the Jobs an addon's tasks render: the Jobs' retry,
// deadline and clean-up, and their pods' metadata and settings.
type AddonJobTemplate struct {
	// Metadata added to the Jobs' pods.
	// +optional
	Metadata PodTemplateMetadata `json:"metadata,omitempty"`

	// Spec holds the pods' settings and their containers' resources.
	// +optional
	Spec AddonPodSettings `json:"spec,omitempty"`

	// BackoffLimit is the number of retries of each Job's pod.
	// +kubebuilder:validation:Minimum=0
	// +optional
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`

	// ActiveDeadlineSeconds bounds how long each Job may run; a Job that
	// reaches it fails, and with it the session.
	// +kubebuilder:validation:Minimum=1
	// +optional
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`

	// TTLSecondsAfterFinished is how long a finished Job is kept. At least
	// 300: a session reads its Jobs until it ends.
	// +kubebuilder:validation:Minimum=300
	// +optional
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// AddonPodSettings are the pod-level settings of an addon's Jobs, with
// the resources of their containers, as KubeStash's jobTemplate.spec
// carries them.
type AddonPodSettings struct {
	storagev1alpha1.PodRuntimeSettings `json:",inline"`

	// Resources of every container of the Jobs; containerRuntimeSettings'
	// resources win, key by key.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
}

// TaskReference names one task of an Addon and gives it its inputs.
// +kubebuilder:validation:XValidation:rule="!has(self.addonVolumes) || size(self.addonVolumes) == 0",message="addonVolumes is not carried out: no built-in task declares a volume template to fill; remove the field"
// +kubebuilder:validation:XValidation:rule="!has(self.variables) || self.variables.all(v, !has(v.valueFrom) || has(v.valueFrom.secretKeyRef) || has(v.valueFrom.configMapKeyRef))",message="variables[].valueFrom: only secretKeyRef and configMapKeyRef are carried out (fieldRef and resourceFieldRef would describe the task's own pod, not the target); give a value or name a key of a Secret or ConfigMap"
// +kubebuilder:validation:XValidation:rule="!has(self.variables) || self.variables.all(v, !has(v.valueFrom) || !v.name.startsWith('RESTIC_') || v.name in ['RESTIC_COMPRESSION', 'RESTIC_PACK_SIZE', 'RESTIC_READ_CONCURRENCY'])",message="variables[].valueFrom: a variable taken from a Secret or ConfigMap becomes the task's environment; of the RESTIC_* names only RESTIC_COMPRESSION, RESTIC_PACK_SIZE and RESTIC_READ_CONCURRENCY are accepted, the agent sets restic's repository, password and cache itself"
// +kubebuilder:validation:XValidation:rule="!has(self.variables) || self.variables.all(v, !has(v.valueFrom) || (!(v.name in ['KUBECONFIG', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'XDG_CACHE_HOME', 'PATH', 'HOME']) && !v.name.startsWith('STASHPLANE_') && !v.name.startsWith('AWS_') && !v.name.startsWith('AZURE_') && !v.name.startsWith('GOOGLE_')))",message="variables[].valueFrom: a variable taken from a Secret or ConfigMap becomes the task's environment, and names that redirect the agent (KUBECONFIG, proxies, CA bundles, XDG_CACHE_HOME, PATH, HOME, AWS_*, AZURE_*, GOOGLE_*, STASHPLANE_*) are refused"
type TaskReference struct {
	// Name of the task, one of the Addon's task names.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Params are the values of the task's parameters, by parameter name.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	// +optional
	Params *runtime.RawExtension `json:"params,omitempty"`

	// Variables are made available to the task by name. A literal value is
	// the template's context.variables.<name>. One taken from a Secret or
	// ConfigMap key (valueFrom, of the Job's namespace) is never rendered:
	// it is an environment variable of every container of the task's Jobs,
	// resolved by the kubelet, so the task reads it at run time.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Variables []corev1.EnvVar `json:"variables,omitempty"`

	// TargetVolumes are the volumes of the target the task reads or writes.
	// +optional
	TargetVolumes *TargetVolumeInfo `json:"targetVolumes,omitempty"`

	// AddonVolumes fill the volume templates of the Addon's task. Refused
	// when set, as volume templates are.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	// +listType=map
	// +listMapKey=name
	AddonVolumes []AddonVolumeInfo `json:"addonVolumes,omitempty"`
}

// TargetVolumeInfo are the volumes of a target that a task works on.
type TargetVolumeInfo struct {
	// Volumes of the target.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Volumes []Volume `json:"volumes,omitempty"`

	// VolumeMounts of those volumes in the task's container.
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`

	// VolumeClaimTemplates for targets that create their claims from
	// templates, such as StatefulSets. Refused when set: a StatefulSet's
	// claim templates are read from the StatefulSet itself.
	// +kubebuilder:validation:XValidation:rule="size(self) == 0",message="volumeClaimTemplates is not carried out: a StatefulSet target's claim templates are read from the StatefulSet; remove the field"
	// +optional
	VolumeClaimTemplates []corev1.PersistentVolumeClaimTemplate `json:"volumeClaimTemplates,omitempty"`
}

// AddonVolumeInfo fills one volume template of an Addon's task.
type AddonVolumeInfo struct {
	// Name of the volume template.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Source of the volume.
	// +optional
	Source *VolumeSource `json:"source,omitempty"`
}
