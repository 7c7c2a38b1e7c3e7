package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

var resticID = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

// ForgetResticSnapshot removes the restic snapshot id (in full, or a prefix
// of at least eight hex digits as restic prints it) from the restic
// repository at prefix, as restic's forget does: only the snapshot's file
// goes; the data it alone referenced stays until a prune. A snapshot that is
// already gone is no error. A short id that matches more than one snapshot
// is refused.
func ForgetResticSnapshot(ctx context.Context, b *blob.Bucket, prefix, id string) error {
	if !resticID.MatchString(id) {
		return fmt.Errorf("cannot forget restic snapshot %q: not a restic snapshot id", id)
	}
	dir := path.Join(prefix, "snapshots") + "/"
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
