package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/stashplane/stashplane/internal/layout"
)

// staleTemporaryAge is how long a file of a restic repository may keep a
// temporary name before it is deemed left by a writer that was killed
// between creating it and renaming it. A live writer renames a lock within
// milliseconds and a pack within seconds; restic deems the lock of a run
// that stopped refreshing it stale after 30 minutes.
const staleTemporaryAge = time.Hour

// resticTemporary says whether name, the last element of a key in a restic
// repository, is a file written under a temporary name, to be renamed to
// its own once whole: restic's local backend writes "<name>-tmp-<digits>",
// the bridge's storage (gocloud's fileblob) "<name>.<hex>.tmp". restic
// never reads either: only names that are whole IDs (and "config") are
// files of the repository.
func resticTemporary(name string) bool {
	if base, _, ok := strings.Cut(name, "-tmp-"); ok {
		return resticName(base)
	}
	base, ok := strings.CutSuffix(name, ".tmp")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(base, '.')
	return i > 0 && resticName(base[:i])
}

func resticName(s string) bool { return s == "config" || layout.IsResticID(s) }

// sweep is what removeStaleTemporaries found under a prefix.
type sweep struct {
	// removed counts the temporary files that went.
	removed int
	// named says whether a file by restic's own name is there: for the
	// locks directory, whether it holds a lock.
	named bool
	// kept is the size of the files left, in bytes: a prune's size of
	// the repository after it, without a second listing.
	kept int64
}

// removeStaleTemporaries removes, under prefix, the temporary files
// (resticTemporary) last written before now less staleTemporaryAge, and
// says what it found (sweep). A writer killed half way leaves its
// temporary file behind: restic never sees it, so neither its prune nor
// its unlock would ever remove it. Only a failed listing is an error: a
// file that cannot be removed is logged and left.
func removeStaleTemporaries(ctx context.Context, log logr.Logger, b *blob.Bucket, prefix string, now time.Time) (sweep, error) {
	var sw sweep
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return sw, nil
		}
		if err != nil {
			return sw, fmt.Errorf("cannot list %q: %w", prefix, err)
		}
		if obj.IsDir {
			continue
		}
		name := path.Base(obj.Key)
		switch {
		case resticName(name):
			sw.named = true
		case resticTemporary(name) && now.Sub(obj.ModTime) > staleTemporaryAge:
			// A file another run removed first is gone all the same; one
			// this run may not remove (a restore's read-only grant) is
			// left for a backup or prune: it is no lock, and restic
			// never reads it.
			switch err := b.Delete(ctx, obj.Key); {
			case err == nil:
				sw.removed++
				log.Info("removed a temporary file a killed writer left", "key", obj.Key, "written", obj.ModTime)
				continue
			case gcerrors.Code(err) == gcerrors.NotFound:
				continue
			default:
				log.Info("left a temporary file a killed writer left: cannot remove it", "key", obj.Key, "written", obj.ModTime, "error", err.Error())
			}
		}
		sw.kept += obj.Size
	}
}
