package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
)

// A pod of a Job is named by the Job's name, "-" cut to 58 characters,
// and five characters of the alphabet Kubernetes draws generated names
// from (k8s.io/apiserver's names.SimpleNameGenerator).
const (
	podSuffixLen    = 5
	podNameBaseMax  = 63 - podSuffixLen
	podNameAlphabet = "bcdfghjklmnpqrstvwxz2456789"
)

// prunePodOf says whether host, the host restic recorded in a lock (in a
// pod, the pod's name), names a pod of the prune Job job.
func prunePodOf(host, job string) bool {
	base := job + "-"
	if len(base) > podNameBaseMax {
		base = base[:podNameBaseMax]
	}
	suffix, ok := strings.CutPrefix(host, base)
	if !ok || len(suffix) != podSuffixLen {
		return false
	}
	for _, c := range suffix {
		if !strings.ContainsRune(podNameAlphabet, c) {
			return false
		}
	}
	return true
}

// podGone says whether the pod a Get returned (or failed to find) runs no
// process any more: it does not exist, or it Succeeded or Failed. A pod
// being deleted still runs until it is gone.
func podGone(pod *corev1.Pod, err error) (bool, error) {
	switch {
	case kerrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, err
	}
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed, nil
}

// deadLocks are the locks, of those given, that runs which no longer run
// left behind. restic itself deems a lock of another host stale only after
// 30 minutes, and in a pod the host is the pod's name, so without this a
// killed pod blocks every prune and check of the repository for that long.
// A lock goes when its pod is not this one (self; restic's own unlock
// judges that one by its process) and either
//   - it is exclusive and its host is a pod of the Repository's prune Job
//     (job), or it is held by a pod of a run this run replaced
//     (concurrencyPolicy Replace, storagev1alpha1.AnnotationReplacedPods),
//     and that pod no longer exists or has finished; or
//   - its pod still exists, is a Stashplane agent's (it carries the
//     component label the built-in Functions set on the Jobs they render)
//     and has finished (Succeeded or Failed: a pod killed mid-run).
//
// Every other lock is kept: a live run's, one of a pod that no longer
// exists and is named by nothing above (it may be a user's restic on a
// workstation), one of a pod the agent may not read (a restore from
// another namespace). An error reading a pod named above keeps every lock.
func deadLocks(ctx context.Context, locks []restic.Lock, job, self string, replaced []string, getPod func(context.Context, string) (*corev1.Pod, error)) ([]restic.Lock, error) {
	var out []restic.Lock
	for _, l := range locks {
		if l.Hostname == "" || l.Hostname == self {
			continue
		}
		named := l.Exclusive && prunePodOf(l.Hostname, job) || slices.Contains(replaced, l.Hostname)
		pod, err := getPod(ctx, l.Hostname)
		if kerrors.IsForbidden(err) {
			continue
		}
		if !named {
			// Only a pod that exists can show it is an agent's.
			if err == nil && agentPod(pod) {
				if gone, _ := podGone(pod, nil); gone {
					out = append(out, l)
				}
			}
			continue
		}
		gone, err := podGone(pod, err)
		if err != nil {
			return nil, fmt.Errorf("cannot get pod %q that holds restic lock %q: %w", l.Hostname, l.ID, err)
		}
		if gone {
			out = append(out, l)
		}
	}
	return out, nil
}

// agentPod says whether the pod runs a Stashplane agent: the built-in
// Functions label the Jobs they render, and so their pods, with the
// component they back up or restore.
func agentPod(pod *corev1.Pod) bool {
	_, ok := pod.Labels[corev1alpha1.LabelComponent]
	return ok
}

// removeDeadLocks removes from the restic repository at resticPath the
// locks of runs that no longer run (deadLocks), before a backup, a prune,
// a restore or a verification opens it with restic, and the half-written
// locks killed writers left (removeStaleTemporaries). It reads the locks
// with restic only when there are some.
func (r *Runner) removeDeadLocks(ctx context.Context, t *target, rc *restic.Restic) error {
	sw, err := removeStaleTemporaries(ctx, r.Log, t.bucket, layout.ResticLocksPrefix(t.resticPath), time.Now())
	if err != nil || !sw.named {
		return err
	}
	locks, err := rc.Locks(ctx)
	if err != nil {
		return fmt.Errorf("cannot read the restic repository's locks: %w", err)
	}
	self, _ := os.Hostname()
	getPod := func(ctx context.Context, name string) (*corev1.Pod, error) {
		pod := &corev1.Pod{}
		err := r.Kube.Get(ctx, types.NamespacedName{Namespace: t.repo.Namespace, Name: name}, pod)
		return pod, err
	}
	var replaced []string
	if t.snapshot != nil && t.snapshot.Spec.Repository == t.repo.Name {
		if v := t.snapshot.Annotations[storagev1alpha1.AnnotationReplacedPods]; v != "" {
			if err := json.Unmarshal([]byte(v), &replaced); err != nil {
				r.Log.Info("ignoring an unreadable list of replaced pods", "snapshot", t.snapshot.Name, "error", err.Error())
			}
		}
	}
	dead, err := deadLocks(ctx, locks, naming.PruneJob(t.repo.Name), self, replaced, getPod)
	if err != nil {
		return err
	}
	for _, l := range dead {
		if err := t.bucket.Delete(ctx, layout.ResticLocksPrefix(t.resticPath)+l.ID); err != nil {
			return fmt.Errorf("cannot remove restic lock %q of pod %q: %w", l.ID, l.Hostname, err)
		}
		r.Log.Info("removed the restic lock of a pod that no longer runs", "repository", t.resticPath, "lock", l.ID, "pod", l.Hostname, "exclusive", l.Exclusive, "since", l.Time)
	}
	return nil
}
