package plan

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// RepositoryBusy says which run reads or writes the Repository's data now,
// or "" when none does: a Snapshot of it whose backup has not finished,
// its prune Job that has not finished, or a RestoreSession (a restore, or
// the one a verification composes) reading from it that has not finished.
// A WipeOut of the Repository or of its BackupStorage, and the forgetting
// of a restic snapshot in it, wait while it is busy: the run would fail
// half way, or (a restic check that takes no lock, as a verification's and
// a backup's do) report a snapshot that vanished under it.
func RepositoryBusy(ctx context.Context, c client.Reader, repo *storagev1alpha1.Repository) (string, error) {
	if busy, err := RepositoryInUse(ctx, c, repo); busy != "" || err != nil {
		return busy, err
	}
	job := &batchv1.Job{}
	err := c.Get(ctx, client.ObjectKey{Namespace: repo.Namespace, Name: naming.PruneJob(repo.Name)}, job)
	if client.IgnoreNotFound(err) != nil {
		return "", fmt.Errorf("cannot get the prune job of repository %q: %w", repo.Name, err)
	}
	if err == nil && job.Labels[LabelPruneOf] == repo.Name && !JobFinished(job) {
		return fmt.Sprintf("%s is running in namespace %s", Holding(job), job.Namespace), nil
	}
	return "", nil
}

// RepositoryInUse is RepositoryBusy without the prune Job: a backup or a
// restore that reads or writes the Repository's data now. What holds the
// prune Job's place (HoldJob) checks it once it holds it.
func RepositoryInUse(ctx context.Context, c client.Reader, repo *storagev1alpha1.Repository) (string, error) {
	snaps := &storagev1alpha1.SnapshotList{}
	if err := c.List(ctx, snaps, client.InNamespace(repo.Namespace), client.MatchingLabels{storagev1alpha1.LabelRepository: repo.Name}); err != nil {
		return "", fmt.Errorf("cannot list snapshots: %w", err)
	}
	for _, s := range snaps.Items {
		if s.Spec.Repository == repo.Name && (s.Status.Phase == storagev1alpha1.SnapshotPending || s.Status.Phase == storagev1alpha1.SnapshotRunning) {
			return fmt.Sprintf("the backup of snapshot %s/%s is %s", s.Namespace, s.Name, s.Status.Phase), nil
		}
	}
	return restoreReading(ctx, c, repo)
}

// restoreReading names the unfinished RestoreSession (a restore, or the one
// a verification composes) that reads from the Repository, of any
// namespace, or "". A reader not allowed to list RestoreSessions of every
// namespace (a user running stashplane prune) sees the Repository's own.
func restoreReading(ctx context.Context, c client.Reader, repo *storagev1alpha1.Repository) (string, error) {
	restores := &corev1alpha1.RestoreSessionList{}
	err := c.List(ctx, restores)
	if kerrors.IsForbidden(err) {
		err = c.List(ctx, restores, client.InNamespace(repo.Namespace))
	}
	if err != nil {
		return "", fmt.Errorf("cannot list restoresessions: %w", err)
	}
	for _, rs := range restores.Items {
		switch rs.Status.Phase {
		case corev1alpha1.RestoreSucceeded, corev1alpha1.RestoreFailed, corev1alpha1.RestoreInvalid:
			continue
		}
		from := rs.Spec.DataSource.Namespace
		if from == "" {
			from = rs.Namespace
		}
		if from == repo.Namespace && rs.Spec.DataSource.Repository == repo.Name {
			return fmt.Sprintf("restoresession %s/%s reads from it", rs.Namespace, rs.Name), nil
		}
	}
	return "", nil
}

// RepositoryOfRun names the Repository a run uses: a Snapshot's, a
// RestoreSession's source, a prune Job's. Controllers whose deletion waits
// for RepositoryBusy watch these runs with it, so that the wait ends when
// the run does, not at the next retry of a backoff.
func RepositoryOfRun(o client.Object) (client.ObjectKey, bool) {
	switch r := o.(type) {
	case *storagev1alpha1.Snapshot:
		return client.ObjectKey{Namespace: r.Namespace, Name: r.Spec.Repository}, r.Spec.Repository != ""
	case *corev1alpha1.RestoreSession:
		ns := r.Spec.DataSource.Namespace
		if ns == "" {
			ns = r.Namespace
		}
		return client.ObjectKey{Namespace: ns, Name: r.Spec.DataSource.Repository}, r.Spec.DataSource.Repository != ""
	case *batchv1.Job:
		if name := r.Labels[LabelPruneOf]; name != "" {
			return client.ObjectKey{Namespace: r.Namespace, Name: name}, true
		}
	}
	return client.ObjectKey{}, false
}
