package repository

import (
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A Repository's own status writes do not reconcile it again; its spec,
// metadata, deletion and what others record in its status do.
func TestNotOnlyOwnStatus(t *testing.T) {
	at := func(sec int64) *metav1.Time { return &metav1.Time{Time: time.Unix(sec, 0)} }
	repo := func() *storagev1alpha1.Repository {
		r := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "app", Generation: 1, ResourceVersion: "10"}}
		r.Spec.Path = "team/app"
		r.Status.Phase = storagev1alpha1.RepositoryReady
		r.Status.SnapshotCount = ptr.To[int32](2)
		return r
	}
	cases := map[string]struct {
		reason string
		change func(*storagev1alpha1.Repository)
		want   bool
	}{
		"Resync": {reason: "A resync changes nothing.", change: func(*storagev1alpha1.Repository) {}, want: false},
		"OwnStatus": {reason: "What this controller sums up from the Snapshots is its own write.", change: func(r *storagev1alpha1.Repository) {
			r.ResourceVersion = "11"
			r.Status.SnapshotCount, r.Status.Size, r.Status.LastBackupTime, r.Status.Integrity = ptr.To[int32](3), "2 MiB", at(5), ptr.To(true)
			r.Status.RecentSnapshots = []storagev1alpha1.SnapshotInfo{{Name: "s"}}
		}, want: false},
		"OwnConditions": {reason: "So are its conditions and phase.", change: func(r *storagev1alpha1.Repository) {
			r.Status.Phase = storagev1alpha1.RepositoryNotReady
			r.SetConditions(xpv2.ReconcileSuccess())
		}, want: false},
		"Spec":       {reason: "A change of the spec is acted on.", change: func(r *storagev1alpha1.Repository) { r.Spec.Paused = true }, want: true},
		"Annotation": {reason: "So is an annotation (an adoption, a create's outcome).", change: func(r *storagev1alpha1.Repository) { r.Annotations = map[string]string{"a": "b"} }, want: true},
		"Deleting":   {reason: "And a deletion.", change: func(r *storagev1alpha1.Repository) { r.DeletionTimestamp = at(7) }, want: true},
		"Finalizer":  {reason: "And a finalizer added or removed by someone else.", change: func(r *storagev1alpha1.Repository) { r.Finalizers = []string{"x"} }, want: true},
		"Pruned":     {reason: "A prune's record is written by its Job, not by this controller.", change: func(r *storagev1alpha1.Repository) { r.Status.LastPruneTime = at(9) }, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			old, updated := repo(), repo()
			tc.change(updated)
			got := notOnlyOwnStatus.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: updated})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nreconciled again: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
