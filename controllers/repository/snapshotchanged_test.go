package repository

import (
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// TestSnapshotChanged shows which Snapshot updates observe their
// Repository again: what its status is made of, not the managed
// reconciler's bookkeeping on each Snapshot.
func TestSnapshotChanged(t *testing.T) {
	base := func() *storagev1alpha1.Snapshot {
		s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "demo"},
			Spec: storagev1alpha1.SnapshotSpec{Repository: "app", Session: "nightly"}}
		s.Status.Phase = storagev1alpha1.SnapshotRunning
		return s
	}
	cases := map[string]struct {
		reason string
		change func(*storagev1alpha1.Snapshot)
		want   bool
	}{
		"Finalizer": {"The managed reconciler's finalizer is no news to the Repository.", func(s *storagev1alpha1.Snapshot) { s.Finalizers = []string{"finalizer.managedresource.crossplane.io"} }, false},
		"Annotations": {"Nor are its annotations.", func(s *storagev1alpha1.Snapshot) {
			s.Annotations = map[string]string{"crossplane.io/external-create-succeeded": "now"}
		}, false},
		"Conditions": {"Nor its conditions.", func(s *storagev1alpha1.Snapshot) { s.SetConditions(xpv2.Available(), xpv2.ReconcileSuccess()) }, false},
		"Phase":      {"The phase is counted in the Repository's status.", func(s *storagev1alpha1.Snapshot) { s.Status.Phase = storagev1alpha1.SnapshotSucceeded }, true},
		"Size":       {"So is the size.", func(s *storagev1alpha1.Snapshot) { s.Status.Size = "1 MiB" }, true},
		"Integrity":  {"And the integrity.", func(s *storagev1alpha1.Snapshot) { s.Status.Integrity = ptr.To(true) }, true},
		"Time": {"The time orders the recent Snapshots.", func(s *storagev1alpha1.Snapshot) {
			s.Status.SnapshotTime = &metav1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		}, true},
		"Repository": {"A Snapshot moved to another Repository changes both.", func(s *storagev1alpha1.Snapshot) { s.Spec.Repository = "other" }, true},
		"Deletion":   {"A Snapshot being deleted may hold up its Repository's deletion.", func(s *storagev1alpha1.Snapshot) { s.DeletionTimestamp = &metav1.Time{} }, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			n := base()
			tc.change(n)
			if got := snapshotChanged.Update(event.UpdateEvent{ObjectOld: base(), ObjectNew: n}); got != tc.want {
				t.Errorf("%s\nsnapshotChanged = %t, want %t", tc.reason, got, tc.want)
			}
		})
	}
}
