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

// A BackupStorage's own status writes do not observe it again; the
// catalog's, its spec, metadata and deletion do.
func TestNotOnlyOwnStatus(t *testing.T) {
	storage := func() *storagev1alpha1.BackupStorage {
		bs := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: "platform", Name: "s3", Generation: 1, ResourceVersion: "10"}}
		bs.Status.Phase = storagev1alpha1.BackupStorageReady
		bs.SetConditions(xpv2.Available())
		return bs
	}
	cases := map[string]struct {
		reason string
		change func(*storagev1alpha1.BackupStorage)
		want   bool
	}{
		"Resync": {reason: "A resync changes nothing.", change: func(*storagev1alpha1.BackupStorage) {}, want: false},
		"Repositories": {reason: "Its list of Repositories and their sizes is its own write.", change: func(bs *storagev1alpha1.BackupStorage) {
			bs.ResourceVersion = "11"
			bs.Status.Repositories = []storagev1alpha1.RepositoryInfo{{Name: "app", Namespace: "team"}}
			bs.Status.TotalSize = "1 GiB"
		}, want: false},
		"OwnConditions": {reason: "So are its phase, endpoint and backend conditions.", change: func(bs *storagev1alpha1.BackupStorage) {
			bs.Status.Phase, bs.Status.BrokerEndpoint = storagev1alpha1.BackupStorageNotReady, "10.0.0.1:8443"
			bs.SetConditions(xpv2.Unavailable(), xpv2.ReconcileSuccess(), xpv2.Condition{Type: storagev1alpha1.TypeBackendInitialized, Status: corev1.ConditionFalse, Reason: "NotReachable"})
		}, want: false},
		"Catalog": {reason: "The catalog's condition is another controller's.", change: func(bs *storagev1alpha1.BackupStorage) {
			bs.SetConditions(xpv2.Condition{Type: "CatalogRebuilt", Status: corev1.ConditionTrue, Reason: "Rebuilt"})
		}, want: true},
		"Spec":     {reason: "A change of the spec is acted on.", change: func(bs *storagev1alpha1.BackupStorage) { bs.Spec.Default = true }, want: true},
		"Deleting": {reason: "And a deletion.", change: func(bs *storagev1alpha1.BackupStorage) { bs.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)} }, want: true},
		"Labels":   {reason: "And its labels.", change: func(bs *storagev1alpha1.BackupStorage) { bs.Labels = map[string]string{"tier": "gold"} }, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			old, updated := storage(), storage()
			tc.change(updated)
			got := notOnlyOwnStatus.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: updated})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nobserved again: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
