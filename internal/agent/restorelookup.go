package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"gocloud.dev/gcerrors"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
)

// snapshotToRestore is the restic snapshot a restore takes: the one the
// component's content manifest names (the backup writes the manifest
// only once its snapshot passed restic's check), so that the restore
// needs no `restic snapshots` run, which costs half a second of key
// derivation alone. Without a readable manifest that names a snapshot and
// its paths (a backup made before manifests existed) it is the newest
// restic snapshot tagged with the Snapshot, as restic lists them. The
// hasher hashes the manifest's files (none without a manifest) as they are
// restored where the options and the snapshot's paths put them; wait
// stops it. The manifest (nil when it could
// not be read) goes on to the comparison after the restore.
func (r *Runner) snapshotToRestore(ctx context.Context, t *target, rc *restic.Restic) (*restic.Snapshot, *Manifest, *restoredHasher, error) {
	m := r.manifestOf(ctx, t)
	var files []ManifestFile
	alg := backupHash
	if m != nil {
		files, alg = m.Files, m.Algorithm()
	}
	var snap *restic.Snapshot
	if m != nil && len(m.ResticSnapshot) >= 8 && len(m.Paths) > 0 {
		paths := make([]string, len(m.Paths))
		for i, p := range m.Paths {
			paths[i] = filepath.Clean(p)
		}
		snap = &restic.Snapshot{ID: m.ResticSnapshot, ShortID: m.ResticSnapshot[:8], Paths: paths}
	} else {
		var err error
		if snap, err = latestSnapshot(ctx, rc, "snapshot="+r.Options.Snapshot); err != nil {
			return nil, m, newRestoredHasher(nil, alg, placement{}), err
		}
	}
	if err := recordedSnapshot(t.snapshot, r.Options.Component, snap.ID); err != nil {
		return nil, m, newRestoredHasher(nil, alg, placement{}), err
	}
	// Where the files land depends on the snapshot's paths (--into).
	return snap, m, newRestoredHasher(files, alg, placementFor(r.Options, snap.Paths)), nil
}

// ReasonRecordMismatch: the restic snapshot a restore would take (the one
// the content manifest names, or the newest restic lists with the
// Snapshot's tag) is not one the Snapshot's backup recorded: the manifest
// or the restic repository was changed since.
const ReasonRecordMismatch = "RecordMismatch"

// recordedSnapshot refuses to restore restic snapshot id for a component
// whose backup recorded other restic snapshots in the Snapshot's status
// (written by that backup's own Jobs, the only ones allowed to). A
// component that recorded none (made before the ids were recorded) is not
// checked.
func recordedSnapshot(s *storagev1alpha1.Snapshot, component, id string) error {
	var recorded []string
	for _, st := range s.Status.Components[component].ResticStats {
		if st.Summary != nil && st.Summary.ID != "" {
			recorded = append(recorded, st.Summary.ID)
		}
	}
	if len(recorded) == 0 || slices.ContainsFunc(recorded, func(r string) bool { return sameResticID(r, id) }) {
		return nil
	}
	return &reasonError{reason: ReasonRecordMismatch, msg: fmt.Sprintf("restic snapshot %s is not the one snapshot %q recorded for component %q (%s): its content manifest or the restic repository was changed since the backup",
		shortID(id), s.Name, component, strings.Join(recorded, ", "))}
}

// sameResticID says whether two restic snapshot ids, either of them
// possibly short, name the same snapshot.
func sameResticID(a, b string) bool {
	if len(a) < 8 || len(b) < 8 {
		return false
	}
	return strings.HasPrefix(a, b) || strings.HasPrefix(b, a)
}

// manifestOf reads the component's content manifest, or nil when there is
// none or it cannot be read; the comparison after the restore reads it
// again and reports what is wrong with it.
func (r *Runner) manifestOf(ctx context.Context, t *target) *Manifest {
	rd, err := t.bucket.NewReader(ctx, layout.ManifestKey(t.repo.Spec.Path, r.Options.Snapshot, r.Options.Component), nil)
	if err != nil {
		if gcerrors.Code(err) != gcerrors.NotFound {
			r.Log.Info("cannot read the content manifest to find the restic snapshot; listing restic's snapshots", "reason", gcerrors.Code(err).String())
		}
		return nil
	}
	defer rd.Close()
	m, err := DecodeManifest(rd, t.password, r.Options.Snapshot, r.Options.Component)
	if err != nil {
		r.Log.Info("cannot decode the content manifest to find the restic snapshot; listing restic's snapshots", "error", err.Error())
		return nil
	}
	return m
}
