// Package restoresession reconciles RestoreSessions: one restore of a
// Snapshot, or some of its components, into a target. Before anything is
// made the controller checks, in order, that the session can be run as
// written, that its target exists, that the Repository exists, that the
// Snapshot (a name, or "latest": the newest Succeeded Snapshot of the
// Repository) exists and Succeeded, that a BackupStorage in another
// namespace admits the session's by its usagePolicy and can be mounted
// from it, and that the encryption Secret holds a password (a restore from
// another namespace must name its own). A failed check refuses the
// restore: no Job is made and nothing is overwritten (checks.go holds the
// chain). Then it composes a ServiceAccount with just what the agent
// needs, in every namespace it reads from (access.go), and the Jobs the
// addon's restore task renders, and derives the phase from what it
// observes:
//
//	RestoreTargetFound      set by this controller: the target exists
//	                        (False with RestoreTargetNotFound fails the
//	                        session).
//	RestoreExecutorEnsured  set by this controller: the restore Jobs were
//	                        created; False with the reason that refused the
//	                        restore, or that a Job could not be created, or
//	                        WaitingForPrune while a prune of the Repository
//	                        runs (prune.go; the session stays Pending).
//	RestoreIncomplete       set by this controller when a Job failed or
//	                        vanished, or the restore ran past its
//	                        restoreTimeout (RestoreTimedOut, Jobs deleted),
//	                        or its Jobs could not be created by then
//	                        (sessionrun.StartTimeout without a timeout),
//	                        or a pre-restore hook failed
//	                        (PreRestoreHookFailed, no Job made).
//	PreRestoreHooksExecutionSucceeded, PostRestoreHooksExecutionSucceeded
//	                        set by this controller once the hooks before
//	                        (after) the restore ended (hooks.go,
//	                        docs/hooks.md); a failed post hook fails the
//	                        session.
//
// Each component's phase comes from what the agent reported in
// status.components, else from its Job's outcome: a session is never left
// Running once its Jobs failed, vanished or timed out.
package restoresession

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/hookjob"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/hook"
	"github.com/stashplane/stashplane/internal/hookrun"
	"github.com/stashplane/stashplane/internal/sessionrun"
	"github.com/stashplane/stashplane/internal/version"
)

// Options configure the controller.
type Options struct {
	Controller controller.Options
	Log        logr.Logger
	Renderer   *render.Renderer
	Clock      clock.Clock
	// AmbientNamespaces may use storages of other namespaces that name no
	// credential Secret (tenancy.CheckStorage).
	AmbientNamespaces []string
	// ClusterDumpNamespaces may recreate a whole dump of the cluster
	// (sourceNamespace "*").
	ClusterDumpNamespaces []string
	// Hooks carries out hooks' actions; nil means a hook.Runner with the
	// manager's client configuration.
	Hooks hookrun.Runner
}

// Setup adds the RestoreSession controller to the manager.
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
			return fmt.Errorf("cannot set up restoresession controller: %w", err)
		}
		o.Hooks = h
	}
	jobs, err := hookjob.New(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetConfig(), o.Renderer, version.Image(), o.Clock)
	if err != nil {
		return fmt.Errorf("cannot set up restoresession controller: %w", err)
	}
	r := &reconciler{kube: mgr.GetClient(), reader: mgr.GetAPIReader(), renderer: o.Renderer, clock: o.Clock, image: version.Image(), ambient: o.AmbientNamespaces, clusterDump: o.ClusterDumpNamespaces,
		hooks: &hookrun.Executor{Kube: mgr.GetClient(), Hooks: o.Hooks, Jobs: jobs},
		log:   o.Log.WithValues("controller", "restoresession")}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("restoresession").
		WithOptions(o.Controller).
		For(&corev1alpha1.RestoreSession{}).
		Owns(&batchv1.Job{}).
		// Held as metadata: a change is all the controller needs to see
		// of its agent's account, and the cache would otherwise hold every
		// account and Role of the cluster whole.
		Owns(&corev1.ServiceAccount{}, builder.OnlyMetadata).
		Owns(&rbacv1.Role{}, builder.OnlyMetadata).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up restoresession controller: %w", err)
	}
	return nil
}

