// Package backupsession reconciles BackupSessions: one run of one session
// of a BackupConfiguration. The controller composes one Snapshot per
// repository of the session and the Jobs the session's addon task renders
// for them, and derives the session's phase from what it observes:
//
//	BackupSkipped          set by this controller when the invoker is not
//	                       Ready or another run of the same session is
//	                       still going; the session then ends Skipped.
//	BackupReplaced         set by this controller, reconciling a newer run
//	                       whose concurrencyPolicy is Replace, on the older
//	                       runs it replaces; each then ends (replace.go).
//	SnapshotsEnsured       set and cleared by this controller: the
//	                       session's Snapshots exist (False with
//	                       WaitingForPrune while a prune of one of its
//	                       Repositories runs, prune.go).
//	PreBackupHooksExecutionSucceeded
//	                       set by this controller once the pre-backup
//	                       hooks ended; False means no Job was made and
//	                       the Snapshots failed (hooks.go).
//	BackupExecutorEnsured  set and cleared by this controller: the backup
//	                       Jobs are rendered and created.
//	PostBackupHooksExecutionSucceeded
//	                       set by this controller once the post-backup
//	                       hooks due by their executionPolicy ended; the
//	                       session stays Running until then, and fails
//	                       when one failed.
//	SessionHistoryCleaned  set by this controller after it removed the
//	                       invoker's sessions beyond sessionHistoryLimit.
//
// A session is never left Running when its Job failed or is gone, nor past
// its backupTimeout, nor when its Jobs cannot be created by that deadline
// (or, without one, within sessionrun.StartTimeout): the Snapshots it waits
// for are marked BackupIncomplete and the session fails, so the next run
// is not skipped for it. A retry, when the session has retries left, is a
// new BackupSession made the configured delay after the failed run ended;
// the history keeps sessionHistoryLimit sessions that gave a result and as
// many Skipped ones (internal/sessionrun holds these rules for every kind).
package backupsession

import (
	"context"
	"errors"
	"fmt"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/hookjob"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/hook"
	"github.com/stashplane/stashplane/internal/hookrun"
	"github.com/stashplane/stashplane/internal/keylock"
	"github.com/stashplane/stashplane/internal/sessionrun"
	"github.com/stashplane/stashplane/internal/version"
)

// Options configure the controller.
type Options struct {
	Controller controller.Options
	Log        logr.Logger
	Renderer   *render.Renderer
	Clock      clock.Clock
	// Hooks carries out hooks' actions; nil means a hook.Runner with the
	// manager's client configuration.
	Hooks hookrun.Runner
}

// Setup adds the BackupSession controller to the manager.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Renderer == nil {
		o.Renderer = render.New(render.Options{})
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Hooks == nil {
		h, err := hook.NewRunner(mgr.GetConfig(), o.Clock)
		if err != nil {
			return fmt.Errorf("cannot set up backupsession controller: %w", err)
		}
		o.Hooks = h
	}
	jobs, err := hookjob.New(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetConfig(), o.Renderer, version.Image(), o.Clock)
	if err != nil {
		return fmt.Errorf("cannot set up backupsession controller: %w", err)
	}
	r := &reconciler{kube: mgr.GetClient(), api: mgr.GetAPIReader(), renderer: o.Renderer, clock: o.Clock, image: version.Image(),
		hooks: &hookrun.Executor{Kube: mgr.GetClient(), Hooks: o.Hooks, Jobs: jobs}, revoked: newRevocations(),
		log: o.Log.WithValues("controller", "backupsession")}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("backupsession").
		WithOptions(o.Controller).
		For(&corev1alpha1.BackupSession{}).
		Owns(&batchv1.Job{}).
		Watches(&storagev1alpha1.Snapshot{}, handler.EnqueueRequestsFromMapFunc(sessionOfSnapshot)).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up backupsession controller: %w", err)
	}
	return nil
}

func sessionOfSnapshot(_ context.Context, o client.Object) []reconcile.Request {
	s, ok := o.(*storagev1alpha1.Snapshot)
	if !ok || s.Spec.BackupSession == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: s.Namespace, Name: s.Spec.BackupSession}}}
}

