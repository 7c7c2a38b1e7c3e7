package backupstorage

import (
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A Repository wakes its storage only when what the storage reports of it
// or records in the backend changes.
func TestStorageViewChanged(t *testing.T) {
	ready := func() *storagev1alpha1.Repository {
		r := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "app"}}
		r.Spec.StorageRef = storagev1alpha1.ObjectReference{Namespace: "platform", Name: "s3"}
		r.Spec.Path = "team/app"
		r.Status.Phase = storagev1alpha1.RepositoryReady
		r.Status.Size = "10 MiB"
		r.Status.SnapshotCount = ptr.To[int32](3)
		return r
	}
	cases := map[string]struct {
		reason string
		change func(*storagev1alpha1.Repository)
		want   bool
	}{
		"Unchanged":     {reason: "A resync changes nothing.", change: func(*storagev1alpha1.Repository) {}, want: false},
		"SnapshotCount": {reason: "A Snapshot counted is not the storage's concern.", change: func(r *storagev1alpha1.Repository) { r.Status.SnapshotCount = ptr.To[int32](4) }, want: false},
		"LastBackupTime": {reason: "Nor is the time of the newest backup.", change: func(r *storagev1alpha1.Repository) {
			r.Status.LastBackupTime = &metav1.Time{Time: time.Unix(1, 0)}
		}, want: false},
		"Resized":  {reason: "The storage reports each Repository's size.", change: func(r *storagev1alpha1.Repository) { r.Status.Size = "12 MiB" }, want: true},
		"NotReady": {reason: "And whether it is in step.", change: func(r *storagev1alpha1.Repository) { r.Status.Phase = storagev1alpha1.RepositoryNotReady }, want: true},
		"Failing": {reason: "And why it is not.", change: func(r *storagev1alpha1.Repository) {
			r.Status.Phase = storagev1alpha1.RepositoryNotReady
			r.SetConditions(xpv2.Condition{Type: storagev1alpha1.TypeRepositoryInitialized, Status: corev1.ConditionFalse, Reason: "PathOverlap", Message: "overlaps"})
		}, want: true},
		"Moved":    {reason: "The storage records each Repository's path.", change: func(r *storagev1alpha1.Repository) { r.Spec.Path = "team/other" }, want: true},
		"Deleting": {reason: "A Repository being deleted leaves the storage's record.", change: func(r *storagev1alpha1.Repository) { r.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)} }, want: true},
		"OtherStorage": {reason: "A Repository pointed at another storage leaves this one's record.", change: func(r *storagev1alpha1.Repository) {
			r.Spec.StorageRef.Name = "gcs"
		}, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			old, updated := ready(), ready()
			tc.change(updated)
			got := storageViewChanged.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: updated})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nwakes the storage: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