type reconciler struct {
	kube client.Client
	// reader reads from the API server, past the cache.
	reader   client.Reader
	renderer *render.Renderer
	clock    clock.Clock
	image    string
	hooks    *hookrun.Executor
	log      logr.Logger
	ambient  []string
	// clusterDump are the namespaces that may recreate a whole cluster
	// dump.
	clusterDump []string
}

func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rs := &corev1alpha1.RestoreSession{}
	if err := r.kube.Get(ctx, req.NamespacedName, rs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if rs.DeletionTimestamp != nil {
		if controllerutil.ContainsFinalizer(rs, finalizer) {
			return ctrl.Result{}, r.revokeAccess(ctx, rs)
		}
		return ctrl.Result{}, nil
	}
	before := rs.DeepCopy()
	var res ctrl.Result
	var err error
	if !done(phase(rs)) || unexplained(rs) {
		res, err = r.reconcile(ctx, rs)
	}
	rs.Status.Phase = phase(rs)
	// The agent reports the objects it kept with its component, which
	// may end the session: read on every pass.
	if msg := keptObjects(rs); msg != "" {
		sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeObjectsKept, true, corev1alpha1.ReasonObjectsExisted, msg)
	}
	if done(rs.Status.Phase) && rs.Status.Duration == "" {
		rs.Status.Duration = r.clock.Since(rs.CreationTimestamp.Time).Round(time.Second).String()
	}
	if !equality.Semantic.DeepEqual(before.Status, rs.Status) {
		if uerr := r.kube.Status().Update(ctx, rs); uerr != nil {
			return ctrl.Result{}, errors.Join(err, fmt.Errorf("cannot update restoresession status: %w", uerr))
		}
	}
	if done(rs.Status.Phase) {
		if controllerutil.ContainsFinalizer(rs, finalizer) {
			// Once the restore ended, the agent needs nothing any more.
			err = errors.Join(err, r.revokeAccess(ctx, rs))
		}
		return ctrl.Result{}, err
	}
	return res, err
}

// unexplained says whether a session failed by a component its agent
// reported Failed, before RestoreIncomplete says so.
func unexplained(rs *corev1alpha1.RestoreSession) bool {
	if rs.GetCondition(corev1alpha1.TypeRestoreExecutorEnsured).Status != corev1.ConditionTrue ||
		rs.GetCondition(corev1alpha1.TypeRestoreIncomplete).Status == corev1.ConditionTrue {
		return false
	}
	for _, c := range rs.Status.Components {
		if c.Phase == corev1alpha1.RestoreFailed {
			return true
		}
	}
	return false
}

func done(p corev1alpha1.RestorePhase) bool {
	return p == corev1alpha1.RestoreSucceeded || p == corev1alpha1.RestoreFailed || p == corev1alpha1.RestoreInvalid
}

func (r *reconciler) reconcile(ctx context.Context, rs *corev1alpha1.RestoreSession) (ctrl.Result, error) {
	rn := &run{rs: rs}
	if done(workPhase(rs)) && !unexplained(rs) {
		// The restore has an outcome: only its post-restore hooks are
		// left.
		return sessionrun.RunSteps(ctx, rn, []sessionrun.Step[*run]{{Name: "postHooks", Run: r.postHooks}})
	}
	if rs.GetCondition(corev1alpha1.TypeRestoreExecutorEnsured).Status != corev1.ConditionTrue {
		// Every check runs before the Jobs exist; once they do, the
		// restore is under way and only watched.
		return sessionrun.RunSteps(ctx, rn, r.startSteps())
	}
	return sessionrun.RunSteps(ctx, rn, r.runningSteps())
}

