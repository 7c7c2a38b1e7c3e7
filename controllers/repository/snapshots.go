package repository

import (
	"context"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/storagekind"
)

// recentSnapshotCount is how many Snapshots a Repository's status lists.
const recentSnapshotCount = 5

// repositoryOfSnapshot maps a Snapshot to its Repository.
func repositoryOfSnapshot(_ context.Context, o client.Object) []reconcile.Request {
	s, ok := o.(*storagev1alpha1.Snapshot)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: s.Namespace, Name: s.Spec.Repository}}}
}

// snapshotChanged passes the Snapshot updates a Repository's status reads
// (snapshotStatus): its repository and session, phase, size, time and
// integrity, and its deletion. The managed reconciler's own bookkeeping on
// each Snapshot (finalizer, annotations, Synced and Ready conditions, the
// upload of its record) is several updates per Snapshot; on a busy
// cluster those would observe each Repository again for nothing. Creates
// and deletes always pass.
var snapshotChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*storagev1alpha1.Snapshot)
	n, ok2 := e.ObjectNew.(*storagev1alpha1.Snapshot)
	if !ok1 || !ok2 {
		return true
	}
	return o.Spec.Repository != n.Spec.Repository || o.Spec.Session != n.Spec.Session ||
		(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) ||
		o.Status.Phase != n.Status.Phase || o.Status.Size != n.Status.Size ||
		!ptr.Equal(o.Status.Integrity, n.Status.Integrity) ||
		!snapshotTime(o).Time.Equal(snapshotTime(n).Time)
}}

// snapshotStatus fills the Repository's status from its Snapshots: how many
// there are, the newest few, when the last backup succeeded, how much the
// succeeded ones hold, and whether they all kept their integrity.
func snapshotStatus(ctx context.Context, c client.Reader, repo *storagev1alpha1.Repository) error {
	// The index (registered by the controllers' Setup) finds the
	// Repository's own Snapshots among the namespace's
	// thousands, and they are only read: no copy of each.
	list := &storagev1alpha1.SnapshotList{}
	if err := c.List(ctx, list, client.InNamespace(repo.Namespace), client.MatchingFields{storagev1alpha1.SnapshotRepositoryField: repo.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("cannot list snapshots: %w", err)
	}
	snaps := list.Items
	sort.Slice(snaps, func(i, j int) bool { return snapshotTime(&snaps[i]).After(snapshotTime(&snaps[j]).Time) })
	st := &repo.Status
	st.SnapshotCount = ptr.To(int32(len(snaps)))
	st.RecentSnapshots = nil
	st.LastBackupTime = nil
	var size int64
	integrity := true
	for i, s := range snaps {
		if i < recentSnapshotCount {
			st.RecentSnapshots = append(st.RecentSnapshots, storagev1alpha1.SnapshotInfo{
				Name: s.Name, Phase: s.Status.Phase, Session: s.Spec.Session, Size: s.Status.Size, SnapshotTime: s.Status.SnapshotTime.DeepCopy(),
			})
		}
		if s.Status.Phase != storagev1alpha1.SnapshotSucceeded {
			continue
		}
		if st.LastBackupTime == nil {
			st.LastBackupTime = ptr.To(snapshotTime(&s))
		}
		if n, err := storagev1alpha1.ParseSize(s.Status.Size); err == nil {
			size += n
		}
		integrity = integrity && ptr.Deref(s.Status.Integrity, false)
	}
	st.Size = storagev1alpha1.FormatSize(size)
	st.Integrity = nil
	if st.LastBackupTime != nil {
		st.Integrity = ptr.To(integrity)
	}
	return nil
}

func snapshotTime(s *storagev1alpha1.Snapshot) metav1.Time {
	if s.Status.SnapshotTime != nil {
		return *s.Status.SnapshotTime
	}
	return s.CreationTimestamp
}

// snapshotsGathered is how long a Repository waits after a change of one
// of its Snapshots before it sums them up again, behind its own changes
// (its creation, its record, its spec), which come first: while ten
// thousand Snapshots are recorded, three writes each, every Repository
// would otherwise be observed again for each write before the Repositories
// not yet created get their turn (docs/scale.md).
const snapshotsGathered = time.Second

// snapshotEvents enqueues the Repository of a Snapshot that changed,
// snapshotsGathered later and at low priority.
var snapshotEvents = storagekind.Gathered{Map: repositoryOfSnapshot, After: snapshotsGathered, Low: true}
