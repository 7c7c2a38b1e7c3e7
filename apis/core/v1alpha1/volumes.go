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
)

// VolumeSource is the source of a volume Stashplane mounts into the pods it
// runs. It holds the volume kinds that make sense for backup, restore and
// verification work, with the same field names as a Kubernetes volume.
// Exactly one member is set.
// +kubebuilder:validation:ExactlyOneOf=hostPath;emptyDir;secret;configMap;persistentVolumeClaim;nfs;csi
type VolumeSource struct {
	// HostPath is a directory on the node.
	// +optional
	HostPath *corev1.HostPathVolumeSource `json:"hostPath,omitempty"`

	// EmptyDir is a scratch directory that lives as long as the pod.
	// +optional
	EmptyDir *corev1.EmptyDirVolumeSource `json:"emptyDir,omitempty"`

	// Secret mounts the keys of a Secret as files.
	// +optional
	Secret *corev1.SecretVolumeSource `json:"secret,omitempty"`

	// ConfigMap mounts the keys of a ConfigMap as files.
	// +optional
	ConfigMap *corev1.ConfigMapVolumeSource `json:"configMap,omitempty"`

	// PersistentVolumeClaim mounts an existing claim.
	// +optional
	PersistentVolumeClaim *corev1.PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim,omitempty"`

	// NFS mounts an NFS export.
	// +optional
	NFS *corev1.NFSVolumeSource `json:"nfs,omitempty"`

	// CSI mounts a volume from an inline CSI driver.
	// +optional
	CSI *corev1.CSIVolumeSource `json:"csi,omitempty"`
}

// Volume is a named VolumeSource.
type Volume struct {
	// Name of the volume, referred to by volume mounts.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	VolumeSource `json:",inline"`
}

// ToCore returns the Kubernetes form of the volume source.
func (in VolumeSource) ToCore() corev1.VolumeSource {
	in = *in.DeepCopy()
	return corev1.VolumeSource{
		HostPath:              in.HostPath,
		EmptyDir:              in.EmptyDir,
		Secret:                in.Secret,
		ConfigMap:             in.ConfigMap,
		PersistentVolumeClaim: in.PersistentVolumeClaim,
		NFS:                   in.NFS,
		CSI:                   in.CSI,
	}
}

// ToCore returns the Kubernetes form of the volume.
func (in Volume) ToCore() corev1.Volume {
	return corev1.Volume{Name: in.Name, VolumeSource: in.VolumeSource.ToCore()}
}
