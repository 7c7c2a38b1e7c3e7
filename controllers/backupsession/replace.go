package backupsession

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/sessionrun"
)

// replaceRecheck is how often a run waiting for the runs it replaces to
// end looks again.
const replaceRecheck = 5 * time.Second

// replacedBy is the message of the BackupReplaced condition of a run that
// the run named newer replaced.
func replacedBy(newer string) string {
	return fmt.Sprintf("replaced by backupsession %q, a newer run of the same session (concurrencyPolicy Replace)", newer)
}

// policy is the concurrencyPolicy of bs's session.
func policy(bc *corev1alpha1.BackupConfiguration, name string) corev1alpha1.ConcurrencyPolicy {
	if s := session(bc, name); s != nil && s.Scheduler != nil {
		return s.Scheduler.ConcurrencyPolicy
	}
	return ""
}

// older says whether a was created before b (by creation time, then name).
func older(a, b *corev1alpha1.BackupSession) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// olderRuns are the runs of bs's configuration and session created before
// it, not being deleted.
func (r *reconciler) olderRuns(ctx context.Context, bs *corev1alpha1.BackupSession) ([]*corev1alpha1.BackupSession, error) {
	list := &corev1alpha1.BackupSessionList{}
	if err := r.kube.List(ctx, list, client.InNamespace(bs.Namespace)); err != nil {
		return nil, fmt.Errorf("cannot list backupsessions: %w", err)
	}
	var out []*corev1alpha1.BackupSession
	for i := range list.Items {
		o := &list.Items[i]
		if o.Name == bs.Name || o.DeletionTimestamp != nil || o.Spec.Invoker.Name != bs.Spec.Invoker.Name || o.Spec.Session != bs.Spec.Session || !older(o, bs) {
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

// replaceOlder carries out concurrencyPolicy Replace for a run that has
// not made its Snapshots: it marks every older unfinished run of its
// session BackupReplaced, naming this run, and waits (Pending,
// SnapshotsEnsured False with WaitingForReplacedRun) until those runs have
// ended and the pods their Jobs ran in are gone, so that the restic locks
// they left can be told from live ones. It then records those pods for its
// Snapshots (rn.replacedPods), whose agents remove the locks; its
// backupTimeout counts from the end of the wait.
func (r *reconciler) replaceOlder(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	bs := rn.bs
	ensured := bs.GetCondition(corev1alpha1.TypeSnapshotsEnsured)
	if rn.ended != "" || ensured.Status == corev1.ConditionTrue || policy(rn.bc, bs.Spec.Session) != corev1alpha1.ConcurrencyReplace {
		return ctrl.Result{}, false, nil
	}
	runs, err := r.olderRuns(ctx, bs)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	waitFor := ""
	pods := map[string][]string{}
	for _, o := range runs {
		c := o.GetCondition(corev1alpha1.TypeBackupReplaced)
		mine := c.Status == corev1.ConditionTrue && c.Message == replacedBy(bs.Name)
		if !done(o.Status.Phase) {
			if c.Status != corev1.ConditionTrue {
				sessionrun.SetCondition(r.clock, o, corev1alpha1.TypeBackupReplaced, true, corev1alpha1.ReasonReplacedByNewerRun, replacedBy(bs.Name))
				if err := r.kube.Status().Update(ctx, o); err != nil {
					return ctrl.Result{}, true, fmt.Errorf("cannot mark backupsession %q replaced: %w", o.Name, err)
				}
				r.log.Info("replacing an older run", "backupsession", client.ObjectKeyFromObject(bs), "replaced", o.Name)
			}
			if waitFor == "" {
				waitFor = fmt.Sprintf("waiting for backupsession %q, which this run replaces, to end", o.Name)
			}
			continue
		}
		if !mine {
			continue
		}
		live, ended, err := r.endedPods(ctx, o)
		if err != nil {
			return ctrl.Result{}, true, err
		}
		if live != "" && waitFor == "" {
			waitFor = fmt.Sprintf("waiting for pod %q of backupsession %q, which this run replaced, to end", live, o.Name)
		}
		for repo, ps := range ended {
			pods[repo] = append(pods[repo], ps...)
		}
	}
	if waitFor != "" {
		sessionrun.SetCondition(r.clock, bs, corev1alpha1.TypeSnapshotsEnsured, false, corev1alpha1.ReasonWaitingForReplacedRun, waitFor)
		return ctrl.Result{RequeueAfter: replaceRecheck}, true, nil
	}
	rn.replacedPods = pods
	if ensured.Reason == corev1alpha1.ReasonWaitingForReplacedRun && bs.Spec.BackupTimeout != nil && bs.Status.BackupDeadline == nil {
		bs.Status.BackupDeadline = &metav1.Time{Time: r.clock.Now().Add(bs.Spec.BackupTimeout.Duration)}
	}
	return ctrl.Result{}, false, nil
}

// endedPods reads, from the Snapshots of a replaced run o, the pods its
// Jobs ran in, by Repository, and names one that still runs, or "".
func (r *reconciler) endedPods(ctx context.Context, o *corev1alpha1.BackupSession) (string, map[string][]string, error) {
	out := map[string][]string{}
	for _, st := range o.Status.Snapshots {
		snap := &storagev1alpha1.Snapshot{}
		if err := r.kube.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: st.Name}, snap); err != nil {
			if kerrors.IsNotFound(err) {
				continue
			}
			return "", nil, fmt.Errorf("cannot get snapshot %q: %w", st.Name, err)
		}
		pods := podsOf(snap, storagev1alpha1.AnnotationEndedPods)
		for _, p := range pods {
			pod := &corev1.Pod{}
			err := r.api.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: p}, pod)
			switch {
			case kerrors.IsNotFound(err):
			case err != nil:
				return "", nil, fmt.Errorf("cannot get pod %q: %w", p, err)
			case pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed:
				return p, nil, nil
			}
		}
		out[snap.Spec.Repository] = append(out[snap.Spec.Repository], pods...)
	}
	return "", out, nil
}

