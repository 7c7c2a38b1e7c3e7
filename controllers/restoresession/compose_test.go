package restoresession

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

func TestMissingJob(t *testing.T) {
	job := func(component string) batchv1.Job {
		return batchv1.Job{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{corev1alpha1.LabelComponent: component}}}
	}
	cases := map[string]struct {
		reason     string
		components map[string]corev1alpha1.ComponentRestoreStatus
		jobs       []batchv1.Job
		want       bool
	}{
		"AllThere": {
			reason:     "Every component still restoring has its Job.",
			components: map[string]corev1alpha1.ComponentRestoreStatus{"dump": {Phase: corev1alpha1.RestoreRunning}},
			jobs:       []batchv1.Job{job("dump")},
			want:       false,
		},
		"OneMissing": {
			reason:     "A component still restoring whose Job the cache does not hold sends the read past the cache.",
			components: map[string]corev1alpha1.ComponentRestoreStatus{"dump": {Phase: corev1alpha1.RestoreRunning}, "data": {Phase: corev1alpha1.RestoreRunning}},
			jobs:       []batchv1.Job{job("dump")},
			want:       true,
		},
		"EndedNeedNoJob": {
			reason:     "A component that succeeded or failed needs no Job.",
			components: map[string]corev1alpha1.ComponentRestoreStatus{"dump": {Phase: corev1alpha1.RestoreSucceeded}, "data": {Phase: corev1alpha1.RestoreFailed}},
			want:       false,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, missingJob(tc.components, tc.jobs)); diff != "" {
				t.Errorf("%s\nmissingJob(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
