package storagekind

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestGathered: a burst of events about the objects of one owner waits
// After and is one reconcile of the owner, on a queue with priorities and
// on a plain one; an owner queued by its own event does not wait.
func TestGathered(t *testing.T) {
	const after = 300 * time.Millisecond
	owner := func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "demo", Name: o.GetLabels()["owner"]}}}
	}
	obj := func(name, owner string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", Labels: map[string]string{"owner": owner}}}
	}
	queues := map[string]func() workqueue.TypedRateLimitingInterface[reconcile.Request]{
		"Priority": func() workqueue.TypedRateLimitingInterface[reconcile.Request] {
			return priorityqueue.New[reconcile.Request]("gathered-test")
		},
		"Plain": func() workqueue.TypedRateLimitingInterface[reconcile.Request] {
			return workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
		},
	}
	for name, newQueue := range queues {
		t.Run(name, func(t *testing.T) {
			q := newQueue()
			defer q.ShutDown()
			ctx := context.Background()
			g := Gathered{Map: owner, After: after, Low: true}
			start := time.Now()
			g.Create(ctx, event.CreateEvent{Object: obj("a", "busy")}, q)
			g.Update(ctx, event.UpdateEvent{ObjectOld: obj("a", "busy"), ObjectNew: obj("a", "busy")}, q)
			g.Create(ctx, event.CreateEvent{Object: obj("b", "busy")}, q)
			g.Delete(ctx, event.DeleteEvent{Object: obj("c", "busy")}, q)
			q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "demo", Name: "own"}})
			var got []string
			var busyAfter time.Duration
			for range 2 {
				r, _ := q.Get()
				got = append(got, r.Name)
				if r.Name == "busy" {
					busyAfter = time.Since(start)
				}
				q.Done(r)
			}
			if diff := cmp.Diff([]string{"own", "busy"}, got); diff != "" {
				t.Errorf("reconciles: -want +got:\n%s", diff)
			}
			if busyAfter < after {
				t.Errorf("the gathered owner was handed out after %v, want at least %v", busyAfter, after)
			}
			time.Sleep(after)
			if n := q.Len(); n != 0 {
				t.Errorf("%d more reconciles queued after the burst, want none", n)
			}
		})
	}
}