// run is what one reconcile of a restore finds and its steps pass on.
type run struct {
	rs            *corev1alpha1.RestoreSession
	in            plan.Inputs
	inputs        []render.Input
	storageSecret string
}

// startSteps are the stages of a restore whose Jobs do not exist yet, in
// order: the check chain and the plan, which may refuse it, the wait for
// a prune of its Repository (prune.go), the access its agents need, the pre-restore hooks and the Jobs.
func (r *reconciler) startSteps() []sessionrun.Step[*run] {
	return []sessionrun.Step[*run]{
		{Name: "check", Run: r.checkStart},
		{Name: "prune", Run: r.waitForPrune},
		{Name: "access", Run: r.access},
		{Name: "preHooks", Run: r.preHooks},
		{Name: "jobs", Run: r.jobs},
	}
}

// runningSteps are the stages of a restore whose Jobs exist: the data of
// a target being recreated, once it exists (deferredData), its outcome and
// then the post-restore hooks.
func (r *reconciler) runningSteps() []sessionrun.Step[*run] {
	return []sessionrun.Step[*run]{{Name: "deferredData", Run: r.deferredData}, {Name: "outcome", Run: r.outcome}, {Name: "postHooks", Run: r.postHooks}}
}

// recreates says whether a planned task recreates objects from resource
// manifests.
func recreates(inputs []render.Input) bool {
	for _, in := range inputs {
		if in.Context.Component == storagev1alpha1.ComponentManifest {
			return true
		}
	}
	return false
}

// deferredData plans and starts the data restore of a target that a task
// recreates from the Snapshot's resource manifests, once that task has
// made it: its workloads are held without pods meanwhile, and its agent
// starts them when the data is back. The start's checks run again, so a
// Snapshot or a Secret gone since ends the restore.
func (r *reconciler) deferredData(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	rs := rn.rs
	if c := rs.GetCondition(corev1alpha1.TypeRestoreTargetFound); c.Reason != corev1alpha1.ReasonRestoreTargetRecreating || c.Status == corev1.ConditionTrue {
		return ctrl.Result{}, false, nil
	}
	rec, err := recreatesObjects(ctx, r.kube, rs)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	if rec.dryRun {
		// A dry run makes no target and has no data to restore: the
		// session ends with its objects' outcomes.
		return ctrl.Result{}, false, nil
	}
	t := rs.Spec.Target
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: t.APIGroup, Version: "v1", Kind: t.Kind})
	err = r.kube.Get(ctx, client.ObjectKey{Namespace: rs.Namespace, Name: t.Name}, u)
	if kerrors.IsNotFound(err) {
		// Not made yet; the outcome step ends the session if the task
		// that makes it failed.
		res, err := r.watchExecution(ctx, rs)
		return ctrl.Result{RequeueAfter: min(res.RequeueAfter, 3*time.Second)}, true, err
	}
	if err != nil {
		return ctrl.Result{}, true, fmt.Errorf("cannot get target %s %q: %w", t.Kind, t.Name, err)
	}
	in, reason, msg, err := r.check(ctx, rs)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	var inputs []render.Input
	if reason == "" {
		inputs, reason, msg = planRestore(rs, in)
	}
	if reason != "" {
		sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeRestoreIncomplete, true, reason, "the recreated target's data cannot be restored: "+msg)
		return ctrl.Result{}, false, nil
	}
	var data []render.Input
	for _, input := range inputs {
		if _, started := rs.Status.Components[input.Context.Component]; !started {
			data = append(data, input)
		}
	}
	secret, err := r.ensureAccess(ctx, rs, in, true)
	if err == nil {
		err = r.ensureJobs(ctx, rs, data, secret)
	}
	if err != nil {
		// Found, but its data is not under way: this step runs again.
		sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeRestoreTargetFound, false, corev1alpha1.ReasonRestoreTargetRecreating, "the target exists; its data restore could not start yet")
		res, err := r.cannotStart(rs, err)
		return res, true, err
	}
	return ctrl.Result{RequeueAfter: 2 * time.Second}, true, nil
}

