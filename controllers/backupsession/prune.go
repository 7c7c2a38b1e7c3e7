package backupsession

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/sessionrun"
)

// pruneRecheck is how often a run waiting for a prune looks again.
const pruneRecheck = 10 * time.Second

// waitForPrune holds a run that has not made its Snapshots while a prune
// Job of one of its Repositories has not finished: the run stays Pending,
// SnapshotsEnsured False with WaitingForPrune naming the Job, instead of
// failing on restic's exclusive lock. Its backupTimeout then counts from
// the end of the wait.
func (r *reconciler) waitForPrune(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	bs := rn.bs
	ensured := bs.GetCondition(corev1alpha1.TypeSnapshotsEnsured)
	if ensured.Status == corev1.ConditionTrue {
		return ctrl.Result{}, false, nil
	}
	if s := session(rn.bc, bs.Spec.Session); s != nil {
		for _, ri := range s.Repositories {
			job := &batchv1.Job{}
			err := r.kube.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: naming.PruneJob(ri.Name)}, job)
			if client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, true, fmt.Errorf("cannot get the prune job of repository %q: %w", ri.Name, err)
			}
			if err == nil && job.Labels[plan.LabelPruneOf] == ri.Name && !plan.JobFinished(job) {
				sessionrun.SetCondition(r.clock, bs, corev1alpha1.TypeSnapshotsEnsured, false, corev1alpha1.ReasonWaitingForPrune,
					fmt.Sprintf("waiting for %s of repository %q to finish", plan.Holding(job), ri.Name))
				return ctrl.Result{RequeueAfter: pruneRecheck}, true, nil
			}
		}
	}
	if ensured.Reason == corev1alpha1.ReasonWaitingForPrune && bs.Spec.BackupTimeout != nil && bs.Status.BackupDeadline == nil {
		bs.Status.BackupDeadline = &metav1.Time{Time: r.clock.Now().Add(bs.Spec.BackupTimeout.Duration)}
	}
	return ctrl.Result{}, false, nil
}
