package render

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// TestApplyRuntime shows each runtime setting of an addon reference
// (jobTemplate and containerRuntimeSettings) reaching a rendered pod.
func TestApplyRuntime(t *testing.T) {
	toleration := corev1.Toleration{Key: "backup", Operator: corev1.TolerationOpExists}
	rendered := func() corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
			Spec: corev1.PodSpec{
				ServiceAccountName: "agent",
				InitContainers:     []corev1.Container{{Name: "init"}},
				Containers: []corev1.Container{{
					Name: "agent",
					Env:  []corev1.EnvVar{{Name: "KEEP", Value: "1"}, {Name: "LEVEL", Value: "info"}},
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
					},
				}},
			},
		}
	}
	cases := map[string]struct {
		reason string
		rt     Runtime
		want   func(*corev1.PodTemplateSpec)
	}{
		"None": {
			reason: "Without runtime settings the rendered pod is unchanged.",
			want:   func(*corev1.PodTemplateSpec) {},
		},
		"Pod": {
			reason: "Pod metadata and pod settings reach the pod; the user's values win.",
			rt: Runtime{
				PodLabels:      map[string]string{"team": "payments"},
				PodAnnotations: map[string]string{"cost-center": "42"},
				Pod: storagev1alpha1.PodRuntimeSettings{
					NodeSelector: map[string]string{"disk": "ssd"}, ServiceAccountName: "own",
					Tolerations: []corev1.Toleration{toleration}, PriorityClassName: "low",
					ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}},
					SecurityContext:  &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000)},
				},
			},
			want: func(p *corev1.PodTemplateSpec) {
				p.Labels["team"] = "payments"
				p.Annotations = map[string]string{"cost-center": "42"}
				p.Spec.NodeSelector = map[string]string{"disk": "ssd"}
				p.Spec.ServiceAccountName = "own"
				p.Spec.Tolerations = []corev1.Toleration{toleration}
				p.Spec.PriorityClassName = "low"
				p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "registry"}}
				p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000)}
			},
		},
		"PodLabels": {
			reason: "The pod settings' podLabels and podAnnotations, as KubeStash writes them, reach the pod; the jobTemplate's metadata wins over them.",
			rt: Runtime{
				PodLabels: map[string]string{"team": "payments"},
				Pod:       storagev1alpha1.PodRuntimeSettings{PodLabels: map[string]string{"team": "other", "tier": "backup"}, PodAnnotations: map[string]string{"a": "1"}},
			},
			want: func(p *corev1.PodTemplateSpec) {
				p.Labels["team"] = "payments"
				p.Labels["tier"] = "backup"
				p.Annotations = map[string]string{"a": "1"}
			},
		},
		"Container": {
			reason: "Container settings reach every container, init containers too: resources by key, env by name.",
			rt: Runtime{Container: storagev1alpha1.ContainerRuntimeSettings{
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
				},
				Env:             []corev1.EnvVar{{Name: "LEVEL", Value: "debug"}},
				SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)},
			}},
			want: func(p *corev1.PodTemplateSpec) {
				for _, c := range []*corev1.Container{&p.Spec.InitContainers[0], &p.Spec.Containers[0]} {
					if c.Resources.Requests == nil {
						c.Resources.Requests = corev1.ResourceList{}
					}
					c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("256Mi")
					c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
					c.SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)}
				}
				p.Spec.InitContainers[0].Env = []corev1.EnvVar{{Name: "LEVEL", Value: "debug"}}
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "KEEP", Value: "1"}, {Name: "LEVEL", Value: "debug"}}
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			want := rendered()
			tc.want(&want)
			got := rendered()
			applyRuntime(&got, tc.rt)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s\napplyRuntime(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestApplyJob shows the Job settings of an addon's jobTemplate winning
// over what the Function rendered, and leaving the rest as rendered.
func TestApplyJob(t *testing.T) {
	rendered := func() batchv1.JobSpec { return batchv1.JobSpec{BackoffLimit: ptr.To[int32](2)} }
	cases := map[string]struct {
		reason string
		job    JobSettings
		want   batchv1.JobSpec
	}{
		"None": {reason: "Without settings the Job keeps the Function's values.", want: rendered()},
		"All": {
			reason: "backoffLimit, activeDeadlineSeconds and ttlSecondsAfterFinished are set; a zero backoffLimit too.",
			job:    JobSettings{BackoffLimit: ptr.To[int32](0), ActiveDeadlineSeconds: ptr.To[int64](3600), TTLSecondsAfterFinished: ptr.To[int32](600)},
			want:   batchv1.JobSpec{BackoffLimit: ptr.To[int32](0), ActiveDeadlineSeconds: ptr.To[int64](3600), TTLSecondsAfterFinished: ptr.To[int32](600)},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := rendered()
			applyJob(&got, tc.job)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\napplyJob(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
