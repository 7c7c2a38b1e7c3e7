package snapshot

import (
	"testing"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// Only an update that changes more than a Snapshot's conditions reconciles
// it again.
func TestNotOnlyConditions(t *testing.T) {
	was := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "demo", ResourceVersion: "1"}}
	was.Status.Phase = storagev1alpha1.SnapshotRunning
	cases := map[string]struct {
		change func(s *storagev1alpha1.Snapshot)
		want   bool
	}{
		"ConditionsOnly": {change: func(s *storagev1alpha1.Snapshot) {
			s.SetConditions(xpv2.Available(), xpv2.ReconcileSuccess())
		}},
		"ManagedFieldsOnly": {change: func(s *storagev1alpha1.Snapshot) {
			s.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "stashplane"}}
		}},
		"Phase": {change: func(s *storagev1alpha1.Snapshot) {
			s.Status.Phase = storagev1alpha1.SnapshotSucceeded
		}, want: true},
		"Component": {change: func(s *storagev1alpha1.Snapshot) {
			s.Status.Components = map[string]storagev1alpha1.Component{"dump": {Phase: storagev1alpha1.ComponentSucceeded}}
		}, want: true},
		"Annotation": {change: func(s *storagev1alpha1.Snapshot) {
			s.Annotations = map[string]string{"crossplane.io/external-create-succeeded": "now"}
		}, want: true},
		"Deleted": {change: func(s *storagev1alpha1.Snapshot) {
			now := metav1.Now()
			s.DeletionTimestamp = &now
		}, want: true},
		"Verified": {change: func(s *storagev1alpha1.Snapshot) {
			s.Status.VerificationStatus = storagev1alpha1.SnapshotVerified
		}, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			is := was.DeepCopy()
			is.ResourceVersion = "2"
			tc.change(is)
			got := notOnlyConditions.Update(event.UpdateEvent{ObjectOld: was, ObjectNew: is})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("reconciled: -want +got:\n%s", diff)
			}
		})
	}
}
