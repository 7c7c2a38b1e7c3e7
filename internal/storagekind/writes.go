package storagekind

import (
	"context"
	"reflect"
	"slices"
	"sync"

	"github.com/crossplane/crossplane-runtime/v2/pkg/meta"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The managed reconciler writes an object several times on its way to
// Ready, and once more on every reconcile that follows: each write is an
// event that reconciles it again. On a cluster whose thousands of
// Snapshots arrive at once (a catalogue rebuilt after a disaster, many
// backups ending together), those writes are what the API server spends
// its time on, and the configurations users wait for queue behind them
// (docs/scale.md). Two of them carry nothing:
//
//   - a status written unchanged over the object it was read from (the API
//     server keeps the object as it was, but still decodes, admits and
//     compares the request);
//   - the finalizer, written on its own just before the reconciler writes
//     the object again to mark its create pending;
//   - that mark itself. It guards a create whose result names the
//     record (an external name the create chose): a provider killed
//     before recording it would lose the record. A storage kind's record
//     is named by its object alone, so the create can always be found
//     again; the mark and the finalizer are kept on the object in memory
//     and go with the write of the create's result, one write where
//     there were three.
//
// And one pass through the queue is saved: what a create set in the
// status (a Snapshot's record written) goes with the status write that
// ends the create, not the observation after it, which waits its turn
// behind every other object of the kind.

// fewerWrites is the manager the managed reconciler is built from: the
// same, with a client whose status writes skip a status unchanged.
type fewerWrites struct {
	ctrl.Manager
	kube client.Client
}

func (m fewerWrites) GetClient() client.Client { return m.kube }

// unchangedStatusSkipped is a client whose status updates are not sent when
// the object's status is what the cache holds at the same resourceVersion.
// At that version the API server's object is the cached one, so the update
// would change nothing; a cache behind the server holds another version,
// and the update is sent.
type unchangedStatusSkipped struct {
	client.Client
	created *createdReadiness
}

// Update sends o, unless all it changes from the cached object at the same
// resourceVersion is the mark of a pending create and the finalizer
// (createPendingOnly): those go with the write of the create's result,
// which the managed reconciler makes whether the create succeeds or fails.
//
// What is given up is the mark's check that the object read is the
// newest. If the cache was behind (the object changed or deleted that
// instant), the create writes the record from the version read; the
// write of its result then conflicts, the retrying updater reads the
// object again, and the next observation rewrites a record that differs.
// An object deleted in that instant leaves its record in the storage:
// nothing is lost, and a catalogue rebuild would show it again.
func (c unchangedStatusSkipped) Update(ctx context.Context, o client.Object, opts ...client.UpdateOption) error {
	if len(opts) == 0 && createPendingOnly(ctx, c.Client, o) {
		return nil
	}
	return c.Client.Update(ctx, o, opts...)
}

// createPendingOnly says whether o differs from the cached object at its
// resourceVersion only by a newly marked pending create and the managed
// reconciler's finalizer.
func createPendingOnly(ctx context.Context, cache client.Reader, o client.Object) bool {
	// A pending mark not newer than the create's result is an old one,
	// carried by every later write of the object.
	if !meta.ExternalCreateIncomplete(o) {
		return false
	}
	want, have, ok := asCached(ctx, cache, o)
	if !ok {
		return false
	}
	pending := func(u map[string]any) any {
		a, _, _ := unstructured.NestedStringMap(u, "metadata", "annotations")
		return a[meta.AnnotationKeyExternalCreatePending]
	}
	if pending(want) == pending(have) {
		return false
	}
	return equality.Semantic.DeepEqual(withoutCreateMarks(want), withoutCreateMarks(have))
}

// withoutCreateMarks drops from an object's unstructured content its
// status, the pending create's mark and the managed reconciler's
// finalizer; empty annotations and finalizers go too, so that an object
// that had none compares equal. It changes u and returns it.
func withoutCreateMarks(u map[string]any) map[string]any {
	delete(u, "status")
	m, _ := u["metadata"].(map[string]any)
	if m == nil {
		return u
	}
	delete(m, "managedFields")
	if a, _ := m["annotations"].(map[string]any); a != nil {
		delete(a, meta.AnnotationKeyExternalCreatePending)
		if len(a) == 0 {
			delete(m, "annotations")
		}
	}
	if f, _ := m["finalizers"].([]any); f != nil {
		m["finalizers"] = slices.DeleteFunc(f, func(v any) bool { return v == managed.FinalizerName })
		if len(m["finalizers"].([]any)) == 0 {
			delete(m, "finalizers")
		}
	}
	return u
}

func (c unchangedStatusSkipped) Status() client.SubResourceWriter {
	return statusWriter{SubResourceWriter: c.Client.Status(), cache: c.Client, created: c.created}
}

type statusWriter struct {
	client.SubResourceWriter
	cache   client.Reader
	created *createdReadiness
}

// Update sends o's status, unless it is unchanged. The status that ends a
// create says Ready as the kind's Create set it, not the managed
// reconciler's Creating (createdReadiness).
func (w statusWriter) Update(ctx context.Context, o client.Object, opts ...client.SubResourceUpdateOption) error {
	w.created.apply(o)
	if len(opts) == 0 && statusUnchanged(ctx, w.cache, o) {
		return nil
	}
	return w.SubResourceWriter.Update(ctx, o, opts...)
}

// createdReadiness remembers, by object, the Ready condition a kind's
// Create set. The managed reconciler marks every create Creating and
// observes again at once, for external resources that take a while to
// come up; that observation's status is a second write. A storage kind's
// record is written whole by its Create, so the kind knows its readiness
// then: the status that ends the create carries it, and the observation
// after it, finding the same, writes nothing (statusUnchanged). On a
// thousand Repositories made at once that is a thousand writes fewer,
// from the one client budget their kind shares (docs/scale.md).
type createdReadiness struct{ m sync.Map }

func (r *createdReadiness) set(uid types.UID, c xpv2.Condition) { r.m.Store(uid, c) }

// apply puts the Ready the last create of o set, forgotten, in place of
// the managed reconciler's Creating, when the create ended well (Synced).
func (r *createdReadiness) apply(o client.Object) {
	if r == nil {
		return
	}
	ready, ok := r.take(o.GetUID())
	c, conditioned := o.(resource.Conditioned)
	if !ok || !conditioned || c.GetCondition(xpv2.TypeReady).Reason != xpv2.ReasonCreating || c.GetCondition(xpv2.TypeSynced).Status != corev1.ConditionTrue {
		return
	}
	c.SetConditions(ready)
}

// take is the Ready condition the last create of uid set, forgotten.
func (r *createdReadiness) take(uid types.UID) (xpv2.Condition, bool) {
	v, ok := r.m.LoadAndDelete(uid)
	if !ok {
		return xpv2.Condition{}, false
	}
	return v.(xpv2.Condition), true
}

// statusUnchanged says whether the cache holds o at its resourceVersion
// with the same status.
func statusUnchanged(ctx context.Context, cache client.Reader, o client.Object) bool {
	want, have, ok := asCached(ctx, cache, o)
	return ok && equality.Semantic.DeepEqual(want["status"], have["status"])
}

// asCached is o and the cache's copy of it as unstructured content, when
// the cache holds o at o's resourceVersion: at that version the API
// server's object is the cached one.
func asCached(ctx context.Context, cache client.Reader, o client.Object) (want, have map[string]any, ok bool) {
	cached, isObject := o.DeepCopyObject().(client.Object)
	if !isObject || o.GetResourceVersion() == "" {
		return nil, nil, false
	}
	if err := cache.Get(ctx, client.ObjectKeyFromObject(o), cached); err != nil || cached.GetResourceVersion() != o.GetResourceVersion() {
		return nil, nil, false
	}
	want, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, nil, false
	}
	have, err = runtime.DefaultUnstructuredConverter.ToUnstructured(cached)
	if err != nil {
		return nil, nil, false
	}
	return want, have, true
}

