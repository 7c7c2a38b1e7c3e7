// Package retention carries out RetentionPolicies. Once a BackupSession has
// an outcome (Succeeded or Failed), the controller applies, for each
// repository of the session, the policy of its backend (the one it names,
// else the default one of the configuration's namespace) to the Snapshots
// that session of the configuration took in that Repository, as
// internal/retention decides. It records on the session:
//
//	RetentionPolicyExecutorEnsured  set by this controller: True once every
//	                                policy was applied, False with
//	                                RetentionPolicyPending while a Snapshot
//	                                due to go is in use or paused (it is
//	                                judged again until it is not), False
//	                                with RetentionPolicyFailedToApply when a
//	                                policy cannot be applied (nothing is
//	                                removed then). It is never cleared.
//
// and status.retentionPolicy, one entry per repository: the policy, the
// phase, the Snapshots removed with the rule that removed each, and what
// was kept against the rules. Each removal is also an event on the session.
//
// A Snapshot is removed by setting its deletionPolicy to WipeOut and
// deleting it: the Snapshot controller then forgets its components' restic
// snapshots and removes its manifests and record, whatever deletionPolicy
// it had, since freeing space is what retention is for. Pruning the data
// the forgotten snapshots alone referenced is not done here.
package retention

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/keylock"
	"github.com/stashplane/stashplane/internal/retention"
	"github.com/stashplane/stashplane/internal/sessionrun"
)

// waitInterval is how often a removal that waits for a Snapshot in use is
// tried again.
const waitInterval = 30 * time.Second

// Options configure the controller.
type Options struct {
	Controller controller.Options
	Log        logr.Logger
	Clock      clock.Clock
}

// Setup adds the retention controller to the manager.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	r := &reconciler{kube: mgr.GetClient(), api: mgr.GetAPIReader(), clock: o.Clock, events: mgr.GetEventRecorderFor("retention"),
		log: o.Log.WithValues("controller", "retention")}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("retention").
		WithOptions(o.Controller).
		For(&corev1alpha1.BackupSession{}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up retention controller: %w", err)
	}
	return nil
}

type reconciler struct {
	kube client.Client
	// api reads the session past the cache when its status write
	// conflicted.
	api    client.Reader
	clock  clock.Clock
	events record.EventRecorder
	log    logr.Logger
	// byConfiguration lets one worker at a time apply the retention of a
	// configuration's sessions; those of different configurations, which
	// share no Snapshot, are applied side by side.
	byConfiguration keylock.Set
}

func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bs := &corev1alpha1.BackupSession{}
	if err := r.kube.Get(ctx, req.NamespacedName, bs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !due(bs) {
		return ctrl.Result{}, nil
	}
	// Sessions of one configuration are judged one at a time: each pass
	// plans from the Snapshots its configuration's others leave.
	lock := r.byConfiguration.TryLock(bs.Namespace + "/" + bs.Spec.Invoker.Name)
	if lock == nil {
		return ctrl.Result{RequeueAfter: keylock.Retry}, nil
	}
	defer lock.Unlock()
	// The cache may not hold what the last pass recorded yet: a pass that
	// acted on it would find the Snapshots it removed gone and record
	// nothing removed.
	if err := r.api.Get(ctx, req.NamespacedName, bs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !due(bs) {
		return ctrl.Result{}, nil
	}
	bc := &corev1alpha1.BackupConfiguration{}
	if err := r.kube.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: bs.Spec.Invoker.Name}, bc); err != nil {
		// Without its configuration a session has no policy to apply.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := bs.DeepCopy()
	res, err := r.apply(ctx, bs, bc)
	if !equality.Semantic.DeepEqual(before.Status, bs.Status) {
		if perr := r.record(ctx, bs); perr != nil {
			return ctrl.Result{}, perr
		}
	}
	return res, err
}

// record writes what retention did into the session's status. The
// BackupSession controller writes the same status, so on a conflict the
// retention fields are carried onto the newest session and written again:
// the Snapshots are already removed, and a later pass would no longer see
// them to list them.
func (r *reconciler) record(ctx context.Context, bs *corev1alpha1.BackupSession) error {
	applied := bs.Status.RetentionPolicy
	cond := bs.GetCondition(corev1alpha1.TypeRetentionPolicyExecutorEnsured)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &corev1alpha1.BackupSession{}
		if err := r.api.Get(ctx, client.ObjectKeyFromObject(bs), cur); err != nil {
			return err
		}
		orig := cur.DeepCopy()
		cur.Status.RetentionPolicy = withRemovals(applied, cur.Status.RetentionPolicy)
		cur.SetConditions(cond)
		return r.kube.Status().Patch(ctx, cur, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		return fmt.Errorf("cannot update backupsession status: %w", err)
	}
	return nil
}

// due says whether a session has an outcome and its retention is still to
// be applied.
func due(bs *corev1alpha1.BackupSession) bool {
	if bs.DeletionTimestamp != nil {
		return false
	}
	if p := bs.Status.Phase; p != corev1alpha1.BackupSessionSucceeded && p != corev1alpha1.BackupSessionFailed {
		return false
	}
	c := bs.GetCondition(corev1alpha1.TypeRetentionPolicyExecutorEnsured)
	return c.Status != corev1.ConditionTrue && c.Reason != corev1alpha1.ReasonRetentionPolicyFailedToApply
}

