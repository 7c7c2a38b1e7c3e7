package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"gocloud.dev/blob"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
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

// deadPruneLocks are the locks, of those given, that a prune Job left
// behind: exclusive, taken in a pod of the Repository's prune Job (job)
// other than this one (self), and that pod no longer runs (getPod finds
// none, or it finished). restic deems such a lock stale only after 30
// minutes, since the pod's host is not this one. Every other lock is kept:
// a backup's, a restore's, one of a live prune, one of this pod (restic's
// own unlock judges it by its process), one of a pod the agent may not
// read. Any other error reading a pod keeps every lock.
//
// replaced are the pods of the runs this run replaced (concurrencyPolicy
// Replace, storagev1alpha1.AnnotationReplacedPods): a lock of one of them,
// exclusive or not, goes on the same terms, once that pod no longer runs.
func deadPruneLocks(ctx context.Context, locks []restic.Lock, job, self string, replaced []string, getPod func(context.Context, string) (*corev1.Pod, error)) ([]restic.Lock, error) {
	var out []restic.Lock
	for _, l := range locks {
		ours := l.Exclusive && prunePodOf(l.Hostname, job) || slices.Contains(replaced, l.Hostname)
		if l.Hostname == "" || l.Hostname == self || !ours {
			continue
		}
		gone, err := podGone(getPod(ctx, l.Hostname))
		if kerrors.IsForbidden(err) {
			// A restore from another namespace may not read the
			// Repository's pods: the lock stays for restic to judge.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cannot get pod %q that holds restic lock %q: %w", l.Hostname, l.ID, err)
		}
		if gone {
			out = append(out, l)
		}
	}
	return out, nil
}

// removeDeadPruneLocks removes from the restic repository at resticPath
// the exclusive locks of prune pods of the Repository, and the locks of
// the pods of runs this run replaced, that no longer run (deadPruneLocks),
// before a backup, a prune, a restore or a verification
// opens it with restic. It reads the locks only when there are some.
func (r *Runner) removeDeadPruneLocks(ctx context.Context, t *target, rc *restic.Restic) error {
	_, err := t.bucket.List(&blob.ListOptions{Prefix: t.resticPath + "locks/"}).Next(ctx)
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return fmt.Errorf("cannot list the restic repository's locks: %w", err)
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
	dead, err := deadPruneLocks(ctx, locks, naming.PruneJob(t.repo.Name), self, replaced, getPod)
	if err != nil {
		return err
	}
	for _, l := range dead {
		if err := t.bucket.Delete(ctx, t.resticPath+"locks/"+l.ID); err != nil {
			return fmt.Errorf("cannot remove restic lock %q of pod %q: %w", l.ID, l.Hostname, err)
		}
		r.Log.Info("removed the lock of a prune pod or a replaced run's pod that no longer runs", "repository", t.resticPath, "lock", l.ID, "pod", l.Hostname, "exclusive", l.Exclusive, "since", l.Time)
	}
	return nil
}