// absentRecords remembers, by object, that the last Observe found no
// record in the storage.
type absentRecords struct{ m sync.Map }

func (a *absentRecords) set(uid types.UID, absent bool) {
	if absent {
		a.m.Store(uid, struct{}{})
		return
	}
	a.m.Delete(uid)
}

// take says whether the last Observe of uid found no record, and forgets it.
func (a *absentRecords) take(uid types.UID) bool {
	_, ok := a.m.LoadAndDelete(uid)
	return ok
}

// observing wraps a connector so that its clients' observations are
// remembered.
type observing struct {
	managed.ExternalConnector
	absent  *absentRecords
	created *createdReadiness
}

func (c observing) Connect(ctx context.Context, mg resource.Managed) (managed.ExternalClient, error) {
	e, err := c.ExternalConnector.Connect(ctx, mg)
	if err != nil {
		return nil, err
	}
	return observingClient{ExternalClient: e, absent: c.absent, created: c.created}, nil
}

type observingClient struct {
	managed.ExternalClient
	absent  *absentRecords
	created *createdReadiness
}

// Create creates the record and remembers the Ready condition the kind
// set with it, if it set one.
func (e observingClient) Create(ctx context.Context, mg resource.Managed) (managed.ExternalCreation, error) {
	before := mg.GetCondition(xpv2.TypeReady)
	c, err := e.ExternalClient.Create(ctx, mg)
	// Only a Ready the Create itself set: one left from before it (a kind
	// whose Create sets none) says nothing of the record just written.
	if ready := mg.GetCondition(xpv2.TypeReady); err == nil && e.created != nil && ready.Reason != "" && ready.Reason != xpv2.ReasonCreating &&
		(!ready.Equal(before) || !ready.LastTransitionTime.Equal(&before.LastTransitionTime)) {
		e.created.set(mg.GetUID(), ready)
	}
	return c, err
}

