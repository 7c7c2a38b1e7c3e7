package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

// TestRuntimeOf shows an addon reference's jobTemplate and
// containerRuntimeSettings becoming the render context's runtime settings.
func TestRuntimeOf(t *testing.T) {
	pod := storagev1alpha1.PodRuntimeSettings{NodeSelector: map[string]string{"disk": "ssd"}, PriorityClassName: "low"}
	q := resource.MustParse
	env := []corev1.EnvVar{{Name: "RESTIC_COMPRESSION", Value: "max"}}
	cases := map[string]struct {
		reason string
		addon  *corev1alpha1.AddonInfo
		vars   []corev1.EnvVar
		want   render.Runtime
	}{
		"None": {
			reason: "An addon reference without settings gives none.",
			addon:  &corev1alpha1.AddonInfo{Name: "workload-addon"},
		},
		"JobTemplate": {
			reason: "The jobTemplate's Job settings, pod metadata, pod settings and resources are carried over.",
			addon: &corev1alpha1.AddonInfo{Name: "workload-addon", JobTemplate: &corev1alpha1.AddonJobTemplate{
				Metadata: corev1alpha1.PodTemplateMetadata{Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"n": "1"}},
				Spec: corev1alpha1.AddonPodSettings{PodRuntimeSettings: pod, Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: q("500m")},
				}},
				BackoffLimit: ptr.To[int32](0), ActiveDeadlineSeconds: ptr.To[int64](3600), TTLSecondsAfterFinished: ptr.To[int32](600),
			}},
			want: render.Runtime{
				Pod: pod, PodLabels: map[string]string{"team": "a"}, PodAnnotations: map[string]string{"n": "1"},
				Container: storagev1alpha1.ContainerRuntimeSettings{Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("500m")}}},
				Job:       render.JobSettings{BackoffLimit: ptr.To[int32](0), ActiveDeadlineSeconds: ptr.To[int64](3600), TTLSecondsAfterFinished: ptr.To[int32](600)},
			},
		},
		"ContainerSettingsWin": {
			reason: "containerRuntimeSettings' resources win over the jobTemplate's key by key; its env and security context are kept.",
			addon: &corev1alpha1.AddonInfo{
				Name: "workload-addon",
				JobTemplate: &corev1alpha1.AddonJobTemplate{Spec: corev1alpha1.AddonPodSettings{Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: q("500m"), corev1.ResourceMemory: q("128Mi")},
				}}},
				ContainerRuntimeSettings: &storagev1alpha1.ContainerRuntimeSettings{
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: q("1Gi")}, Limits: corev1.ResourceList{corev1.ResourceMemory: q("2Gi")}},
					Env:       env, SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)},
				},
			},
			want: render.Runtime{Container: storagev1alpha1.ContainerRuntimeSettings{
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: q("500m"), corev1.ResourceMemory: q("1Gi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: q("2Gi")},
				},
				Env: env, SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)},
			}},
		},
		"VariablesFromSecrets": {
			reason: "A task variable taken from a Secret or ConfigMap becomes the containers' env, winning over containerRuntimeSettings' of its name; a literal one stays out of the env.",
			addon: &corev1alpha1.AddonInfo{Name: "workload-addon", ContainerRuntimeSettings: &storagev1alpha1.ContainerRuntimeSettings{
				Env: []corev1.EnvVar{{Name: "RESTIC_PACK_SIZE", Value: "16"}, {Name: "RESTIC_COMPRESSION", Value: "max"}},
			}},
			vars: []corev1.EnvVar{
				{Name: "RESTIC_PACK_SIZE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "tuning"}, Key: "packSize"}}},
				{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "api"}, Key: "token"}}},
				{Name: "MODE", Value: "fast"},
			},
			want: render.Runtime{Container: storagev1alpha1.ContainerRuntimeSettings{Env: []corev1.EnvVar{
				{Name: "RESTIC_COMPRESSION", Value: "max"},
				{Name: "RESTIC_PACK_SIZE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "tuning"}, Key: "packSize"}}},
				{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "api"}, Key: "token"}}},
			}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, runtimeOf(tc.addon, tc.vars)); diff != "" {
				t.Errorf("%s\nruntimeOf(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
