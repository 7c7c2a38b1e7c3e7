package backupconfiguration

import (
	"context"
	"errors"
	"fmt"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/cachestore"
	"github.com/stashplane/stashplane/internal/schedule"
	"github.com/stashplane/stashplane/internal/trigger"
	"github.com/stashplane/stashplane/internal/version"
)

// The scheduler controller owns two conditions:
//
//	SchedulerEnsured        set and cleared by the scheduler controller:
//	                        True once the Repositories, the ServiceAccount
//	                        (with what it needs in the namespaces of
//	                        storages of other namespaces, access.go) and one
//	                        CronJob per session of a validated
//	                        configuration are applied.
//	InitialBackupTriggered  set by the scheduler controller, once: True after
//	                        it started the first backup of every session, as
//	                        soon as the configuration was scheduled and its
//	                        Repositories were Ready. It is never cleared.
const fieldOwner = client.FieldOwner("stashplane-backupconfiguration")

type scheduler struct {
	kube client.Client
	// api reads from the API server, past the cache.
	api   client.Reader
	log   logr.Logger
	clock clock.Clock
	image string
	// ambient are the namespaces that may use storages without a Secret.
	ambient []string
	// applied skips applies of objects already as wanted.
	applied *applied
}

func setupScheduler(mgr ctrl.Manager, o Options) error {
	s := &scheduler{kube: mgr.GetClient(), api: mgr.GetAPIReader(), log: o.Log.WithValues("controller", "backupconfiguration-scheduler"), clock: o.Clock, image: version.Image(), ambient: o.AmbientNamespaces, applied: newApplied()}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("backupconfiguration-scheduler").
		WithOptions(o.Controller).
		For(&corev1alpha1.BackupConfiguration{}).
		// What the scheduler composes beside the Repository is held as
		// metadata, which is all it reads of them (applied.go).
		Owns(&batchv1.CronJob{}, builder.OnlyMetadata).
		// Repositories carry the configuration's label, not its owner
		// reference: deleting a configuration keeps them, their
		// Snapshots and their data (docs/retention.md).
		Watches(&storagev1alpha1.Repository{}, handler.EnqueueRequestsFromMapFunc(configurationOfRepository), builder.WithPredicates(repositoryChanged)).
		// The copies of storage Secrets (access.go): remade when deleted,
		// refreshed when their source changes.
		Owns(&corev1.Secret{}, builder.OnlyMetadata).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(s.usersOfSecret)).
		// A storage's access mode decides what the copies hold.
		Watches(&storagev1alpha1.BackupStorage{}, handler.EnqueueRequestsFromMapFunc(s.usersOfStorage), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A verifier made after the configuration changes its
		// repositories' verificationConfigured.
		Watches(&corev1alpha1.BackupVerifier{}, handler.EnqueueRequestsFromMapFunc(s.configurationsOf)).
		Complete(s)
	if err != nil {
		return fmt.Errorf("cannot set up backupconfiguration-scheduler controller: %w", err)
	}
	return nil
}

