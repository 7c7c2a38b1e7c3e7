package storagekind

import (
	"context"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Gathered enqueues the requests Map gives for each event of a watched
// kind, After later and, when Low, behind the controller's own events (at
// handler.LowPriority, on a queue with priorities). A request already
// waiting keeps the earlier of its times, so that a burst of events about
// one object (a storage's thousand Repositories readied, a Repository's
// Snapshots recorded) is one reconcile once it has passed, not one per
// event: the object reports the change After later, at most.
type Gathered struct {
	Map   handler.MapFunc
	After time.Duration
	Low   bool
}

var _ handler.EventHandler = Gathered{}

// Create implements handler.EventHandler.
func (g Gathered) Create(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	g.add(ctx, e.Object, q)
}

// Update implements handler.EventHandler; the old object's requests are
// added too, when they differ.
func (g Gathered) Update(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	g.add(ctx, e.ObjectOld, q)
	g.add(ctx, e.ObjectNew, q)
}

// Delete implements handler.EventHandler.
func (g Gathered) Delete(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	g.add(ctx, e.Object, q)
}

// Generic implements handler.EventHandler.
func (g Gathered) Generic(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	g.add(ctx, e.Object, q)
}

func (g Gathered) add(ctx context.Context, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if o == nil {
		return
	}
	reqs := g.Map(ctx, o)
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		opts := priorityqueue.AddOpts{After: g.After}
		if g.Low {
			opts.Priority = ptr.To(handler.LowPriority)
		}
		pq.AddWithOpts(opts, reqs...)
		return
	}
	for _, r := range reqs {
		if g.After > 0 {
			q.AddAfter(r, g.After)
			continue
		}
		q.Add(r)
	}
}
