package restoresession

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/hook"
	"github.com/stashplane/stashplane/internal/hookrun"
	"github.com/stashplane/stashplane/internal/sessionrun"
)

func restoreHooks(rs *corev1alpha1.RestoreSession) (pre, post []corev1alpha1.HookInfo) {
	if rs.Spec.Hooks == nil {
		return nil, nil
	}
	return rs.Spec.Hooks.PreRestore, rs.Spec.Hooks.PostRestore
}

// preHooks runs the pre-restore hooks, one attempt per reconcile, once the
// checks passed and the agents' access exists, before any Job. It records
// the post-restore hooks the restore owes at the same time. A failed
// pre-restore hook makes the restore incomplete: no Job is made, nothing
// is overwritten, and the post-restore hooks still run by their policy.
func (r *reconciler) preHooks(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	rs := rn.rs
	pre, post := restoreHooks(rs)
	if len(rs.Status.Hooks.PostHooks) == 0 {
		for _, h := range post {
			rs.Status.Hooks.PostHooks = append(rs.Status.Hooks.PostHooks, corev1alpha1.HookExecutionStatus{Name: h.Name, Phase: corev1alpha1.HookPending})
		}
	}
	if rs.GetCondition(corev1alpha1.TypePreRestoreHooksExecutionSucceeded).Status == corev1.ConditionTrue ||
		(len(pre) == 0 && len(rs.Status.Hooks.PreHooks) == 0) {
		return ctrl.Result{}, false, nil
	}
	rep, err := r.hooks.Record(ctx, r.clock, rs, corev1alpha1.TypePreRestoreHooksExecutionSucceeded,
		hookrun.Stage{Namespace: rs.Namespace, Hooks: pre, Status: &rs.Status.Hooks.PreHooks, Target: r.hookTarget(ctx, rs), Vars: restoreVars(rs, "Running"), Save: r.saver(rs), Owner: rs})
	switch {
	case err != nil:
		return ctrl.Result{}, true, err
	case rep.State == hookrun.Running:
		return ctrl.Result{RequeueAfter: rep.Requeue()}, true, nil
	case rep.State == hookrun.Failed:
		sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeRestoreIncomplete, true, corev1alpha1.ReasonPreRestoreHookFailed, "no restore ran: "+rep.Message)
		return ctrl.Result{RequeueAfter: rep.Requeue()}, true, nil
	}
	return ctrl.Result{}, false, nil
}

// postHooks runs the post-restore hooks the restore owes once it has an
// outcome, each by its executionPolicy.
func (r *reconciler) postHooks(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	rs := rn.rs
	outcome := workPhase(rs)
	if outcome != corev1alpha1.RestoreSucceeded && outcome != corev1alpha1.RestoreFailed {
		return ctrl.Result{}, false, nil
	}
	_, post := restoreHooks(rs)
	wait, err := r.hooks.RunPost(ctx, r.clock, rs, corev1alpha1.TypePostRestoreHooksExecutionSucceeded,
		hookrun.Stage{Namespace: rs.Namespace, Hooks: post, Status: &rs.Status.Hooks.PostHooks, Post: true,
			Succeeded: outcome == corev1alpha1.RestoreSucceeded, Target: r.hookTarget(ctx, rs), Vars: restoreVars(rs, string(outcome)), Save: r.saver(rs), Owner: rs})
	return ctrl.Result{RequeueAfter: wait}, wait > 0 || err != nil, err
}

// hookTarget aims hooks at the restore target's pods.
func (r *reconciler) hookTarget(ctx context.Context, rs *corev1alpha1.RestoreSession) hook.Target {
	sel, err := hookrun.TargetSelector(ctx, r.kube, rs.Namespace, rs.Spec.Target)
	if err != nil {
		r.log.V(1).Info("cannot find the target's pods for hooks", "error", err.Error())
	}
	return hook.Target{Namespace: rs.Namespace, Selector: sel}
}

func restoreVars(rs *corev1alpha1.RestoreSession, phase string) map[string]string {
	var snaps []string
	if s := rs.Spec.DataSource.Snapshot; s != "" {
		snaps = []string{s}
	}
	return hookrun.Run{Kind: corev1alpha1.RestoreSessionKind, Namespace: rs.Namespace, Session: rs.Name, Phase: phase,
		Snapshots: snaps, Target: rs.Spec.Target}.Vars()
}

// saver writes the session's status before a hook's attempt, so that the
// attempt runs only on the session's latest version.
func (r *reconciler) saver(rs *corev1alpha1.RestoreSession) func(context.Context) error {
	return func(ctx context.Context) error { return r.kube.Status().Update(ctx, rs) }
}