// checkStart runs the check chain (checks.go) and plans the restore; a
// refusal ends the session without a Job.
func (r *reconciler) checkStart(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	rs := rn.rs
	in, reason, msg, err := r.check(ctx, rs)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	if reason == "" {
		rn.inputs, reason, msg = planRestore(rs, in)
	}
	if reason == "" && in.ObjectsOnly && len(rn.inputs) == 0 {
		t := rs.Spec.Target
		reason, msg = corev1alpha1.ReasonRestoreTargetNotFound, fmt.Sprintf("%s %q does not exist in namespace %q, and snapshot %q holds no resource manifests to recreate it from",
			t.Kind, t.Name, rs.Namespace, in.Snapshot.Name)
	}
	if reason != "" {
		r.log.V(1).Info("refusing restore", "restoresession", client.ObjectKeyFromObject(rs), "reason", reason)
		sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeRestoreExecutorEnsured, false, reason, msg)
		return ctrl.Result{}, true, nil
	}
	rn.in = in
	return ctrl.Result{}, false, nil
}

// access grants the agents what they need (access.go).
func (r *reconciler) access(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	var err error
	if rn.storageSecret, err = r.ensureAccess(ctx, rn.rs, rn.in, recreates(rn.inputs)); err != nil {
		res, err := r.cannotStart(rn.rs, err)
		return res, true, err
	}
	return ctrl.Result{}, false, nil
}

// jobs renders the planned tasks and creates their Jobs.
func (r *reconciler) jobs(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	if err := r.ensureJobs(ctx, rn.rs, rn.inputs, rn.storageSecret); err != nil {
		res, err := r.cannotStart(rn.rs, err)
		return res, true, err
	}
	sessionrun.SetCondition(r.clock, rn.rs, corev1alpha1.TypeRestoreExecutorEnsured, true, corev1alpha1.ReasonRestoreExecutorEnsured, "")
	// The Jobs just made may not be in the cache yet; look again soon.
	return ctrl.Result{RequeueAfter: 2 * time.Second}, true, nil
}

// outcome takes each component's phase from its agent or its Job.
func (r *reconciler) outcome(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	res, err := r.watchExecution(ctx, rn.rs)
	return res, false, err
}

// keptObjects says which objects a task that recreates them found in the
// session's namespace and kept, the first five by name, or "".
func keptObjects(rs *corev1alpha1.RestoreSession) string {
	var kept []string
	total := 0
	for _, name := range sortedKeys(rs.Status.Components) {
		for _, o := range rs.Status.Components[name].Resources {
			if o.Result != corev1alpha1.ResourceKept {
				continue
			}
			total++
			if len(kept) < 5 {
				kept = append(kept, o.Kind+" "+o.Name)
			}
		}
	}
	if total == 0 {
		return ""
	}
	if total > len(kept) {
		kept = append(kept, fmt.Sprintf("and %d more (status.components.*.resources)", total-len(kept)))
	}
	return fmt.Sprintf("%d objects of the snapshot existed in namespace %q and were kept as they are, not replaced: %s; the task's overwriteResources parameter replaces them",
		total, rs.Namespace, strings.Join(kept, ", "))
}

// cannotStart handles a restore whose access or Jobs cannot be made: it
// says so in RestoreExecutorEnsured and is retried until the session's
// deadline (sessionrun.Deadline: its restoreTimeout, else
// sessionrun.StartTimeout), past which the restore is incomplete and
// fails, so that a verification waiting for it gets an outcome.
func (r *reconciler) cannotStart(rs *corev1alpha1.RestoreSession, err error) (ctrl.Result, error) {
	sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeRestoreExecutorEnsured, false, corev1alpha1.ReasonRestoreExecutorNotEnsured, err.Error())
	if d := sessionrun.Deadline(rs.CreationTimestamp.Time, rs.Spec.RestoreTimeout, false); !r.clock.Now().After(*d) {
		return ctrl.Result{}, err
	}
	sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeRestoreIncomplete, true, corev1alpha1.ReasonRestoreTimedOut,
		fmt.Sprintf("the restore jobs could not be created before the session's deadline: %v", err))
	return ctrl.Result{}, nil
}

