package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gocloud.dev/gcerrors"

	"github.com/stashplane/stashplane/internal/backend"
	"github.com/stashplane/stashplane/internal/restic"
)

// ReasonRestoreMismatch: a restored file differs from the content manifest
// written at backup time.
const ReasonRestoreMismatch = "RestoreMismatch"

// Restore restores the component's latest restic snapshot taken for the
// Snapshot. With a target directory every backed-up path lands under it
// (TARGET/<path>); without one each of the paths (all of the snapshot's
// when none are given) is restored in place. Restored files are then
// compared with the component's content manifest, when there is one (with
// include patterns, only the files that were restored are compared).
func (r *Runner) Restore(ctx context.Context) error {
	o := r.Options
	if err := o.Validate(KindRestore); err != nil {
		return notRecorded(err)
	}
	start := time.Now()
	rep := r.restoreReporter(start)
	if err := rep.report(ctx, time.Time{}, "", ""); err != nil {
		return notRecorded(err)
	}
	t, err := r.resolve(ctx)
	if err != nil {
		// resolve's errors carry no secret.
		if rerr := rep.report(ctx, time.Now(), ReasonRestoreNotStarted, err.Error()); rerr != nil {
			return notRecorded(fmt.Errorf("%w; and %w", err, rerr))
		}
		if rep != nil {
			return &ExitError{Code: ExitFailed, Err: err}
		}
		return notRecorded(err)
	}
	errs := &bridgeErrors{log: r.Log.WithName("bridge")}
	if err = r.connect(ctx, t); err == nil {
		defer t.bucket.Close()
		err = r.restore(ctx, t, errs)
	}
	if err != nil {
		reason, msg := failure(err, errs, t.redact)
		if rerr := rep.report(ctx, time.Now(), reason, msg); rerr != nil {
			return notRecorded(fmt.Errorf("%s: %s; and %w", reason, msg, rerr))
		}
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("cannot restore component %q: %s: %s", o.Component, reason, msg)}
	}
	if err := rep.report(ctx, time.Now(), "", ""); err != nil {
		return notRecorded(err)
	}
	r.Log.Info("restored", "snapshot", o.Snapshot, "component", o.Component, "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}

func (r *Runner) restore(ctx context.Context, t *target, errs *bridgeErrors) error {
	o := r.Options
	rc, stop, err := r.resticFor(ctx, t, errs)
	if err != nil {
		return err
	}
	defer stop(context.WithoutCancel(ctx))
	snap, err := latestSnapshot(ctx, rc, "snapshot="+o.Snapshot)
	if err != nil {
		return err
	}
	paths := o.Paths
	if len(paths) == 0 {
		paths = snap.Paths
	}
	if o.Target != "" && len(o.Paths) == 0 {
		r.Log.Info("restoring", "resticSnapshot", snap.ShortID, "target", o.Target)
		if _, err := rc.Restore(ctx, snap.ID, o.Target, nil, o.Include...); err != nil {
			return err
		}
	} else {
		for _, p := range paths {
			dest := restoredPath(o.Target, p)
			r.Log.Info("restoring", "resticSnapshot", snap.ShortID, "path", p, "into", dest)
			// snapshot:path restores the content of path into dest.
			if _, err := rc.Restore(ctx, snap.ID+":"+p, dest, nil, o.Include...); err != nil {
				return err
			}
		}
	}
	return r.verifyRestore(ctx, t, paths, snap.ID)
}

// restoredPath is where a backed-up path is restored.
func restoredPath(target, p string) string {
	if target == "" {
		return p
	}
	return filepath.Join(target, p)
}

// latestSnapshot finds the newest restic snapshot with tag.
func latestSnapshot(ctx context.Context, rc *restic.Restic, tag string) (*restic.Snapshot, error) {
	snaps, err := rc.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	var found *restic.Snapshot
	for i := range snaps {
		if slices.Contains(snaps[i].Tags, tag) && (found == nil || snaps[i].Time.After(found.Time)) {
			found = &snaps[i]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("cannot find a restic snapshot tagged %q", tag)
	}
	return found, nil
}

// verifyRestore compares the restored files under paths with the content
// manifest of the backup. A component backed up before manifests existed
// has none: that is logged, not failed.
func (r *Runner) verifyRestore(ctx context.Context, t *target, paths []string, resticID string) error {
	o := r.Options
	rd, err := t.bucket.NewReader(ctx, backend.ManifestKey(t.repo.Spec.Path, o.Snapshot, o.Component), nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		r.Log.Info("no content manifest to compare the restored files with")
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read the content manifest: %w", err)
	}
	defer rd.Close()
	m, err := DecodeManifest(rd)
	if err != nil {
		return err
	}
	if m.ResticSnapshot != resticID {
		r.Log.Info("the content manifest belongs to another restic snapshot; not comparing", "manifest", m.ResticSnapshot, "restored", resticID)
		return nil
	}
	var bad []string
	checked := 0
	hashes := hashRestored(m.Files, paths, o.Target)
	for _, f := range m.Files {
		if !underAny(f.Path, paths) {
			continue
		}
		got, err := hashes.get(f.Path)
		if len(o.Include) > 0 && errors.Is(err, fs.ErrNotExist) {
			// Left out by the include patterns.
			continue
		}
		checked++
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: %v", f.Path, unwrapPathError(err)))
		case got.Size != f.Size || got.SHA256 != f.SHA256:
			bad = append(bad, fmt.Sprintf("%s: content differs", f.Path))
		}
	}
	if len(bad) > 0 {
		if len(bad) > 5 {
			bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
		}
		return &reasonError{reason: ReasonRestoreMismatch, msg: strings.Join(bad, "; ")}
	}
	r.Log.Info("restored files match the content manifest", "files", checked)
	return nil
}

func underAny(p string, roots []string) bool {
	for _, root := range roots {
		if p == root || strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/") {
			return true
		}
	}
	return false
}