// apply plans the session's retention and removes what the plan says goes.
func (r *reconciler) apply(ctx context.Context, bs *corev1alpha1.BackupSession, bc *corev1alpha1.BackupConfiguration) (ctrl.Result, error) {
	plans, err := retention.Plan(ctx, r.kube, bc, r.clock.Now(), bs.Spec.Session)
	if err != nil {
		return ctrl.Result{}, err
	}
	var statuses []corev1alpha1.RetentionPolicyApplyStatus
	var failed, pending []string
	for _, p := range plans {
		if p.Policy == nil {
			continue
		}
		st, err := r.carryOut(ctx, bs, p, previous(bs, p.Repository))
		if err != nil {
			return ctrl.Result{}, err
		}
		switch st.Phase {
		case corev1alpha1.RetentionPolicyFailedToApply:
			failed = append(failed, fmt.Sprintf("repository %q: %s", st.Repository, st.Error))
		case corev1alpha1.RetentionPolicyPending:
			pending = append(pending, fmt.Sprintf("repository %q: %s", st.Repository, st.Message))
		}
		statuses = append(statuses, st)
	}
	bs.Status.RetentionPolicy = statuses
	switch {
	case len(failed) > 0:
		sessionrun.SetCondition(r.clock, bs, corev1alpha1.TypeRetentionPolicyExecutorEnsured, false, corev1alpha1.ReasonRetentionPolicyFailedToApply, strings.Join(failed, "; "))
	case len(pending) > 0:
		sessionrun.SetCondition(r.clock, bs, corev1alpha1.TypeRetentionPolicyExecutorEnsured, false, corev1alpha1.ReasonRetentionPolicyPending, strings.Join(pending, "; "))
		return ctrl.Result{RequeueAfter: waitInterval}, nil
	default:
		sessionrun.SetCondition(r.clock, bs, corev1alpha1.TypeRetentionPolicyExecutorEnsured, true, corev1alpha1.ReasonRetentionPolicyApplied, "")
	}
	return ctrl.Result{}, nil
}

// withRemovals is applied with the removals recorded has and applied
// lacks added, so that no pass forgets what an earlier one removed.
func withRemovals(applied, recorded []corev1alpha1.RetentionPolicyApplyStatus) []corev1alpha1.RetentionPolicyApplyStatus {
	out := make([]corev1alpha1.RetentionPolicyApplyStatus, 0, len(applied))
	for _, st := range applied {
		seen := map[string]bool{}
		for _, rm := range st.Removed {
			seen[rm.Snapshot] = true
		}
		var earlier []corev1alpha1.RetentionRemoval
		for _, rm := range previousIn(recorded, st.Repository) {
			if !seen[rm.Snapshot] {
				earlier = append(earlier, rm)
			}
		}
		st.Removed = append(earlier, st.Removed...)
		out = append(out, st)
	}
	return out
}

// previous is what an earlier pass recorded for a repository, so that the
// Snapshots it removed stay listed.
func previous(bs *corev1alpha1.BackupSession, repository string) []corev1alpha1.RetentionRemoval {
	return previousIn(bs.Status.RetentionPolicy, repository)
}

func previousIn(statuses []corev1alpha1.RetentionPolicyApplyStatus, repository string) []corev1alpha1.RetentionRemoval {
	for _, st := range statuses {
		if st.Repository == repository {
			return st.Removed
		}
	}
	return nil
}

// carryOut removes the Snapshots one repository's plan says go.
func (r *reconciler) carryOut(ctx context.Context, bs *corev1alpha1.BackupSession, p retention.RepositoryPlan, removed []corev1alpha1.RetentionRemoval) (corev1alpha1.RetentionPolicyApplyStatus, error) {
	st := corev1alpha1.RetentionPolicyApplyStatus{Ref: *p.Policy, Repository: p.Repository, Phase: corev1alpha1.RetentionPolicyApplied, Removed: removed}
	switch {
	case p.Problem != "":
		st.Phase, st.Error = corev1alpha1.RetentionPolicyFailedToApply, p.Problem
		return st, nil
	case p.Paused:
		st.Message = "the repository is paused: nothing was removed"
		return st, nil
	}
	var notes []string
	for _, d := range p.Decisions {
		if d.Note != "" {
			notes = append(notes, fmt.Sprintf("snapshot %q %s", d.Name, d.Note))
		}
		if d.Waits {
			st.Phase = corev1alpha1.RetentionPolicyPending
		}
		if !d.Remove() {
			continue
		}
		if err := r.remove(ctx, bs.Namespace, d.Name); err != nil {
			return st, err
		}
		rule := ruleText(d, p)
		st.Removed = append(st.Removed, corev1alpha1.RetentionRemoval{Snapshot: d.Name, Rule: rule})
		r.events.Eventf(bs, corev1.EventTypeNormal, "SnapshotRemoved", "Removed snapshot %q of repository %q by %s", d.Name, p.Repository, rule)
	}
	st.Message = strings.Join(notes, "; ")
	return st, nil
}

// ruleText names the rule that removes a Snapshot, with the policy's
// setting, such as "maxRetentionPeriod 30d".
func ruleText(d retention.Decision, p retention.RepositoryPlan) string {
	return fmt.Sprintf("%s of retentionpolicy %s/%s", d.Rule(), p.Policy.Namespace, p.Policy.Name)
}

// remove deletes a Snapshot so that its restic snapshots are forgotten:
// its deletionPolicy becomes WipeOut first.
func (r *reconciler) remove(ctx context.Context, ns, name string) error {
	s := &storagev1alpha1.Snapshot{}
	if err := r.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		return client.IgnoreNotFound(err)
	}
	if s.Spec.DeletionPolicy != storagev1alpha1.DeletionPolicyWipeOut {
		orig := s.DeepCopy()
		s.Spec.DeletionPolicy = storagev1alpha1.DeletionPolicyWipeOut
		if err := r.kube.Patch(ctx, s, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("cannot set the deletionPolicy of snapshot %q: %w", name, err)
		}
	}
	if err := r.kube.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("cannot delete snapshot %q: %w", name, err)
	}
	return nil
}
