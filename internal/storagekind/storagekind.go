// Package storagekind holds what the controllers of Stashplane's storage
// kinds (BackupStorage, Repository, Snapshot) share: their options, the
// managed reconciler they all run on, the opener of a BackupStorage's
// bucket (opener.go; a local storage through its accessor) and the one
// classifier of storage errors into condition reasons (classify.go).
package storagekind

import (
	"time"

	"github.com/crossplane/crossplane-runtime/v2/pkg/event"
	"github.com/crossplane/crossplane-runtime/v2/pkg/logging"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
)

// Options configure a storage kind's controller.
type Options struct {
	Controller controller.Options
	Log        logr.Logger
	// Opener opens BackupStorages' buckets.
	Opener *Opener
	// PollInterval is how often the kind is observed with no change to
	// prompt it; a minute when zero.
	PollInterval time.Duration
	// Reason classifies a storage error into a condition reason and a
	// message free of credentials.
	Reason func(err error) (reason, message string)
	// Clock stamps conditions and records; the real one if nil.
	Clock clock.PassiveClock
	// QuietRecords drops the Normal events of a record created or updated
	// as asked, for a kind of which thousands arrive at once (Snapshots):
	// each is an API request and an etcd lease, and the object's own
	// conditions say the same. Warnings and the other events stay.
	QuietRecords bool
}

// Now is the time by the options' clock.
func (o Options) Now() time.Time {
	if o.Clock == nil {
		return time.Now()
	}
	return o.Clock.Now()
}

// NewReconciler returns the managed reconciler of a storage kind: no
// external-name initialiser (the kinds' records are named by their
// objects), events and logs under the controller's name, management
// policies honoured.
//
// Because a record's name follows from its object alone, a create the
// provider began and never saw finish (killed between marking the create
// pending and recording its result) is safe to look at again: the next
// Observe finds the record, or its absence, under the same name. So the
// reconciler is told the names are deterministic, and such an object is
// not left refusing to reconcile until someone removes
// crossplane.io/external-create-pending by hand.
//
// It writes no status that would not change, adds its finalizer with the
// write that marks a create pending, and keeps what a create set in the
// status for the write that ends it (writes.go).
func NewReconciler(mgr ctrl.Manager, name string, gvk schema.GroupVersionKind, c managed.ExternalConnector, o Options) *managed.Reconciler {
	if o.PollInterval == 0 {
		o.PollInterval = time.Minute
	}
	created := &createdReadiness{}
	kube := unchangedStatusSkipped{Client: mgr.GetClient(), created: created}
	absent := &absentRecords{}
	return managed.NewReconciler(fewerWrites{Manager: mgr, kube: kube},
		resource.ManagedKind(gvk),
		managed.WithExternalConnector(observing{ExternalConnector: c, absent: absent, created: created}),
		managed.WithFinalizer(finalizerWithCreate{api: resource.NewAPIFinalizer(kube, managed.FinalizerName), absent: absent}),
		managed.WithCriticalAnnotationUpdater(createdStatusKept{kube: kube, retrying: managed.NewRetryingCriticalAnnotationUpdater(kube), created: created}),
		managed.WithInitializers(),
		managed.WithLogger(logging.NewLogrLogger(o.Log.WithValues("controller", name))),
		managed.WithRecorder(recorder(event.NewAPIRecorder(mgr.GetEventRecorderFor(name)), o.QuietRecords)),
		managed.WithPollInterval(o.PollInterval),
		managed.WithManagementPolicies(),
		managed.WithDeterministicExternalName(true),
	)
}

// routine are the reasons of the Normal events the managed reconciler
// records for every record it creates or updates as asked.
var routine = map[event.Reason]bool{"CreatedExternalResource": true, "UpdatedExternalResource": true}

// quietRecorder drops routine events and passes the rest.
type quietRecorder struct{ event.Recorder }

func recorder(r event.Recorder, quiet bool) event.Recorder {
	if !quiet {
		return r
	}
	return quietRecorder{Recorder: r}
}

func (q quietRecorder) Event(obj runtime.Object, e event.Event) {
	if e.Type == event.TypeNormal && routine[e.Reason] {
		return
	}
	q.Recorder.Event(obj, e)
}

func (q quietRecorder) WithAnnotations(keysAndValues ...string) event.Recorder {
	return quietRecorder{Recorder: q.Recorder.WithAnnotations(keysAndValues...)}
}
