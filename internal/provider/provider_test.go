package provider

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCacheTransform(t *testing.T) {
	managed := []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	cases := map[string]struct {
		reason string
		in     metav1.Object
		want   metav1.ObjectMeta
	}{
		"KubectlApplied": {
			reason: "A Secret's metadata applied with kubectl loses the annotation that copies its data, and its managed fields; its other annotations stay.",
			in: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "creds", ManagedFields: managed, Annotations: map[string]string{
				corev1.LastAppliedConfigAnnotation: `{"data":{"password":"c2VjcmV0"}}`, "team": "a"}}},
			want: metav1.ObjectMeta{Name: "creds", Annotations: map[string]string{"team": "a"}},
		},
		"NoAnnotations": {
			reason: "An object without annotations keeps none.",
			in:     &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", ManagedFields: managed}},
			want:   metav1.ObjectMeta{Name: "creds"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := cacheTransform()(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got := out.(metav1.Object)
			if diff := cmp.Diff(tc.want, metav1.ObjectMeta{Name: got.GetName(), Annotations: got.GetAnnotations(), ManagedFields: got.GetManagedFields()}); diff != "" {
				t.Errorf("%s\nmetadata (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