func (s *scheduler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bc := &corev1alpha1.BackupConfiguration{}
	if err := s.kube.Get(ctx, req.NamespacedName, bc); err != nil {
		if kerrors.IsNotFound(err) {
			s.applied.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if bc.DeletionTimestamp != nil {
		s.applied.forget(req.NamespacedName)
		if controllerutil.ContainsFinalizer(bc, finalizer) {
			return ctrl.Result{}, s.revokeRemoteAccess(ctx, bc)
		}
		return ctrl.Result{}, nil
	}
	before := bc.DeepCopy()
	valid := bc.GetCondition(corev1alpha1.TypeValidationPassed)
	if valid.Status != corev1.ConditionTrue || valid.ObservedGeneration != bc.Generation {
		// Nothing is composed from a configuration that has not passed
		// validation at its current generation. What it was granted in
		// other namespaces goes once it failed it for a storage that no
		// longer admits its namespace, or is gone; a storage that is only
		// not ready keeps its grant and its refreshed Secret copy, so a
		// rotation of its credentials or an outage revokes nothing.
		if valid.Status == corev1.ConditionFalse && valid.ObservedGeneration == bc.Generation && controllerutil.ContainsFinalizer(bc, finalizer) {
			return ctrl.Result{}, s.ensureRemoteAccess(ctx, bc)
		}
		return ctrl.Result{}, nil
	}
	err := s.compose(ctx, bc)
	c := xpv2.Condition{Type: corev1alpha1.TypeSchedulerEnsured, Status: corev1.ConditionTrue,
		Reason: corev1alpha1.ReasonSchedulerEnsured, LastTransitionTime: metav1.NewTime(s.clock.Now()), ObservedGeneration: bc.Generation}
	if err != nil {
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, corev1alpha1.ReasonSchedulerNotEnsured, err.Error()
	}
	bc.SetConditions(c)
	if err == nil {
		err = s.repositoryStatus(ctx, bc)
	}
	if err == nil && before.Status.Phase == corev1alpha1.BackupInvokerReady {
		// Sessions check that their configuration is Ready, so the first
		// backup starts only once Ready is recorded.
		err = s.initialBackup(ctx, bc)
	}
	s.sessionStatus(bc)
	bc.Status.Phase = phase(bc, false)
	if !equality.Semantic.DeepEqual(before.Status, bc.Status) {
		if uerr := s.kube.Status().Update(ctx, bc); uerr != nil {
			return ctrl.Result{}, fmt.Errorf("cannot update backupconfiguration status: %w", uerr)
		}
	}
	res := ctrl.Result{}
	if storages, serr := s.remoteStorages(ctx, bc); serr == nil && brokered(storages) {
		// The grant its Jobs hold for a brokered storage is minted anew
		// each renewal period, long before the one held expires.
		res.RequeueAfter = accessor.GrantRenewal / 4
	}
	return res, err
}

// compose applies what the configuration wants and removes the CronJobs of
// sessions it no longer has. It never removes a Repository: one dropped
// from the spec, or of a deleted configuration, stays with its Snapshots
// and data until a user deletes it (docs/retention.md).
func (s *scheduler) compose(ctx context.Context, bc *corev1alpha1.BackupConfiguration) error {
	var objs []client.Object
	for _, r := range desiredRepositories(bc) {
		objs = append(objs, r)
	}
	readsObjects, err := storesObjects(ctx, s.kube, bc)
	if err != nil {
		return err
	}
	objs = append(objs, desiredAccess(bc, readsObjects)...)
	want := map[string]bool{}
	for _, cj := range desiredCronJobs(bc, s.image) {
		want[cj.Name] = true
		objs = append(objs, cj)
	}
	for _, o := range objs {
		if _, repo := o.(*storagev1alpha1.Repository); !repo {
			if err := controllerutil.SetControllerReference(bc, o, s.kube.Scheme()); err != nil {
				return fmt.Errorf("cannot own %s %q: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
		}
	}
	for _, stage := range applyStages(objs) {
		if err := s.applyTogether(ctx, bc, stage); err != nil {
			return err
		}
	}
	if err := s.ensureRemoteAccess(ctx, bc); err != nil {
		return err
	}
	list := cachestore.MetadataList(batchv1.SchemeGroupVersion.WithKind("CronJob"))
	if err := s.kube.List(ctx, list, client.InNamespace(bc.Namespace), client.MatchingLabels(labels(bc))); err != nil {
		return fmt.Errorf("cannot list cronjobs: %w", err)
	}
	for _, cj := range list.Items {
		if want[cj.Name] || !metav1.IsControlledBy(&cj, bc) {
			continue
		}
		cj.SetGroupVersionKind(batchv1.SchemeGroupVersion.WithKind("CronJob"))
		if err := s.kube.Delete(ctx, &cj); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cannot delete cronjob %q of a removed session: %w", cj.Name, err)
		}
	}
	return nil
}

// applyConcurrency bounds the applies of one configuration in flight.
const applyConcurrency = 8

// applyStages splits a configuration's objects into the two rounds they
// are applied in. Objects of one round go together, one round trip to the
// API server rather than one per object, which is what a thousand
// configurations arriving at once wait on (docs/scale.md). The second
// round holds what depends on the first:
//   - a RoleBinding is admitted only once the Role it binds exists: the
//     provider holds no "bind", so the API server checks the Role's rules
//     against the provider's own;
//   - a CronJob starts Jobs that run as the ServiceAccount those bindings
//     give their rights to.
func applyStages(objs []client.Object) [][]client.Object {
	var first, second []client.Object
	for _, o := range objs {
		switch o.(type) {
		case *rbacv1.RoleBinding, *rbacv1.ClusterRoleBinding, *batchv1.CronJob:
			second = append(second, o)
		default:
			first = append(first, o)
		}
	}
	return [][]client.Object{first, second}
}

// applyTogether applies objs concurrently and returns the first error.
func (s *scheduler) applyTogether(ctx context.Context, bc *corev1alpha1.BackupConfiguration, objs []client.Object) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(applyConcurrency)
	for _, o := range objs {
		g.Go(func() error {
			if err := s.applied.apply(gctx, s.kube, client.ObjectKeyFromObject(bc), o, fieldOwner, client.ForceOwnership); err != nil {
				return fmt.Errorf("cannot apply %s %q: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
			return nil
		})
	}
	return g.Wait()
}

// storesObjects says whether a task of the configuration's sessions
// stores resource manifests (an Addon task of component "manifest"),
// whose Jobs read the namespace's objects.
func storesObjects(ctx context.Context, c client.Reader, bc *corev1alpha1.BackupConfiguration) (bool, error) {
	for _, sess := range bc.Spec.Sessions {
		if sess.Addon == nil {
			continue
		}
		a := &addonsv1alpha1.Addon{}
		if err := c.Get(ctx, client.ObjectKey{Name: sess.Addon.Name}, a); err != nil {
			return false, fmt.Errorf("cannot get addon %q: %w", sess.Addon.Name, err)
		}
		for _, ref := range sess.Addon.Tasks {
			if t, err := render.FindTask(a, render.TaskBackup, ref.Name); err == nil && t.Component == storagev1alpha1.ComponentManifest {
				return true, nil
			}
		}
	}
	return false, nil
}

// repositoryStatus reports each composed Repository's phase.
func (s *scheduler) repositoryStatus(ctx context.Context, bc *corev1alpha1.BackupConfiguration) error {
	bc.Status.Repositories = nil
	for _, want := range desiredRepositories(bc) {
		st := corev1alpha1.RepositoryStatus{Name: want.Name, Phase: storagev1alpha1.RepositoryNotReady}
		r := &storagev1alpha1.Repository{}
		if err := s.kube.Get(ctx, client.ObjectKeyFromObject(want), r); err == nil {
			st.Phase = r.Status.Phase
			if c := r.GetCondition(storagev1alpha1.TypeRepositoryInitialized); c.Status == corev1.ConditionFalse {
				st.Reason = c.Message
			}
		} else if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cannot get repository %q: %w", want.Name, err)
		}
		configured, err := s.verificationConfigured(ctx, bc, want.Name)
		if err != nil {
			return err
		}
		st.VerificationConfigured = ptr.To(configured)
		if st.Phase == "" {
			st.Phase = storagev1alpha1.RepositoryNotReady
		}
		bc.Status.Repositories = append(bc.Status.Repositories, st)
	}
	return nil
}

// verificationConfigured says whether a session links the Repository to a
// BackupVerifier that exists.
func (s *scheduler) verificationConfigured(ctx context.Context, bc *corev1alpha1.BackupConfiguration, repository string) (bool, error) {
	for _, sess := range bc.Spec.Sessions {
		for _, ri := range sess.Repositories {
			v := ri.BackupVerifier
			if ri.Name != repository || v == nil || v.Name == "" {
				continue
			}
			ns := v.Namespace
			if ns == "" {
				ns = bc.Namespace
			}
			err := s.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: v.Name}, &corev1alpha1.BackupVerifier{})
			if err == nil {
				return true, nil
			}
			if client.IgnoreNotFound(err) != nil {
				return false, fmt.Errorf("cannot get backupverifier %s/%s: %w", ns, v.Name, err)
			}
		}
	}
	return false, nil
}

// initialBackup starts the first backup of every session once, as soon as
// the configuration is scheduled and every Repository is Ready.
func (s *scheduler) initialBackup(ctx context.Context, bc *corev1alpha1.BackupConfiguration) error {
	if bc.GetCondition(corev1alpha1.TypeInitialBackupTriggered).Status == corev1.ConditionTrue || bc.Spec.Paused {
		return nil
	}
	for _, r := range bc.Status.Repositories {
		if r.Phase != storagev1alpha1.RepositoryReady {
			return nil
		}
	}
	// The first run is named from the configuration's creation, so a retry
	// after a failed status write finds it instead of starting another.
	first := bc.CreationTimestamp.Time
	var errs []error
	for _, sess := range bc.Spec.Sessions {
		if _, err := trigger.Create(ctx, s.kube, bc, sess.Name, first); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	bc.SetConditions(xpv2.Condition{Type: corev1alpha1.TypeInitialBackupTriggered, Status: corev1.ConditionTrue,
		Reason: corev1alpha1.ReasonInitialBackupTriggered, LastTransitionTime: metav1.NewTime(s.clock.Now())})
	return nil
}

// sessionStatus reports each session's next scheduled run.
func (s *scheduler) sessionStatus(bc *corev1alpha1.BackupConfiguration) {
	now := s.clock.Now()
	out := make([]corev1alpha1.SessionStatus, 0, len(bc.Spec.Sessions))
	for _, sess := range bc.Spec.Sessions {
		st := corev1alpha1.SessionStatus{Name: sess.Name}
		for _, old := range bc.Status.Sessions {
			if old.Name == sess.Name {
				st = old
			}
		}
		if sess.Scheduler != nil && !bc.Spec.Paused {
			if sched, err := schedule.Parse(sess.Scheduler.Schedule); err == nil {
				next := metav1.NewTime(sched.Next(now).Truncate(time.Second))
				if st.NextSchedule == nil || st.NextSchedule.Before(&metav1.Time{Time: now}) {
					st.NextSchedule = &next
				}
			}
		} else {
			st.NextSchedule = nil
		}
		out = append(out, st)
	}
	bc.Status.Sessions = out
}

// configurationOfRepository is the configuration whose label a Repository
// carries.
// repositoryChanged passes the Repository updates the scheduler acts on:
// its spec, labels or deletion, and the phase and initialization it
// reports. A Repository's Snapshot count and recent Snapshots change with
// every backup of a busy cluster and matter to no configuration.
var repositoryChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*storagev1alpha1.Repository)
	n, ok2 := e.ObjectNew.(*storagev1alpha1.Repository)
	if !ok1 || !ok2 {
		return true
	}
	return o.Generation != n.Generation || !equality.Semantic.DeepEqual(o.Labels, n.Labels) ||
		(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) || o.Status.Phase != n.Status.Phase ||
		!o.GetCondition(storagev1alpha1.TypeRepositoryInitialized).Equal(n.GetCondition(storagev1alpha1.TypeRepositoryInitialized))
}}

func configurationOfRepository(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[corev1alpha1.LabelInvokerName]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}

// configurationsOf lists the configurations in a verifier's namespace.
func (s *scheduler) configurationsOf(ctx context.Context, o client.Object) []reconcile.Request {
	list := &corev1alpha1.BackupConfigurationList{}
	if err := s.kube.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		s.log.Error(err, "cannot list backupconfigurations")
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, bc := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bc)})
	}
	return out
}