type reconciler struct {
	kube client.Client
	// api reads from the API server, past the cache, where a just-created
	// object must be seen.
	api      client.Reader
	renderer *render.Renderer
	clock    clock.Clock
	image    string
	hooks    *hookrun.Executor
	log      logr.Logger
	// byConfiguration lets one worker at a time reconcile the sessions of
	// a configuration. What a session decides spans its configuration's
	// other sessions (concurrencyPolicy, Replace, retries, the history)
	// and nothing beyond them, so sessions of different configurations
	// run side by side: a hook attempt or a slow API call of one holds
	// back no other configuration's backups.
	byConfiguration keylock.Set
	// revoked are the runs whose report grant was deleted (report.go).
	revoked revocations
}

func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bs := &corev1alpha1.BackupSession{}
	if err := r.kube.Get(ctx, req.NamespacedName, bs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if bs.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	lock := r.byConfiguration.TryLock(bs.Namespace + "/" + bs.Spec.Invoker.Name)
	if lock == nil {
		return ctrl.Result{RequeueAfter: keylock.Retry}, nil
	}
	defer lock.Unlock()
	before := bs.DeepCopy()
	res, err := r.reconcile(ctx, bs)
	bs.Status.Phase = phase(bs)
	if done(bs.Status.Phase) && bs.Status.Duration == "" {
		bs.Status.Duration = r.clock.Since(bs.CreationTimestamp.Time).Round(time.Second).String()
	}
	if !equality.Semantic.DeepEqual(before.Status, bs.Status) {
		if uerr := r.kube.Status().Update(ctx, bs); uerr != nil {
			return ctrl.Result{}, errors.Join(err, fmt.Errorf("cannot update backupsession status: %w", uerr))
		}
	}
	return res, err
}

func done(p corev1alpha1.BackupSessionPhase) bool {
	return p == corev1alpha1.BackupSessionSucceeded || p == corev1alpha1.BackupSessionFailed || p == corev1alpha1.BackupSessionSkipped
}

func (r *reconciler) reconcile(ctx context.Context, bs *corev1alpha1.BackupSession) (ctrl.Result, error) {
	bc := &corev1alpha1.BackupConfiguration{}
	err := r.kube.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: bs.Spec.Invoker.Name}, bc)
	if kerrors.IsNotFound(err) {
		r.skip(bs, corev1alpha1.ReasonSkippedInvokerNotReady, fmt.Sprintf("backupconfiguration %q not found", bs.Spec.Invoker.Name))
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot get backupconfiguration: %w", err)
	}
	if done(phase(bs)) {
		return r.afterwards(ctx, bs, bc)
	}
	return sessionrun.RunSteps(ctx, &run{bs: bs, bc: bc}, r.runningSteps())
}

// run is what one reconcile of a session finds and its steps pass on.
type run struct {
	bs *corev1alpha1.BackupSession
	bc *corev1alpha1.BackupConfiguration
	// started says the Jobs were made once before this reconcile.
	started bool
	inputs  []render.Input
	snaps   []*storagev1alpha1.Snapshot
	// preFailed says why a pre-backup hook failed: no Job is made.
	preFailed string
	// ended says why a run a newer one replaced was ended: no hook or
	// Job starts, its unfinished Snapshots fail (replace.go).
	ended string
	// replacedPods are the pods of the runs this run replaced, by
	// Repository, for its new Snapshots.
	replacedPods map[string][]string
}

// runningSteps are the stages of a backup without an outcome, in order:
// the check that may skip it, the end of a run a newer one replaced, the
// wait for the runs this one replaces, the wait for a prune, the plan, the Snapshots, the pre-backup
// hooks, the Jobs, the outcome and the post-backup hooks.
func (r *reconciler) runningSteps() []sessionrun.Step[*run] {
	return []sessionrun.Step[*run]{
		{Name: "skip", Run: r.checkSkip},
		{Name: "replaced", Run: r.endIfReplaced},
		{Name: "replace", Run: r.replaceOlder},
		{Name: "prune", Run: r.waitForPrune},
		{Name: "plan", Run: r.planRun},
		{Name: "snapshots", Run: r.snapshots},
		{Name: "preHooks", Run: r.preHooks},
		{Name: "jobs", Run: r.jobs},
		{Name: "outcome", Run: r.outcome},
		{Name: "postHooks", Run: r.postHooks},
	}
}

// finishedSteps run once a backup has an outcome and its post-backup hooks
// ran, each whatever the others did: the end of its Jobs' right to report,
// its retry and the history. Retention
// belongs before them.
func (r *reconciler) finishedSteps() []sessionrun.Step[*run] {
	return []sessionrun.Step[*run]{
		{Name: "revokeReport", Run: r.revokeReport},
		{Name: "retry", Run: r.retry},
		{Name: "history", Run: r.history},
	}
}

