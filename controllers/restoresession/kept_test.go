package restoresession

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

func TestKeptObjects(t *testing.T) {
	outcome := func(kind, name string, r corev1alpha1.ResourceResult) corev1alpha1.ResourceOutcome {
		return corev1alpha1.ResourceOutcome{Kind: kind, Name: name, Result: r}
	}
	cases := map[string]struct {
		reason string
		objs   []corev1alpha1.ResourceOutcome
		want   string
	}{
		"NoneKept": {reason: "All made: no condition.", objs: []corev1alpha1.ResourceOutcome{outcome("ConfigMap", "a", corev1alpha1.ResourceCreated)}},
		"SomeKept": {reason: "The kept objects are counted and named.",
			objs: []corev1alpha1.ResourceOutcome{outcome("ConfigMap", "a", corev1alpha1.ResourceKept), outcome("Secret", "b", corev1alpha1.ResourceCreated), outcome("Service", "c", corev1alpha1.ResourceKept)},
			want: `2 objects of the snapshot existed in namespace "shop" and were kept as they are, not replaced: ConfigMap a, Service c; the task's overwriteResources parameter replaces them`},
		"ManyKept": {reason: "Five are named, the rest counted.",
			objs: []corev1alpha1.ResourceOutcome{outcome("ConfigMap", "a", corev1alpha1.ResourceKept), outcome("ConfigMap", "b", corev1alpha1.ResourceKept),
				outcome("ConfigMap", "c", corev1alpha1.ResourceKept), outcome("ConfigMap", "d", corev1alpha1.ResourceKept), outcome("ConfigMap", "e", corev1alpha1.ResourceKept),
				outcome("ConfigMap", "f", corev1alpha1.ResourceKept), outcome("ConfigMap", "g", corev1alpha1.ResourceKept)},
			want: `7 objects of the snapshot existed in namespace "shop" and were kept as they are, not replaced: ConfigMap a, ConfigMap b, ConfigMap c, ConfigMap d, ConfigMap e, and 2 more (status.components.*.resources); the task's overwriteResources parameter replaces them`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rs := &corev1alpha1.RestoreSession{}
			rs.Namespace = "shop"
			rs.Status.Components = map[string]corev1alpha1.ComponentRestoreStatus{"manifest": {Phase: corev1alpha1.RestoreSucceeded, Resources: tc.objs}}
			if diff := cmp.Diff(tc.want, keptObjects(rs)); diff != "" {
				t.Errorf("%s\nkeptObjects: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