// refusals are the reasons of a RestoreExecutorEnsured=False that end the
// session without a Job, with the phase each gives.
var refusals = map[xpv2.ConditionReason]corev1alpha1.RestorePhase{
	corev1alpha1.ReasonRestoreSpecInvalid:              corev1alpha1.RestoreInvalid,
	corev1alpha1.ReasonRestoreTargetNotFound:           corev1alpha1.RestoreFailed,
	corev1alpha1.ReasonRestoreRepositoryNotFound:       corev1alpha1.RestoreFailed,
	corev1alpha1.ReasonRestoreSnapshotNotFound:         corev1alpha1.RestoreFailed,
	corev1alpha1.ReasonRestoreSnapshotNotSucceeded:     corev1alpha1.RestoreFailed,
	corev1alpha1.ReasonRestoreEncryptionSecretNotFound: corev1alpha1.RestoreFailed,
	corev1alpha1.ReasonRestoreEncryptionSecretRequired: corev1alpha1.RestoreInvalid,
	corev1alpha1.ReasonRestoreNamespaceNotAllowed:      corev1alpha1.RestoreFailed,
	corev1alpha1.ReasonRestoreStorageNotReachable:      corev1alpha1.RestoreFailed,
}

// phase is the restore's outcome (workPhase) once the post-restore hooks
// it owes ran: Running while they are left, Failed when one failed.
func phase(rs *corev1alpha1.RestoreSession) corev1alpha1.RestorePhase {
	p := workPhase(rs)
	if !done(p) {
		return p
	}
	switch hookrun.After(rs.Status.Hooks.PostHooks, rs.GetCondition(corev1alpha1.TypePostRestoreHooksExecutionSucceeded)) {
	case hookrun.Pending:
		return corev1alpha1.RestoreRunning
	case hookrun.PostFailed:
		return corev1alpha1.RestoreFailed
	}
	return p
}

// workPhase is derived from the conditions and the components recorded in
// status: Invalid or Failed when the restore was refused, Failed when it
// is incomplete or a component failed, Succeeded when every component
// succeeded, Pending before the Jobs exist and Running while they work.
func workPhase(rs *corev1alpha1.RestoreSession) corev1alpha1.RestorePhase {
	ex := rs.GetCondition(corev1alpha1.TypeRestoreExecutorEnsured)
	if p, ok := refusals[ex.Reason]; ok && ex.Status == corev1.ConditionFalse {
		return p
	}
	if tf := rs.GetCondition(corev1alpha1.TypeRestoreTargetFound); tf.Status == corev1.ConditionFalse && tf.Reason != corev1alpha1.ReasonRestoreTargetRecreating {
		return corev1alpha1.RestoreFailed
	}
	if rs.GetCondition(corev1alpha1.TypeRestoreIncomplete).Status == corev1.ConditionTrue {
		return corev1alpha1.RestoreFailed
	}
	failed, unfinished := false, false
	for _, c := range rs.Status.Components {
		switch c.Phase {
		case corev1alpha1.RestoreFailed:
			failed = true
		case corev1alpha1.RestoreSucceeded:
		default:
			unfinished = true
		}
	}
	// A failed component fails the restore once the others ended.
	if failed && !unfinished {
		return corev1alpha1.RestoreFailed
	}
	if failed {
		return corev1alpha1.RestoreRunning
	}
	if ex.Status != corev1.ConditionTrue {
		return corev1alpha1.RestorePending
	}
	succeeded := 0
	for _, c := range rs.Status.Components {
		if c.Phase == corev1alpha1.RestoreSucceeded {
			succeeded++
		}
	}
	if rs.Status.TotalComponents > 0 && succeeded == int(rs.Status.TotalComponents) {
		return corev1alpha1.RestoreSucceeded
	}
	return corev1alpha1.RestoreRunning
}