// checkSkip skips a session that has not started while its configuration
// is paused (a session made by hand too) or not Ready, or another run of
// the same session is going.
func (r *reconciler) checkSkip(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	bs := rn.bs
	if bs.GetCondition(corev1alpha1.TypeSnapshotsEnsured).Status == corev1.ConditionTrue {
		return ctrl.Result{}, false, nil
	}
	// A skip is final, so the configuration is read past the cache: a
	// pause made just before a session by hand is what decides it, not
	// another run the cache still shows going.
	bc := &corev1alpha1.BackupConfiguration{}
	err := r.api.Get(ctx, client.ObjectKeyFromObject(rn.bc), bc)
	if kerrors.IsNotFound(err) {
		r.skip(bs, corev1alpha1.ReasonSkippedInvokerNotReady, fmt.Sprintf("backupconfiguration %q not found", rn.bc.Name))
		return ctrl.Result{}, true, nil
	}
	if err != nil {
		return ctrl.Result{}, true, fmt.Errorf("cannot get backupconfiguration: %w", err)
	}
	rn.bc = bc
	if bc.Spec.Paused {
		r.skip(bs, corev1alpha1.ReasonSkippedInvokerPaused, fmt.Sprintf("backupconfiguration %q is paused", bc.Name))
		return ctrl.Result{}, true, nil
	}
	msg := r.skipReason(ctx, bs, bc)
	if msg == "" {
		return ctrl.Result{}, false, nil
	}
	reason := corev1alpha1.ReasonSkippedConcurrentSession
	if bc.Status.Phase != corev1alpha1.BackupInvokerReady {
		reason = corev1alpha1.ReasonSkippedInvokerNotReady
	}
	r.skip(bs, reason, msg)
	return ctrl.Result{}, true, nil
}

// planRun plans the session's tasks, once: a run whose Jobs were made
// reads its progress from them and its Snapshots, and plans nothing again.
// Planning reads the target's pods from the API server (the cache holds
// none of them), which every event of a running backup would pay for, and
// a plan that fails after the Jobs were made (the target deleted while
// they run) must not turn a started run back into one without Jobs.
func (r *reconciler) planRun(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	rn.started = rn.bs.GetCondition(corev1alpha1.TypeBackupExecutorEnsured).Status == corev1.ConditionTrue
	if rn.ended != "" || rn.started {
		return ctrl.Result{}, false, nil
	}
	var err error
	if rn.inputs, err = r.plan(ctx, rn.bs, rn.bc); err != nil {
		res, err := r.cannotStart(ctx, rn.bs, rn.started, err)
		return res, true, err
	}
	return ctrl.Result{}, false, nil
}

// snapshots makes the session's Snapshots; a session whose repositories
// are all paused is skipped.
func (r *reconciler) snapshots(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	bs := rn.bs
	if rn.ended != "" {
		// A run that was ended makes no new Snapshot: it records those
		// it made.
		var err error
		rn.snaps, err = r.sessionSnapshots(ctx, bs)
		return ctrl.Result{}, err != nil, err
	}
	snaps, err := r.ensureSnapshots(ctx, bs, rn.bc, rn.started, componentCounts(rn.inputs), plan.ComponentNodes(rn.inputs), rn.replacedPods)
	if err != nil {
		sessionrun.SetCondition(r.clock, bs, corev1alpha1.TypeSnapshotsEnsured, false, corev1alpha1.ReasonSnapshotsNotEnsured, err.Error())
		return ctrl.Result{}, true, err
	}
	if len(snaps) == 0 {
		r.skip(bs, corev1alpha1.ReasonSkippedRepositoriesPaused, fmt.Sprintf("every repository of session %q is paused", bs.Spec.Session))
		return ctrl.Result{}, true, nil
	}
	rn.snaps = snaps
	sessionrun.SetCondition(r.clock, bs, corev1alpha1.TypeSnapshotsEnsured, true, corev1alpha1.ReasonSnapshotsEnsured, "")
	return ctrl.Result{}, false, nil
}

