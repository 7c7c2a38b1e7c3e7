// Package backupconfiguration reconciles BackupConfigurations. It is built
// as small controllers coordinated through conditions; the one here owns
// ValidationPassed:
//
//	ValidationPassed  set and cleared by the validation controller: True
//	                  when the configuration is well formed, its tasks'
//	                  parameters satisfy their Functions' schemas, and its
//	                  target, storages and retention policies exist and
//	                  admit it. A configuration that is wrong in itself is
//	                  Invalid; one whose references are missing is NotReady.
//
// The scheduler controller (scheduler.go) composes Repositories, access and
// CronJobs (SchedulerEnsured) and starts the first backup
// (InitialBackupTriggered); it acts only on a configuration that passed
// validation at its current generation.
package backupconfiguration

import (
	"context"
	"fmt"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

// Options configure the controllers.
type Options struct {
	Controller controller.Options
	Log        logr.Logger
	Renderer   *render.Renderer
	// AmbientNamespaces may use storages of other namespaces that name no
	// credential Secret (tenancy.CheckStorage).
	AmbientNamespaces []string
	// ClusterDumpNamespaces may hold configurations without a target,
	// which dump the whole cluster (checkTarget).
	ClusterDumpNamespaces []string
	// Clock stamps conditions and schedules runs; the real one if nil.
	Clock clock.Clock
}

// Setup adds the BackupConfiguration controllers to the manager.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Renderer == nil {
		o.Renderer = render.New(render.Options{})
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	r := &validator{clock: o.Clock, kube: mgr.GetClient(), renderer: o.Renderer, ambient: o.AmbientNamespaces, clusterDump: o.ClusterDumpNamespaces, log: o.Log.WithValues("controller", "backupconfiguration-validation")}
	all := handler.EnqueueRequestsFromMapFunc(allInNamespace(mgr.GetClient()))
	everywhere := handler.EnqueueRequestsFromMapFunc(allConfigurations(mgr.GetClient()))
	err := ctrl.NewControllerManagedBy(mgr).
		Named("backupconfiguration-validation").
		WithOptions(o.Controller).
		For(&corev1alpha1.BackupConfiguration{}).
		Watches(&storagev1alpha1.BackupStorage{}, everywhere, builder.WithPredicates(storageChanged)).
		Watches(&storagev1alpha1.RetentionPolicy{}, everywhere).
		Watches(&corev1alpha1.HookTemplate{}, everywhere).
		Watches(&addonsv1alpha1.Addon{}, everywhere).
		Watches(&addonsv1alpha1.Function{}, everywhere).
		// Of a target only its being there is checked: the cache holds the
		// workloads as metadata (StatefulSets whole, for the blueprints'
		// claim templates: one informer of them, not two), and only their
		// creation and deletion wake the configurations, not the status
		// updates they see all day.
		WatchesMetadata(&appsv1.Deployment{}, all, existence).
		Watches(&appsv1.StatefulSet{}, all, existence).
		WatchesMetadata(&appsv1.DaemonSet{}, all, existence).
		WatchesMetadata(&corev1.PersistentVolumeClaim{}, all, existence).
		// A namespace's labels decide what storages of other namespaces
		// admit it.
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(inNamespace(mgr.GetClient())),
			builder.WithPredicates(predicate.Or[client.Object](existenceChanged, predicate.LabelChangedPredicate{}))).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up backupconfiguration-validation controller: %w", err)
	}
	return setupScheduler(mgr, o)
}

// existenceChanged passes the creation and deletion of an object, not its
// updates.
var existenceChanged = predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }}

var existence = builder.WithPredicates(existenceChanged)

func allInNamespace(c client.Client) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return configurations(ctx, c, client.InNamespace(o.GetNamespace()))
	}
}

// inNamespace maps a Namespace to the configurations in it.
func inNamespace(c client.Client) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return configurations(ctx, c, client.InNamespace(o.GetName()))
	}
}

func allConfigurations(c client.Client) handler.MapFunc {
	return func(ctx context.Context, _ client.Object) []reconcile.Request {
		return configurations(ctx, c)
	}
}

func configurations(ctx context.Context, c client.Client, opts ...client.ListOption) []reconcile.Request {
	// Only their names are read, on every event of a namespace's
	// workloads: the cache's own objects, not a copy of each.
	list := &corev1alpha1.BackupConfigurationList{}
	if err := c.List(ctx, list, append(opts, client.UnsafeDisableDeepCopy)...); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, bc := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bc)})
	}
	return out
}

