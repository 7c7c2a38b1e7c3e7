package storagekind

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// An update passes when the view of the object changed, and always when
// the objects are not of the view's kind.
func TestChangedIn(t *testing.T) {
	byPath := ChangedIn(func(r *storagev1alpha1.Repository) any { return r.Spec.Path })
	repo := func(path, rv string) *storagev1alpha1.Repository {
		r := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}}
		r.Spec.Path = path
		return r
	}
	cases := map[string]struct {
		reason   string
		old, new client.Object
		want     bool
	}{
		"ViewSame":    {reason: "What is not in the view does not pass.", old: repo("a", "1"), new: repo("a", "2"), want: false},
		"ViewChanged": {reason: "What is in the view passes.", old: repo("a", "1"), new: repo("b", "2"), want: true},
		"OtherKind":   {reason: "An object of another kind is not judged.", old: &corev1.Secret{}, new: &corev1.Secret{}, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := byPath.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\npasses: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
