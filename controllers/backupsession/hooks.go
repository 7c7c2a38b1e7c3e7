package backupsession

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/hook"
	"github.com/stashplane/stashplane/internal/hookrun"
)

// backupHooks are the hooks the session's spec lists now.
func backupHooks(bc *corev1alpha1.BackupConfiguration, name string) (pre, post []corev1alpha1.HookInfo) {
	s := session(bc, name)
	if s == nil || s.Hooks == nil {
		return nil, nil
	}
	return s.Hooks.PreBackup, s.Hooks.PostBackup
}

// preHooks runs the session's pre-backup hooks, one attempt per reconcile,
// once its Snapshots exist and before its Jobs. It records the post-backup
// hooks the run owes at the same time, so that the session is not called
// done before they ran. A failed pre-backup hook marks the Snapshots
// incomplete and keeps the Jobs from being made (rn.preFailed).
func (r *reconciler) preHooks(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	bs := rn.bs
	pre, post := backupHooks(rn.bc, bs.Spec.Session)
	started := bs.GetCondition(corev1alpha1.TypeBackupExecutorEnsured).Status == corev1.ConditionTrue
	if !started && len(bs.Status.Hooks.PostHooks) == 0 {
		for _, h := range post {
			bs.Status.Hooks.PostHooks = append(bs.Status.Hooks.PostHooks, corev1alpha1.HookExecutionStatus{Name: h.Name, Phase: corev1alpha1.HookPending})
		}
	}
	c := bs.GetCondition(corev1alpha1.TypePreBackupHooksExecutionSucceeded)
	if rn.ended != "" {
		// A replaced run starts no hook; the post-backup hooks it owes
		// still run by their executionPolicy.
		if len(bs.Status.Hooks.PostHooks) == 0 {
			for _, h := range post {
				bs.Status.Hooks.PostHooks = append(bs.Status.Hooks.PostHooks, corev1alpha1.HookExecutionStatus{Name: h.Name, Phase: corev1alpha1.HookPending})
			}
		}
		return ctrl.Result{}, false, nil
	}
	switch {
	case c.Status == corev1.ConditionFalse && c.Reason == corev1alpha1.ReasonHooksExecutionFailed:
		rn.preFailed = c.Message
		return ctrl.Result{}, false, nil
	case c.Status == corev1.ConditionTrue, started, len(pre) == 0 && len(bs.Status.Hooks.PreHooks) == 0:
		return ctrl.Result{}, false, nil
	}
	target := r.hookTarget(ctx, rn, "Running")
	rep, err := r.hooks.Record(ctx, r.clock, bs, corev1alpha1.TypePreBackupHooksExecutionSucceeded,
		hookrun.Stage{Namespace: bs.Namespace, Hooks: pre, Status: &bs.Status.Hooks.PreHooks, Target: target.Target, Vars: target.Vars, Save: r.saver(bs), Owner: bs})
	switch {
	case err != nil:
		return ctrl.Result{}, true, err
	case rep.State == hookrun.Running:
		return ctrl.Result{RequeueAfter: rep.Requeue()}, true, nil
	case rep.State == hookrun.Failed:
		rn.preFailed = rep.Message
		r.log.Info("a pre-backup hook failed: the backup does not run", "backupsession", bs.Namespace+"/"+bs.Name)
	}
	return ctrl.Result{}, false, nil
}

// postHooks runs the post-backup hooks the run owes once its Snapshots all
// have an outcome, each by its executionPolicy: Always hooks run after a
// failed backup or a failed pre-backup hook too.
func (r *reconciler) postHooks(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	bs := rn.bs
	outcome := snapshotsPhase(bs)
	if outcome != corev1alpha1.BackupSessionSucceeded && outcome != corev1alpha1.BackupSessionFailed {
		return ctrl.Result{}, false, nil
	}
	_, post := backupHooks(rn.bc, bs.Spec.Session)
	target := r.hookTarget(ctx, rn, string(outcome))
	wait, err := r.hooks.RunPost(ctx, r.clock, bs, corev1alpha1.TypePostBackupHooksExecutionSucceeded,
		hookrun.Stage{Namespace: bs.Namespace, Hooks: post, Status: &bs.Status.Hooks.PostHooks,
			Post: true, Succeeded: outcome == corev1alpha1.BackupSessionSucceeded, Target: target.Target, Vars: target.Vars, Save: r.saver(bs), Owner: bs})
	return ctrl.Result{RequeueAfter: wait}, wait > 0 || err != nil, err
}

// hookSite is where a stage's hooks aim and what they are told.
type hookSite struct {
	Target hook.Target
	Vars   map[string]string
}

// hookTarget is the configuration's target's pods and the run's variables
// at the given phase of the run.
func (r *reconciler) hookTarget(ctx context.Context, rn *run, phase string) hookSite {
	bs, bc := rn.bs, rn.bc
	sel, err := hookrun.TargetSelector(ctx, r.kube, bs.Namespace, bc.Spec.Target)
	if err != nil {
		// A target that is gone leaves hooks to their own selector; a hook
		// without one then fails naming the missing pods.
		r.log.V(1).Info("cannot find the target's pods for hooks", "error", err.Error())
	}
	var snaps []string
	for _, s := range bs.Status.Snapshots {
		snaps = append(snaps, s.Name)
	}
	if len(snaps) == 0 {
		for _, s := range rn.snaps {
			snaps = append(snaps, s.Name)
		}
	}
	vars := hookrun.Run{Kind: corev1alpha1.BackupSessionKind, Namespace: bs.Namespace, Session: bs.Name, Phase: phase,
		Snapshots: snaps, Target: bc.Spec.Target}.Vars()
	return hookSite{Target: hook.Target{Namespace: bs.Namespace, Selector: sel}, Vars: vars}
}

// snapshotsPhase is the outcome the Snapshots alone give the run.
func snapshotsPhase(bs *corev1alpha1.BackupSession) corev1alpha1.BackupSessionPhase {
	if len(bs.Status.Snapshots) == 0 {
		return corev1alpha1.BackupSessionRunning
	}
	succeeded := 0
	for _, s := range bs.Status.Snapshots {
		switch s.Phase {
		case storagev1alpha1.SnapshotFailed:
			return corev1alpha1.BackupSessionFailed
		case storagev1alpha1.SnapshotSucceeded:
			succeeded++
		}
	}
	if succeeded == len(bs.Status.Snapshots) {
		return corev1alpha1.BackupSessionSucceeded
	}
	return corev1alpha1.BackupSessionRunning
}

// saver writes the session's status before a hook's attempt, so that the
// attempt runs only on the session's latest version.
func (r *reconciler) saver(bs *corev1alpha1.BackupSession) func(context.Context) error {
	return func(ctx context.Context) error { return r.kube.Status().Update(ctx, bs) }
}
