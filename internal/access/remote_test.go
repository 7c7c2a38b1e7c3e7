package access

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestSetFinalizer(t *testing.T) {
	const f = "example.io/f"
	cases := map[string]struct {
		reason  string
		stored  []string
		gone    bool
		present bool
		want    []string
		wantErr bool
	}{
		"Add":          {reason: "A missing finalizer is added, on the server and on the object.", present: true, want: []string{f}},
		"AddKept":      {reason: "A finalizer already there stays once.", stored: []string{"other", f}, present: true, want: []string{"other", f}},
		"Remove":       {reason: "Removing keeps the others.", stored: []string{"other", f}, want: []string{"other"}},
		"RemoveGone":   {reason: "Removing it from an object that is gone is no error.", stored: []string{f}, gone: true},
		"AddToGoneObj": {reason: "Adding it to an object that is gone is an error.", gone: true, present: true, wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", Finalizers: tc.stored}}
			b := fake.NewClientBuilder()
			if !tc.gone {
				b = b.WithObjects(o.DeepCopy())
			}
			kube := b.Build()
			if !tc.gone {
				if err := kube.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
					t.Fatal(err)
				}
			}
			err := SetFinalizer(context.Background(), kube, o, f, tc.present)
			if (err != nil) != tc.wantErr {
				t.Fatalf("%s\nSetFinalizer(): %v, want error %t", tc.reason, err, tc.wantErr)
			}
			if tc.gone {
				return
			}
			got := &corev1.ConfigMap{}
			if err := kube.Get(context.Background(), client.ObjectKeyFromObject(o), got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Finalizers); diff != "" {
				t.Errorf("%s\nstored finalizers: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(got.Finalizers, o.Finalizers); diff != "" {
				t.Errorf("%s\nthe object's finalizers differ from the stored ones: -stored +object:\n%s", tc.reason, diff)
			}
		})
	}
}
