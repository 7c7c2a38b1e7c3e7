package repository

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A Repository woken by its Snapshots waits behind one woken by its own
// change, and one queued at both keeps the higher priority and does not
// wait; a burst of its Snapshots' events is one reconcile.
func TestSnapshotEventsLowPriority(t *testing.T) {
	q := priorityqueue.New[reconcile.Request]("repository-test")
	defer q.ShutDown()
	snap := func(name, repo string) *storagev1alpha1.Snapshot {
		return &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}, Spec: storagev1alpha1.SnapshotSpec{Repository: repo}}
	}
	ctx := context.Background()
	h := snapshotEvents
	h.Create(ctx, event.CreateEvent{Object: snap("a-1", "busy")}, q)
	h.Create(ctx, event.CreateEvent{Object: snap("a-3", "busy")}, q)
	h.Update(ctx, event.UpdateEvent{ObjectOld: snap("b-1", "both"), ObjectNew: snap("b-1", "both")}, q)
	h.Delete(ctx, event.DeleteEvent{Object: snap("a-2", "busy")}, q)
	// Its own events, at the default priority.
	q.Add(key("new"))
	q.Add(key("both"))
	var got []string
	for range 3 {
		r, _ := q.Get()
		got = append(got, r.Name)
		q.Done(r)
	}
	if n := q.Len(); n != 0 {
		t.Errorf("%d more reconciles queued, want none", n)
	}
	if diff := cmp.Diff([]string{"new", "both", "busy"}, got); diff != "" {
		t.Errorf("order of reconciles: -want +got:\n%s", diff)
	}
}

func key(name string) reconcile.Request {
	r := reconcile.Request{}
	r.Namespace, r.Name = "demo", name
	return r
}
