package agent

import (
	"context"
	"fmt"
	"slices"

	"github.com/stashplane/stashplane/internal/restic"
)

// The manifest lists the files restic stored, and restic names them only
// when asked for a line per file (--verbose=2). On a source of many small
// files that nothing changed, those lines are most of what restic does
// beyond its key derivation: each goes through restic's output goroutine
// and a write of its own, a seventh of an unchanged run of 20,000 files.
//
// A backup whose source is as the last backup left it does not need them.
// restic's summary counts the files it stored as new, changed and
// unchanged, and unchanged means equal to the parent's entry at the same
// path, content included. When the parent is the snapshot the previous
// manifest describes, and restic reports no new or changed file and as
// many unchanged ones as that manifest lists, the new snapshot holds
// exactly the manifest's files with the manifest's content: the manifest's
// entries are the new manifest's.
//
// The flag that asks for the lines is given when restic starts, before
// the walk has shown whether anything changed, so the choice is a guess
// from the last backup (ledger.QuietNext): quiet when it found its source
// unchanged, or had no parent to compare with (a first backup: most
// sources change little from one backup to the next, and one that changes
// every time pays for the wrong guess once). A quiet restic's lock is held (LocksAfter) until the walk and the previous
// manifest have been compared; a source that changed since stops that
// restic before it has written anything and starts one that names its
// files, at the cost of the key derivation it had begun. A change
// between the walk and restic's reading of the file shows in restic's
// counts: the backup then lists the new snapshot's files (restic ls) and
// takes its manifest as for any changed file.

// quietHinted says whether restic is started without naming its files:
// the ledger guesses so, and restic's parent is the snapshot the ledger's
// manifest describes.
func quietHinted(l *ledger, parent string) bool {
	return l != nil && l.QuietNext && l.Manifest != "" && parent != "" && parent == l.ResticSnapshot
}

// sourceMoved says why files, the walk's listing, is not the source prev
// describes with parent as its restic snapshot; "" when every file is
// there with the state prev recorded, and no other.
func sourceMoved(files []sourceFile, prev *previousManifest, parent string) string {
	switch {
	case prev == nil:
		return "no previous content manifest to take hashes from"
	case prev.resticSnapshot != parent:
		return fmt.Sprintf("the previous content manifest describes restic snapshot %s, not the parent %s", prev.resticSnapshot, parent)
	case len(files) != len(prev.files):
		return fmt.Sprintf("the source holds %d files, the previous backup %d", len(files), len(prev.files))
	}
	for _, f := range files {
		m, ok := prev.files[f.path]
		if !ok {
			return fmt.Sprintf("%s is new", f.path)
		}
		if !unchangedSince(m, f.state) {
			return fmt.Sprintf("%s changed", f.path)
		}
	}
	return ""
}

// storedAsPrevious says whether restic's summary shows that it stored,
// against parent, exactly the files of prev, each unchanged.
func storedAsPrevious(sum *restic.BackupSummary, prev *previousManifest, parent string) bool {
	return sum != nil && prev != nil && parent != "" && prev.resticSnapshot == parent &&
		sum.FilesNew == 0 && sum.FilesChanged == 0 && sum.FilesUnmodified == uint64(len(prev.files))
}

// storedFiles are the regular files the backup's restic snapshot holds,
// and those of them restic found unchanged against the parent. restic
// named them when listed; a quiet restic that stored the previous
// manifest's files unchanged (keptWhole) stored that manifest's files;
// after any other quiet run restic lists the snapshot.
func (r *Runner) storedFiles(ctx context.Context, rc *restic.Restic, listed, keptWhole bool, sum *restic.BackupSummary, prev *previousManifest) (stored, unchanged []string, err error) {
	switch {
	case listed:
		return sum.Files, sum.Unchanged, nil
	case keptWhole:
		paths := make([]string, 0, len(prev.files))
		for p := range prev.files {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		return paths, paths, nil
	}
	r.Log.Info("listing the files of the backup's restic snapshot: restic's counts show the source changed while it ran",
		"new", sum.FilesNew, "changed", sum.FilesChanged, "unchanged", sum.FilesUnmodified)
	stored, err = rc.Files(ctx, sum.SnapshotID)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot list the files of restic snapshot %s for the content manifest: %w", sum.SnapshotID, err)
	}
	return stored, nil, nil
}