type validator struct {
	kube     client.Client
	renderer *render.Renderer
	ambient  []string
	// clusterDump are the namespaces that may dump the whole cluster.
	clusterDump []string
	log         logr.Logger
	clock       clock.PassiveClock
}

func (v *validator) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bc := &corev1alpha1.BackupConfiguration{}
	if err := v.kube.Get(ctx, req.NamespacedName, bc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := bc.DeepCopy()
	in := &input{kube: v.kube, renderer: v.renderer, ambient: v.ambient, clusterDump: v.clusterDump, bc: bc, status: &bc.Status}
	msg, invalid, err := run(ctx, in)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := v.resolveStorageRefs(ctx, before, bc); err != nil {
		return ctrl.Result{}, err
	}
	c := xpv2.Condition{Type: corev1alpha1.TypeValidationPassed, Status: corev1.ConditionTrue,
		Reason: corev1alpha1.ReasonResourceValidationPassed, LastTransitionTime: metav1.NewTime(v.clock.Now()), ObservedGeneration: bc.Generation}
	if msg != "" {
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, corev1alpha1.ReasonResourceValidationFailed, msg
	}
	bc.SetConditions(c)
	bc.Status.Phase = phase(bc, invalid)
	if equalStatus(before, bc) {
		return ctrl.Result{}, nil
	}
	if err := v.kube.Status().Update(ctx, bc); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot update backupconfiguration status: %w", err)
	}
	return ctrl.Result{}, nil
}

// resolveStorageRefs saves into the spec the default BackupStorages the
// checks resolved for backends that omit storageRef (checkDefaultStorage),
// as Crossplane late-initializes a managed resource's spec, so that the
// scheduler, the sessions and the user read the storage in one place. The
// patch fails on a configuration changed meanwhile; the next pass resolves
// again.
func (v *validator) resolveStorageRefs(ctx context.Context, before, bc *corev1alpha1.BackupConfiguration) error {
	resolved := false
	for i := range bc.Spec.Backends {
		if before.Spec.Backends[i].StorageRef == nil && bc.Spec.Backends[i].StorageRef != nil {
			resolved = true
		}
	}
	if !resolved {
		return nil
	}
	status := bc.Status.DeepCopy()
	if err := v.kube.Patch(ctx, bc, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("cannot record the default backupstorage in spec.backends: %w", err)
	}
	bc.Status = *status
	before.ObjectMeta = bc.ObjectMeta
	before.Spec = *bc.Spec.DeepCopy()
	return nil
}

// phase is computed from the conditions: Invalid when the configuration is
// wrong in itself, Ready when validated and scheduled, NotReady otherwise.
func phase(bc *corev1alpha1.BackupConfiguration, invalid bool) corev1alpha1.BackupInvokerPhase {
	valid := bc.GetCondition(corev1alpha1.TypeValidationPassed).Status == corev1.ConditionTrue
	switch {
	case !valid && invalid:
		return corev1alpha1.BackupInvokerInvalid
	case valid && bc.GetCondition(corev1alpha1.TypeSchedulerEnsured).Status == corev1.ConditionTrue:
		return corev1alpha1.BackupInvokerReady
	}
	return corev1alpha1.BackupInvokerNotReady
}

// equalStatus ignores transition times, so an unchanged verdict writes
// nothing.
func equalStatus(a, b *corev1alpha1.BackupConfiguration) bool {
	ca, cb := a.GetCondition(corev1alpha1.TypeValidationPassed), b.GetCondition(corev1alpha1.TypeValidationPassed)
	return ca.Equal(cb) && a.Status.Phase == b.Status.Phase &&
		equality.Semantic.DeepEqual(a.Status.Backends, b.Status.Backends) &&
		equality.Semantic.DeepEqual(a.Status.TargetFound, b.Status.TargetFound)
}

// storageChanged passes the BackupStorage updates its users act on
// (BackupStorage.ChangedForUsers), not its status lists.
var storageChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*storagev1alpha1.BackupStorage)
	n, ok2 := e.ObjectNew.(*storagev1alpha1.BackupStorage)
	return !ok1 || !ok2 || n.ChangedForUsers(o)
}}