// jobs renders the planned tasks and creates their Jobs.
func (r *reconciler) jobs(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	if rn.preFailed != "" || rn.ended != "" {
		return ctrl.Result{}, false, nil
	}
	// Jobs are made once: one gone since is a failure the outcome
	// records, and one the outcome stopped must not come back because
	// the status that says so was not written yet.
	if rn.started {
		return ctrl.Result{}, false, nil
	}
	var jobAccount string
	if s := session(rn.bc, rn.bs.Spec.Session); s != nil {
		jobAccount = s.Addon.ServiceAccount()
	}
	if err := r.grantReport(ctx, rn.bs, rn.snaps, jobAccount); err != nil {
		res, err := r.cannotStart(ctx, rn.bs, rn.started, err)
		return res, true, err
	}
	if err := r.ensureJobs(ctx, rn.bs, rn.bc, rn.inputs, rn.snaps); err != nil {
		res, err := r.cannotStart(ctx, rn.bs, rn.started, err)
		return res, true, err
	}
	sessionrun.SetCondition(r.clock, rn.bs, corev1alpha1.TypeBackupExecutorEnsured, true, corev1alpha1.ReasonBackupExecutorEnsured, "")
	// The Jobs just made have no outcome to read yet, and the cache does
	// not hold them yet: reading it now would list them from the API
	// server. Their creation and this pass's status write wake the
	// session again.
	return ctrl.Result{}, true, nil
}

// outcome watches the Jobs and records the Snapshots' phases.
func (r *reconciler) outcome(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	if rn.ended != "" {
		return ctrl.Result{}, false, r.recordSnapshotsFor(ctx, rn.bs, rn.snaps, storagev1alpha1.ReasonReplacedByNewerRun, rn.ended)
	}
	if rn.preFailed != "" {
		return ctrl.Result{}, false, r.recordSnapshotsFor(ctx, rn.bs, rn.snaps, storagev1alpha1.ReasonPreBackupHookFailed, "no backup ran: "+rn.preFailed)
	}
	res, err := r.watchExecution(ctx, rn.bs, rn.snaps)
	return res, false, err
}

// skipReason says why a session must not start, or "": its configuration
// is not Ready, or another run of its session is going and the session's
// concurrencyPolicy is Forbid (Replace ends the other run, replace.go).
func (r *reconciler) skipReason(ctx context.Context, bs *corev1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration) string {
	if bc.Status.Phase != corev1alpha1.BackupInvokerReady {
		return fmt.Sprintf("backupconfiguration %q is %s", bc.Name, bc.Status.Phase)
	}
	for _, sess := range bc.Spec.Sessions {
		if sess.Name == bs.Spec.Session && sess.Scheduler != nil &&
			(sess.Scheduler.ConcurrencyPolicy == corev1alpha1.ConcurrencyAllow || sess.Scheduler.ConcurrencyPolicy == corev1alpha1.ConcurrencyReplace) {
			return ""
		}
	}
	list := &corev1alpha1.BackupSessionList{}
	if err := r.kube.List(ctx, list, client.InNamespace(bs.Namespace)); err != nil {
		return ""
	}
	for _, o := range list.Items {
		if o.Name == bs.Name || o.Spec.Invoker.Name != bs.Spec.Invoker.Name || o.Spec.Session != bs.Spec.Session {
			continue
		}
		if o.Status.Phase == corev1alpha1.BackupSessionRunning {
			return fmt.Sprintf("backupsession %q of the same session is still running", o.Name)
		}
	}
	return ""
}

func (r *reconciler) skip(bs *corev1alpha1.BackupSession, reason xpv2.ConditionReason, msg string) {
	sessionrun.SetCondition(r.clock, bs, corev1alpha1.TypeBackupSkipped, true, reason, msg)
}

// phase is derived from the conditions and the Snapshots' phases recorded
// in status: Skipped, Failed when a Snapshot failed or a post-backup hook
// failed, Succeeded when every Snapshot succeeded; a run whose Snapshots
// have an outcome stays Running while post-backup hooks are left to run.
func phase(bs *corev1alpha1.BackupSession) corev1alpha1.BackupSessionPhase {
	if bs.GetCondition(corev1alpha1.TypeBackupSkipped).Status == corev1.ConditionTrue {
		return corev1alpha1.BackupSessionSkipped
	}
	if bs.GetCondition(corev1alpha1.TypeSnapshotsEnsured).Status != corev1.ConditionTrue {
		return corev1alpha1.BackupSessionPending
	}
	p := snapshotsPhase(bs)
	if p == corev1alpha1.BackupSessionRunning {
		return p
	}
	switch hookrun.After(bs.Status.Hooks.PostHooks, bs.GetCondition(corev1alpha1.TypePostBackupHooksExecutionSucceeded)) {
	case hookrun.Pending:
		return corev1alpha1.BackupSessionRunning
	case hookrun.PostFailed:
		return corev1alpha1.BackupSessionFailed
	}
	return p
}
