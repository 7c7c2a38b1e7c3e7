package layout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

var resticID = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

// ResticStaleLock is how old a restic lock is before restic deems it stale:
// a run that holds a lock writes it anew every five minutes.
const ResticStaleLock = 30 * time.Minute

// ErrResticLocked: a restic repository holds a lock that is not stale.
var ErrResticLocked = errors.New("the restic repository is locked")

// ForgetResticSnapshot removes the restic snapshot id (in full, or a prefix
// of at least eight hex digits as restic prints it) from the restic
// repository at prefix, as restic's forget does: only the snapshot's file
// goes; the data it alone referenced stays until a prune. A snapshot that is
// already gone is no error. A short id that matches more than one snapshot
// is refused.
//
// restic's forget takes the repository's exclusive lock, so it waits for
// every run that holds a lock. This forget cannot take one (a lock is
// encrypted with the repository's key, which the provider does not hold),
// so it keeps the same rule from outside: while the restic repository
// holds a lock written within ResticStaleLock of now, it forgets nothing
// and returns ErrResticLocked. Runs that read without a lock (restic check
// --no-lock) are not seen here: the caller waits for them
// (plan.RepositoryBusy).
func ForgetResticSnapshot(ctx context.Context, b *blob.Bucket, prefix, id string, now time.Time) error {
	if !resticID.MatchString(id) {
		return fmt.Errorf("cannot forget restic snapshot %q: not a restic snapshot id", id)
	}
	if err := liveLock(ctx, b, prefix, now); err != nil {
		return fmt.Errorf("cannot forget restic snapshot %q: %w", id, err)
	}
	dir := ResticSnapshotsPrefix(prefix)
	key := dir + id
	if len(id) < 64 {
		it := b.List(&blob.ListOptions{Prefix: dir + id})
		var found []string
		for {
			obj, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("cannot list restic snapshots: %w", err)
			}
			found = append(found, obj.Key)
		}
		switch len(found) {
		case 0:
			return nil
		case 1:
			key = found[0]
		default:
			return fmt.Errorf("cannot forget restic snapshot %q: the id matches %d snapshots", id, len(found))
		}
	}
	if err := b.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("cannot forget restic snapshot %q: %w", id, err)
	}
	return nil
}

// liveLock returns ErrResticLocked, naming the lock and its age, when the
// restic repository at prefix holds a lock written within ResticStaleLock
// of now.
func liveLock(ctx context.Context, b *blob.Bucket, prefix string, now time.Time) error {
	it := b.List(&blob.ListOptions{Prefix: ResticLocksPrefix(prefix)})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot list restic locks: %w", err)
		}
		if age := now.Sub(obj.ModTime); age < ResticStaleLock {
			return fmt.Errorf("%w: lock %s was written %s ago (restic deems a lock stale after %s)", ErrResticLocked, path.Base(obj.Key), age.Round(time.Second), ResticStaleLock)
		}
	}
}
