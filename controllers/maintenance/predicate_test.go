package maintenance

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A Repository is looked at again only when what decides its next prune
// changes, not with each backup's bookkeeping.
func TestPruneInputsChanged(t *testing.T) {
	at := func(sec int64) *metav1.Time { return &metav1.Time{Time: time.Unix(sec, 0)} }
	repo := func() *storagev1alpha1.Repository {
		r := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "app", Generation: 2,
			Labels: map[string]string{corev1alpha1.LabelInvokerName: "app-backup"}}}
		r.Status.Phase = storagev1alpha1.RepositoryReady
		r.Status.LastPruneTime = at(100)
		r.Status.SnapshotCount = ptr.To[int32](3)
		return r
	}
	cases := map[string]struct {
		reason string
		change func(*storagev1alpha1.Repository)
		want   bool
	}{
		"Resync":         {reason: "Nothing changed.", change: func(*storagev1alpha1.Repository) {}, want: false},
		"SnapshotCount":  {reason: "A Snapshot counted does not move the prune.", change: func(r *storagev1alpha1.Repository) { r.Status.SnapshotCount = ptr.To[int32](4) }, want: false},
		"LastBackupTime": {reason: "Nor does a backup's time.", change: func(r *storagev1alpha1.Repository) { r.Status.LastBackupTime = at(200) }, want: false},
		"Size":           {reason: "Nor its size.", change: func(r *storagev1alpha1.Repository) { r.Status.Size = "1 GiB" }, want: false},
		"Spec":           {reason: "A new schedule, suspension or pause is a new generation.", change: func(r *storagev1alpha1.Repository) { r.Generation = 3 }, want: true},
		"Pruned":         {reason: "A prune ended: the next is due from it.", change: func(r *storagev1alpha1.Repository) { r.Status.LastPruneTime = at(300) }, want: true},
		"FirstPrune":     {reason: "The first prune ended.", change: func(r *storagev1alpha1.Repository) { r.Status.LastPruneTime = nil }, want: true},
		"NotReady":       {reason: "Only a Ready Repository is pruned.", change: func(r *storagev1alpha1.Repository) { r.Status.Phase = storagev1alpha1.RepositoryNotReady }, want: true},
		"Deleting":       {reason: "A Repository being deleted is not pruned.", change: func(r *storagev1alpha1.Repository) { r.DeletionTimestamp = at(400) }, want: true},
		"Unlabelled":     {reason: "Only a configuration's Repository is pruned on schedule.", change: func(r *storagev1alpha1.Repository) { r.Labels = nil }, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			old, updated := repo(), repo()
			tc.change(updated)
			got := pruneInputsChanged.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: updated})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nreconciled again: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
