package restoresession

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/sessionrun"
)

// pruneRecheck is how often a restore waiting for a prune looks again.
const pruneRecheck = 10 * time.Second

// waitForPrune holds a restore whose Jobs do not exist yet while a prune
// Job of the Repository it reads from (in any namespace) has not finished:
// the restore stays Pending, RestoreExecutorEnsured False with
// WaitingForPrune naming the Job, and no pre-restore hook or Job starts,
// instead of meeting the prune's exclusive lock or reading packs the
// prune is removing. Its restoreTimeout counts from when its Jobs start,
// so the wait does not count against it. A prune that died leaves a
// finished (or deleted) Job and a lock the agent removes (internal/agent).
func (r *reconciler) waitForPrune(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	repo := rn.in.Repository
	if repo == nil {
		return ctrl.Result{}, false, nil
	}
	job := &batchv1.Job{}
	err := r.kube.Get(ctx, client.ObjectKey{Namespace: repo.Namespace, Name: naming.PruneJob(repo.Name)}, job)
	if client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, true, fmt.Errorf("cannot get the prune job of repository %s/%s: %w", repo.Namespace, repo.Name, err)
	}
	if err == nil && job.Labels[plan.LabelPruneOf] == repo.Name && !plan.JobFinished(job) {
		sessionrun.SetCondition(r.clock, rn.rs, corev1alpha1.TypeRestoreExecutorEnsured, false, corev1alpha1.ReasonWaitingForPrune,
			fmt.Sprintf("waiting for %s of repository %s/%s to finish", plan.Holding(job), repo.Namespace, repo.Name))
		return ctrl.Result{RequeueAfter: pruneRecheck}, true, nil
	}
	return ctrl.Result{}, false, nil
}
