package usage

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestAllowed(t *testing.T) {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"backup": "allowed"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}},
	).Build()
	policy := func(from storagev1alpha1.FromNamespaces, sel *metav1.LabelSelector) *storagev1alpha1.UsagePolicy {
		return &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(from), Selector: sel}}
	}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"backup": "allowed"}}
	cases := map[string]struct {
		reason string
		policy *storagev1alpha1.UsagePolicy
		user   string
		want   bool
	}{
		"NoPolicySame":      {reason: "Without a policy the owner's namespace may use it.", user: "storage", want: true},
		"NoPolicyOther":     {reason: "Without a policy another namespace may not.", user: "team-a", want: false},
		"All":               {reason: "All admits any namespace.", policy: policy(storagev1alpha1.NamespacesFromAll, nil), user: "team-b", want: true},
		"SelectorMatch":     {reason: "A namespace whose labels match the selector may.", policy: policy(storagev1alpha1.NamespacesFromSelector, sel), user: "team-a", want: true},
		"SelectorMiss":      {reason: "A namespace whose labels do not match may not.", policy: policy(storagev1alpha1.NamespacesFromSelector, sel), user: "team-b", want: false},
		"SelectorOwnerSame": {reason: "The owner's namespace may use it under a selector too.", policy: policy(storagev1alpha1.NamespacesFromSelector, sel), user: "storage", want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, why, err := Allowed(context.Background(), c, tc.policy, "storage", tc.user)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nAllowed(...): -want +got:\n%s", tc.reason, diff)
			}
			if !got && why == "" {
				t.Errorf("%s\nAllowed(...) refused without saying why", tc.reason)
			}
		})
	}
}
