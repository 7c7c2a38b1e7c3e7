package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"gocloud.dev/blob"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
)

// Prune prunes each restic repository of the Repository
// (<path>/repository/v1/<session>/<component>/) in turn: restic takes the
// repository's exclusive lock and removes the data no snapshot references,
// so the packs of snapshots that retention forgot are freed. A restic
// repository locked by a backup fails the run (RepositoryLocked) before
// anything is removed. The bytes freed (the restic repository's size before
// less after) and the time are written to the Repository's status. A lock
// left by a pod killed before it could remove it (an earlier prune, a
// backup) is removed first once that pod no longer runs (removeDeadLocks).
func (r *Runner) Prune(ctx context.Context) error {
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
	var freed int64
	for _, p := range prefixes {
		n, err := r.pruneOne(ctx, t, p)
		if err != nil {
			return &ExitError{Code: ExitFailed, Err: err}
		}
		freed += n
	}
	orig := t.repo.DeepCopy()
	t.repo.Status.LastPruneTime = &metav1.Time{Time: time.Now()}
	t.repo.Status.LastPruneFreed = storagev1alpha1.FormatSize(freed)
	patch := client.MergeFrom(orig)
	if err := record(context.WithoutCancel(ctx), r.Log, func(ctx context.Context) error {
		return r.Kube.Status().Patch(ctx, t.repo, patch)
	}); err != nil {
		return notRecorded(fmt.Errorf("cannot record the prune on repository %q: %w", t.repo.Name, err))
	}
	r.Log.Info("pruned", "repository", t.repo.Name, "resticRepositories", len(prefixes), "freed", storagev1alpha1.FormatSize(freed))
	return nil
}

// pruneOne prunes the restic repository at prefix and returns how many
// bytes it freed.
func (r *Runner) pruneOne(ctx context.Context, t *target, prefix string) (int64, error) {
	before, err := sizeUnder(ctx, t.bucket, prefix)
	if err != nil {
		return 0, err
	}
	t.resticPath = prefix
	errs := &bridgeErrors{log: r.Log.WithName("bridge")}
	rc, stop, err := r.resticFor(ctx, t, errs)
	if err != nil {
		reason, msg := failure(err, errs, t.redact)
		return 0, fmt.Errorf("cannot prune restic repository %q: %s: %s", prefix, reason, msg)
	}
	err = r.removeDeadLocks(ctx, t, rc)
	if err == nil {
		err = rc.Prune(ctx)
	}
	stop(context.WithoutCancel(ctx))
	if err != nil {
		reason, msg := failure(err, errs, t.redact)
		return 0, fmt.Errorf("cannot prune restic repository %q: %s: %s", prefix, reason, msg)
	}
	// restic prunes only the files it knows by name: the half-written
	// ones killed writers left go here.
	// The same listing gives the size after the prune.
	sw, err := removeStaleTemporaries(ctx, r.Log, t.bucket, prefix, time.Now())
	if err != nil {
		return 0, fmt.Errorf("cannot prune restic repository %q: %w", prefix, err)
	}
	after := sw.kept
	r.Log.Info("pruned restic repository", "prefix", prefix, "freed", storagev1alpha1.FormatSize(before-after))
	return before - after, nil
}

// resticRepositories lists the prefixes of the restic repositories under
// a Repository's path: <path>/repository/v1/<session>/<component>/ holding
// a restic config.
func resticRepositories(ctx context.Context, b *blob.Bucket, repoPath string) ([]string, error) {
	sessions, err := subdirectories(ctx, b, layout.ResticSessionsPrefix(repoPath))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range sessions {
		components, err := subdirectories(ctx, b, s)
		if err != nil {
			return nil, err
		}
		for _, c := range components {
			ok, err := b.Exists(ctx, layout.ResticConfigKey(c))
			if err != nil {
				return nil, fmt.Errorf("cannot read the restic repository %q: %w", c, err)
			}
			if ok {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// subdirectories lists the "directories" right under prefix, each ending
// in "/".
func subdirectories(ctx context.Context, b *blob.Bucket, prefix string) ([]string, error) {
	var out []string
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cannot list %q: %w", prefix, err)
		}
		if obj.IsDir {
			out = append(out, obj.Key)
		}
	}
}

// sizeUnder sums the sizes of the objects under prefix.
func sizeUnder(ctx context.Context, b *blob.Bucket, prefix string) (int64, error) {
	var n int64
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("cannot list %q: %w", prefix, err)
		}
		n += obj.Size
	}
}
