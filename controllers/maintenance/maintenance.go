// Package maintenance prunes Repositories on their maintenance schedule
// (spec.maintenance.schedule, daily by default). When a prune is due the
// controller creates the Repository's prune Job (functions/plan.PruneJob),
// owned by the Repository, as `stashplane prune` does, once no BackupSession
// of the Repository's configuration is Pending or Running and no other
// prune Job of it is unfinished; until then it looks again every minute.
// A prune is due at the schedule's first time after the later of the last
// prune (status.lastPruneTime), the start of the last prune Job (so that a
// failed prune is not retried before the next scheduled time) and the
// Repository's creation. It sets no condition: the prune Job's agent
// records the outcome in status.lastPruneTime and status.lastPruneFreed,
// and a schedule that does not parse is an event on the Repository.
package maintenance

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/version"
)

// blockedRecheck is how often a due prune that may not start yet is tried
// again.
const blockedRecheck = time.Minute

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Options configure the controller.
type Options struct {
	Controller controller.Options
	Log        logr.Logger
	Clock      clock.Clock
}

// Setup adds the maintenance controller to the manager.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	r := &reconciler{kube: mgr.GetClient(), clock: o.Clock, image: version.Image(), events: mgr.GetEventRecorderFor("maintenance"),
		log: o.Log.WithValues("controller", "maintenance")}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("maintenance").
		WithOptions(o.Controller).
		For(&storagev1alpha1.Repository{}, builder.WithPredicates(pruneInputsChanged)).
		Owns(&batchv1.Job{}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up maintenance controller: %w", err)
	}
	return nil
}

// pruneInputsChanged passes the Repository events that change when its
// next prune is due or whether it may start: its spec, its configuration's
// label, its deletion, its phase and its last prune. The rest of its
// status moves with every backup and Snapshot counted, and woke this
// controller's one worker for nothing while backups run.
var pruneInputsChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	old, oldOK := e.ObjectOld.(*storagev1alpha1.Repository)
	updated, newOK := e.ObjectNew.(*storagev1alpha1.Repository)
	if !oldOK || !newOK {
		return true
	}
	return old.Generation != updated.Generation ||
		(old.DeletionTimestamp == nil) != (updated.DeletionTimestamp == nil) ||
		old.Labels[corev1alpha1.LabelInvokerName] != updated.Labels[corev1alpha1.LabelInvokerName] ||
		old.Status.Phase != updated.Status.Phase ||
		!old.Status.LastPruneTime.Equal(updated.Status.LastPruneTime)
}}

type reconciler struct {
	kube   client.Client
	clock  clock.Clock
	image  string
	events record.EventRecorder
	log    logr.Logger
}

func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	repo := &storagev1alpha1.Repository{}
	if err := r.kube.Get(ctx, req.NamespacedName, repo); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	m := repo.Spec.Maintenance
	if repo.DeletionTimestamp != nil || m == nil || m.Suspend || m.Schedule == "" || repo.Spec.Paused ||
		repo.Labels[corev1alpha1.LabelInvokerName] == "" || repo.Status.Phase != storagev1alpha1.RepositoryReady {
		return ctrl.Result{}, nil
	}
	sched, err := cronParser.Parse(m.Schedule)
	if err != nil {
		r.events.Eventf(repo, corev1.EventTypeWarning, "MaintenanceScheduleInvalid", "spec.maintenance.schedule %q does not parse: %v", m.Schedule, err)
		return ctrl.Result{}, nil
	}
	last, err := r.lastPrune(ctx, repo)
	if err != nil {
		return ctrl.Result{}, err
	}
	now := r.clock.Now()
	if next := sched.Next(last); next.After(now) {
		return ctrl.Result{RequeueAfter: next.Sub(now)}, nil
	}
	return r.start(ctx, repo)
}

// lastPrune is the later of the last prune, the start of the Repository's
// last prune Job and the Repository's creation.
func (r *reconciler) lastPrune(ctx context.Context, repo *storagev1alpha1.Repository) (time.Time, error) {
	last := repo.CreationTimestamp.Time
	if t := repo.Status.LastPruneTime; t != nil && t.After(last) {
		last = t.Time
	}
	job := &batchv1.Job{}
	err := r.kube.Get(ctx, client.ObjectKey{Namespace: repo.Namespace, Name: naming.PruneJob(repo.Name)}, job)
	if client.IgnoreNotFound(err) != nil {
		return last, fmt.Errorf("cannot get prune job %q: %w", naming.PruneJob(repo.Name), err)
	}
	// A hold (plan.HoldJob) in the prune Job's place is no prune.
	if err == nil && job.Labels[plan.LabelHoldFor] == "" && job.CreationTimestamp.After(last) {
		last = job.CreationTimestamp.Time
	}
	return last, nil
}

// start creates the prune Job once nothing blocks it.
func (r *reconciler) start(ctx context.Context, repo *storagev1alpha1.Repository) (ctrl.Result, error) {
	blocked, old, err := plan.PruneBlocked(ctx, r.kube, repo)
	if err != nil {
		return ctrl.Result{}, err
	}
	if blocked != "" {
		r.log.V(1).Info("scheduled prune waits", "repository", client.ObjectKeyFromObject(repo), "why", blocked)
		return ctrl.Result{RequeueAfter: blockedRecheck}, nil
	}
	if old != nil {
		// The finished Job goes first; its deletion brings the Repository
		// back here.
		if err := r.kube.Delete(ctx, old, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("cannot delete the finished prune job %q: %w", old.Name, err)
		}
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	st := &storagev1alpha1.BackupStorage{}
	if err := r.kube.Get(ctx, repo.StorageKey(), st); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot get the backupstorage of repository %q: %w", repo.Name, err)
	}
	job, err := plan.PruneJob(repo, st, r.image)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := controllerutil.SetControllerReference(repo, job, r.kube.Scheme()); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot own prune job %q: %w", job.Name, err)
	}
	if err := r.kube.Create(ctx, job); err != nil && !kerrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("cannot create prune job %q: %w", job.Name, err)
	}
	r.events.Eventf(repo, corev1.EventTypeNormal, "PruneStarted", "Started prune job %q on schedule %q", job.Name, repo.Spec.Maintenance.Schedule)
	return ctrl.Result{}, nil
}
