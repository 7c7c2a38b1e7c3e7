package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

// TestRuntimeOf shows an addon reference's jobTemplate and
// containerRuntimeSettings becoming the render context's runtime settings.
func TestRuntimeOf(t *testing.T) {
	pod := storagev1alpha1.PodRuntimeSettings{NodeSelector: map[string]string{"disk": "ssd"}, PriorityClassName: "low"}
	ctr := storagev1alpha1.ContainerRuntimeSettings{Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
	}}
	cases := map[string]struct {
		reason string
		addon  *corev1alpha1.AddonInfo
		want   render.Runtime
	}{
		"None": {
			reason: "An addon reference without settings gives none.",
			addon:  &corev1alpha1.AddonInfo{Name: "workload-addon"},
		},
		"Both": {
			reason: "The jobTemplate's metadata and spec and the container settings are carried over.",
			addon: &corev1alpha1.AddonInfo{
				Name: "workload-addon",
				JobTemplate: &corev1alpha1.PodTemplate{
					Metadata: corev1alpha1.PodTemplateMetadata{Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"n": "1"}},
					Spec:     pod,
				},
				ContainerRuntimeSettings: &ctr,
			},
			want: render.Runtime{Pod: pod, PodLabels: map[string]string{"team": "a"}, PodAnnotations: map[string]string{"n": "1"}, Container: ctr},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, runtimeOf(tc.addon)); diff != "" {
				t.Errorf("%s\nruntimeOf(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
