package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"gocloud.dev/blob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
)

// Unlock removes the stale locks of every restic repository of the
// Repository (`stashplane unlock`, in a Job): the exclusive locks of prune
// pods of the Repository and the locks of agent pods that finished or were
// killed (removeDeadLocks), then
// what restic's own unlock deems stale (a lock of a dead process of this
// host, or one older than restic's threshold, which a live run refreshes
// long before). A live run's lock is never removed. It takes the prune
// Job's flags.
func (r *Runner) Unlock(ctx context.Context) error {
	if err := r.Options.Validate(KindPrune); err != nil {
		return notRecorded(err)
	}
	t := &target{repo: &storagev1alpha1.Repository{}, storage: &storagev1alpha1.BackupStorage{}}
	if err := r.resolveStorage(ctx, t); err != nil {
		return notRecorded(err)
	}
	if err := r.connect(ctx, t); err != nil {
		reason, msg := failure(err, &bridgeErrors{log: r.Log}, t.redact)
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("cannot open the storage: %s: %s", reason, msg)}
	}
	defer t.bucket.Close()
	prefixes, err := resticRepositories(ctx, t.bucket, t.repo.Spec.Path)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	removed := 0
	for _, p := range prefixes {
		n, err := r.unlockOne(ctx, t, p)
		if err != nil {
			return &ExitError{Code: ExitFailed, Err: err}
		}
		removed += n
	}
	r.Log.Info("unlocked", "repository", t.repo.Name, "resticRepositories", len(prefixes), "locksRemoved", removed)
	return nil
}

// unlockOne removes the stale locks of the restic repository at prefix
// and returns how many went.
func (r *Runner) unlockOne(ctx context.Context, t *target, prefix string) (int, error) {
	before, err := countLocks(ctx, t.bucket, prefix)
	if err != nil || before == 0 {
		return 0, err
	}
	t.resticPath = prefix
	errs := &bridgeErrors{log: r.Log.WithName("bridge")}
	rc, stop, err := r.resticFor(ctx, t, errs)
	if err != nil {
		reason, msg := failure(err, errs, t.redact)
		return 0, fmt.Errorf("cannot unlock restic repository %q: %s: %s", prefix, reason, msg)
	}
	err = r.removeDeadLocks(ctx, t, rc)
	if err == nil {
		err = unlockStale(ctx, t.bucket, prefix, func(ctx context.Context) error { return rc.Unlock(ctx, false) })
	}
	stop(context.WithoutCancel(ctx))
	if err != nil {
		reason, msg := failure(err, errs, t.redact)
		return 0, fmt.Errorf("cannot unlock restic repository %q: %s: %s", prefix, reason, msg)
	}
	after, err := countLocks(ctx, t.bucket, prefix)
	if err != nil {
		return 0, err
	}
	r.Log.Info("unlocked restic repository", "prefix", prefix, "removed", before-after, "kept", after)
	return before - after, nil
}

// countLocks counts the locks of the restic repository at prefix: the
// files of its locks directory named by a restic ID (a half-written one
// is no lock).
func countLocks(ctx context.Context, b *blob.Bucket, prefix string) (int, error) {
	it := b.List(&blob.ListOptions{Prefix: layout.ResticLocksPrefix(prefix)})
	n := 0
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return 0, fmt.Errorf("cannot list the restic repository's locks: %w", err)
		}
		if layout.IsResticID(path.Base(obj.Key)) {
			n++
		}
	}
}