// podsOf reads a JSON list of pod names from a Snapshot's annotation.
func podsOf(snap *storagev1alpha1.Snapshot, key string) []string {
	var pods []string
	if v := snap.Annotations[key]; v != "" {
		_ = json.Unmarshal([]byte(v), &pods)
	}
	return pods
}

// setPods writes pods, sorted and without repeats, as the JSON list of a
// Snapshot's annotation; it says whether the annotation changed.
func setPods(snap *storagev1alpha1.Snapshot, key string, pods []string) bool {
	pods = slices.Clone(pods)
	sort.Strings(pods)
	pods = slices.Compact(pods)
	if len(pods) == 0 || slices.Equal(pods, podsOf(snap, key)) {
		return false
	}
	b, _ := json.Marshal(pods)
	if snap.Annotations == nil {
		snap.Annotations = map[string]string{}
	}
	snap.Annotations[key] = string(b)
	return true
}

// endIfReplaced ends a run a newer one replaced (BackupReplaced True). A
// run that made no Snapshot yet is Skipped. Otherwise the pods of its Jobs
// are recorded on its unfinished Snapshots (AnnotationEndedPods, per
// Repository) before the Jobs are deleted with their pods; the steps after
// it then make no Job, mark the unfinished Snapshots Failed with
// ReplacedByNewerRun (rn.ended) and run the post-backup hooks the run owes
// by their executionPolicy.
func (r *reconciler) endIfReplaced(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	bs := rn.bs
	c := bs.GetCondition(corev1alpha1.TypeBackupReplaced)
	if c.Status != corev1.ConditionTrue {
		return ctrl.Result{}, false, nil
	}
	if bs.GetCondition(corev1alpha1.TypeSnapshotsEnsured).Status != corev1.ConditionTrue {
		r.skip(bs, corev1alpha1.ReasonReplacedByNewerRun, c.Message)
		return ctrl.Result{}, true, nil
	}
	jobs := &batchv1.JobList{}
	if err := r.api.List(ctx, jobs, client.InNamespace(bs.Namespace), client.MatchingLabels{corev1alpha1.LabelBackupSession: bs.Name}); err != nil {
		return ctrl.Result{}, true, fmt.Errorf("cannot list jobs: %w", err)
	}
	if len(jobs.Items) > 0 {
		pods := map[string][]string{}
		for _, j := range jobs.Items {
			list := &corev1.PodList{}
			if err := r.api.List(ctx, list, client.InNamespace(bs.Namespace), client.MatchingLabels{batchv1.ControllerUidLabel: string(j.UID)}); err != nil {
				return ctrl.Result{}, true, fmt.Errorf("cannot list the pods of job %q: %w", j.Name, err)
			}
			repo := j.Labels[storagev1alpha1.LabelRepository]
			for _, p := range list.Items {
				pods[repo] = append(pods[repo], p.Name)
			}
		}
		if err := r.recordEndedPods(ctx, bs, pods); err != nil {
			return ctrl.Result{}, true, err
		}
		for i := range jobs.Items {
			if err := r.kube.Delete(ctx, &jobs.Items[i], client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, true, fmt.Errorf("cannot delete job %q of a replaced run: %w", jobs.Items[i].Name, err)
			}
		}
		r.log.Info("ended a replaced run", "backupsession", client.ObjectKeyFromObject(bs), "jobs", len(jobs.Items))
	}
	rn.ended = "the run was ended: " + c.Message
	return ctrl.Result{}, false, nil
}

// recordEndedPods adds the pods, by Repository, to the annotation of the
// run's Snapshots that have not finished.
func (r *reconciler) recordEndedPods(ctx context.Context, bs *corev1alpha1.BackupSession, pods map[string][]string) error {
	snaps, err := r.sessionSnapshots(ctx, bs)
	if err != nil {
		return err
	}
	for _, snap := range snaps {
		if snapshotDone(snap) {
			continue
		}
		orig := snap.DeepCopy()
		if !setPods(snap, storagev1alpha1.AnnotationEndedPods, append(podsOf(snap, storagev1alpha1.AnnotationEndedPods), pods[snap.Spec.Repository]...)) {
			continue
		}
		if err := r.kube.Patch(ctx, snap, client.MergeFrom(orig)); err != nil {
			return fmt.Errorf("cannot record the ended pods on snapshot %q: %w", snap.Name, err)
		}
	}
	return nil
}