// observe derives each component's state: what its agent reported when it
// reported an outcome, else its Job's outcome. A Job that failed or is
// gone (once settled, so that a Job just created is not taken for gone)
// fails its component. It returns the reason and message that make the
// restore incomplete, or "". A Job named in stuck (by name, with why) has
// a pod that cannot start and fails its component.
func observe(prev map[string]corev1alpha1.ComponentRestoreStatus, jobs []batchv1.Job, settled bool, stuck map[string]string) (map[string]corev1alpha1.ComponentRestoreStatus, xpv2.ConditionReason, string) {
	byComponent := map[string]*batchv1.Job{}
	for i := range jobs {
		byComponent[jobs[i].Labels[corev1alpha1.LabelComponent]] = &jobs[i]
	}
	out := map[string]corev1alpha1.ComponentRestoreStatus{}
	var reason xpv2.ConditionReason
	var msg string
	fail := func(m string) {
		if reason == "" {
			reason, msg = corev1alpha1.ReasonRestoreExecutorFailed, m
		}
	}
	for _, name := range sortedKeys(prev) {
		c := prev[name]
		switch c.Phase {
		case corev1alpha1.RestoreSucceeded:
		case corev1alpha1.RestoreFailed:
			fail(fmt.Sprintf("component %q failed: %s", name, c.Error))
		default:
			j, ok := byComponent[name]
			switch outcome := jobOutcome(j); {
			case !ok && settled:
				c.Phase, c.Error = corev1alpha1.RestoreFailed, "the restore job is gone"
				fail(fmt.Sprintf("component %q failed: %s", name, c.Error))
			case !ok:
			case outcome == batchv1.JobFailed:
				c.Phase, c.Error = corev1alpha1.RestoreFailed, fmt.Sprintf("restore job %q failed: %s", j.Name, jobMessage(j, batchv1.JobFailed))
				fail(fmt.Sprintf("component %q failed: %s", name, c.Error))
			case outcome == batchv1.JobComplete:
				c.Phase = corev1alpha1.RestoreSucceeded
			case stuck[j.Name] != "":
				c.Phase, c.Error = corev1alpha1.RestoreFailed, fmt.Sprintf("restore job %q: %s", j.Name, stuck[j.Name])
				fail(fmt.Sprintf("component %q failed: %s", name, c.Error))
			case j.Status.Active > 0 && c.Phase != corev1alpha1.RestoreRunning:
				c.Phase = corev1alpha1.RestoreRunning
			}
		}
		out[name] = c
	}
	// A failed component ends the restore only once the others ended:
	// stopping them would leave their data half restored, and their
	// outcomes are what a verification reports beside the failure.
	for _, c := range out {
		if c.Phase != corev1alpha1.RestoreSucceeded && c.Phase != corev1alpha1.RestoreFailed {
			return out, "", ""
		}
	}
	return out, reason, msg
}

// jobOutcome is JobComplete or JobFailed once a Job ended, else "".
func jobOutcome(j *batchv1.Job) batchv1.JobConditionType {
	if j == nil {
		return ""
	}
	for _, c := range j.Status.Conditions {
		if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
			return c.Type
		}
	}
	return ""
}

func jobMessage(j *batchv1.Job, t batchv1.JobConditionType) string {
	for _, c := range j.Status.Conditions {
		if c.Type == t {
			if c.Message != "" {
				return c.Message
			}
			return c.Reason
		}
	}
	return ""
}

func sortedKeys(m map[string]corev1alpha1.ComponentRestoreStatus) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
