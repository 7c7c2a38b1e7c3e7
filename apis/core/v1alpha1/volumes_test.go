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
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestVolumeToCore(t *testing.T) {
	cases := map[string]struct {
		reason string
		in     Volume
		want   corev1.Volume
	}{
		"Empty": {
			reason: "An empty volume should give an empty Kubernetes volume.",
			want:   corev1.Volume{},
		},
		"PersistentVolumeClaim": {
			reason: "A claim volume should keep its name and claim.",
			in: Volume{
				Name: "data",
				VolumeSource: VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pvc", ReadOnly: true},
				},
			},
			want: corev1.Volume{
				Name: "data",
				VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pvc", ReadOnly: true},
				},
			},
		},
		"EveryMember": {
			reason: "Every member of the volume source should be carried over.",
			in: Volume{
				Name: "all",
				VolumeSource: VolumeSource{
					HostPath:              &corev1.HostPathVolumeSource{Path: "/var/lib"},
					EmptyDir:              &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory},
					Secret:                &corev1.SecretVolumeSource{SecretName: "s"},
					ConfigMap:             &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}},
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pvc"},
					NFS:                   &corev1.NFSVolumeSource{Server: "nfs", Path: "/export"},
					CSI:                   &corev1.CSIVolumeSource{Driver: "csi.example.com", ReadOnly: ptr.To(true)},
				},
			},
			want: corev1.Volume{
				Name: "all",
				VolumeSource: corev1.VolumeSource{
					HostPath:              &corev1.HostPathVolumeSource{Path: "/var/lib"},
					EmptyDir:              &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory},
					Secret:                &corev1.SecretVolumeSource{SecretName: "s"},
					ConfigMap:             &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}},
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pvc"},
					NFS:                   &corev1.NFSVolumeSource{Server: "nfs", Path: "/export"},
					CSI:                   &corev1.CSIVolumeSource{Driver: "csi.example.com", ReadOnly: ptr.To(true)},
				},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := tc.in.ToCore()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\nToCore(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestVolumeToCoreDoesNotAlias(t *testing.T) {
	in := Volume{Name: "data", VolumeSource: VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/a"}}}
	got := in.ToCore()
	got.HostPath.Path = "/b"
	if diff := cmp.Diff("/a", in.HostPath.Path); diff != "" {
		t.Errorf("changing the result of ToCore() changed its input: -want +got:\n%s", diff)
	}
}