func (e observingClient) Observe(ctx context.Context, mg resource.Managed) (managed.ExternalObservation, error) {
	o, err := e.ExternalClient.Observe(ctx, mg)
	// An object being deleted is never created, and what is remembered of
	// it goes: the map holds only objects that live.
	e.absent.set(mg.GetUID(), err == nil && !o.ResourceExists && mg.GetDeletionTimestamp() == nil)
	return o, err
}

// finalizerWithCreate adds the managed reconciler's finalizer. When the
// object's record was just observed absent and its policies let the
// reconciler create it, the reconciler's next steps are to mark the create
// pending, create the record and write the create's result; the finalizer
// is then only set on the object and goes with that last write
// (unchangedStatusSkipped.Update). If the create is never tried, nothing
// was created and the next reconcile adds it again. In every other case
// the finalizer is written at once.
type finalizerWithCreate struct {
	api    *resource.APIFinalizer
	absent *absentRecords
}

func (f finalizerWithCreate) AddFinalizer(ctx context.Context, obj resource.Object) error {
	absent := f.absent.take(obj.GetUID())
	if meta.FinalizerExists(obj, managed.FinalizerName) {
		return nil
	}
	if mg, ok := obj.(resource.Managed); ok && absent && mg.GetDeletionTimestamp() == nil &&
		managed.NewManagementPoliciesResolver(true, mg.GetManagementPolicies()).ShouldCreate() {
		meta.AddFinalizer(obj, managed.FinalizerName)
		return nil
	}
	return f.api.AddFinalizer(ctx, obj)
}

func (f finalizerWithCreate) RemoveFinalizer(ctx context.Context, obj resource.Object) error {
	return f.api.RemoveFinalizer(ctx, obj)
}

// createdStatusKept writes the annotations that record a create's result.
// The managed reconciler writes them with the whole object, and the API
// server's answer would replace the status the create set with the one
// the reconciler read. When that write is accepted at the version the
// status was read at, the server's status is still the one read (a write
// of the object does not change its status), so the create's status is
// put back and goes with the reconciler's next status write. After a
// conflict someone else wrote the object, and the retrying updater reads
// it again: the status is then the server's.
type createdStatusKept struct {
	kube     client.Client
	retrying managed.CriticalAnnotationUpdater
	created  *createdReadiness
}

func (u createdStatusKept) UpdateCriticalAnnotations(ctx context.Context, o client.Object) error {
	kept := o.DeepCopyObject()
	if err := u.kube.Update(ctx, o); err != nil {
		// The object is read again: the readiness the create set was
		// worked out from the version it no longer has.
		if u.created != nil {
			u.created.take(o.GetUID())
		}
		return u.retrying.UpdateCriticalAnnotations(ctx, o)
	}
	keepStatus(o, kept)
	return nil
}

// keepStatus sets o's status to from's, both of the same kind with a
// Status field.
func keepStatus(o client.Object, from runtime.Object) {
	dst, src := reflect.ValueOf(o), reflect.ValueOf(from)
	if dst.Kind() != reflect.Pointer || src.Kind() != reflect.Pointer || dst.Type() != src.Type() {
		return
	}
	d, s := dst.Elem().FieldByName("Status"), src.Elem().FieldByName("Status")
	if d.IsValid() && s.IsValid() && d.CanSet() {
		d.Set(s)
	}
}
