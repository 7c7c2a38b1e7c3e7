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

// snapshotToRestore is the restic snapshot a restore takes, with the
// component's content manifest (a function that waits for it: nil when it
// could not be read) and the hasher of the restored files.
//
// A component whose backup recorded one restic snapshot and its paths in
// the Snapshot's status (its own Jobs write it, and no one else may)
// restores that one at once, while the manifest is read beside restic:
// opening the manifest's seal is a key derivation of about 0.2 s that
// restic's own start would otherwise wait for. The manifest must then name
// the same restic snapshot and paths, or the restore fails (verifyRestore).
//
// Otherwise it is the one the manifest names (the backup writes the
// manifest only once its snapshot passed restic's check), which needs no
// `restic snapshots` run, itself half a second of key derivation; and
// without a readable manifest that names a snapshot and its paths (a
// backup made before manifests existed), the newest restic snapshot tagged
// with the Snapshot, as restic lists them.
//
// The hasher hashes the manifest's files as they are restored where the
// options and the snapshot's paths put them; wait stops it.
func (r *Runner) snapshotToRestore(ctx context.Context, t *target, rc *restic.Restic) (*restoreLookup, error) {
	if snap := recordedRestic(t.snapshot, r.Options.Component); snap != nil {
		hashes := newPendingHasher(placementFor(r.Options, snap.Paths))
		done := make(chan struct{})
		var m *Manifest
		go func() {
			defer close(done)
			if m = r.manifestOf(ctx, t); m != nil {
				hashes.expect(m.Files, m.Algorithm())
			} else {
				hashes.abandon()
			}
		}()
		return &restoreLookup{snap: snap, fromRecord: true, manifest: func() *Manifest { <-done; return m }, hashes: hashes}, nil
	}
	m := r.manifestOf(ctx, t)
	manifest := func() *Manifest { return m }
	// failed is a lookup that found nothing to restore: the manifest read
	// for it, and a hasher with nothing to hash.
	failed := func(err error) (*restoreLookup, error) {
		return &restoreLookup{manifest: manifest, hashes: newRestoredHasher(nil, backupHash, placement{})}, err
	}
	var snap *restic.Snapshot
	if m != nil && len(m.ResticSnapshot) >= 8 && len(m.Paths) > 0 {
		snap = &restic.Snapshot{ID: m.ResticSnapshot, ShortID: m.ResticSnapshot[:8], Paths: normalPaths(m.Paths)}
	} else {
		var err error
		if snap, err = latestSnapshot(ctx, rc, "snapshot="+r.Options.Snapshot); err != nil {
			return failed(err)
		}
	}
	if err := recordedSnapshot(t.snapshot, r.Options.Component, snap.ID); err != nil {
		return failed(err)
	}
	// Where the files land depends on the snapshot's paths (--into).
	place := placementFor(r.Options, snap.Paths)
	if m == nil {
		// The comparison reads the manifest again and names its files,
		// to be hashed then.
		h := newPendingHasher(place)
		h.abandon()
		return &restoreLookup{snap: snap, manifest: manifest, hashes: h}, nil
	}
	return &restoreLookup{snap: snap, manifest: manifest, hashes: newRestoredHasher(m.Files, m.Algorithm(), place)}, nil
}

// restoreLookup is what a restore takes: the restic snapshot, the content
// manifest (manifest waits for it; nil when it could not be read) and the
// hasher of the restored files. fromRecord says the snapshot came from the
// Snapshot's record, which the manifest must then agree with.
type restoreLookup struct {
	snap       *restic.Snapshot
	fromRecord bool
	manifest   func() *Manifest
	hashes     *restoredHasher
}

// recordedRestic is the restic snapshot the component's backup recorded in
// the Snapshot's status with the paths it holds, or nil unless the
// component succeeded and recorded exactly one restic snapshot, by its
// full ID, and absolute paths.
func recordedRestic(s *storagev1alpha1.Snapshot, component string) *restic.Snapshot {
	if s == nil {
		return nil
	}
	c, ok := s.Status.Components[component]
	if !ok || c.Phase != storagev1alpha1.ComponentSucceeded {
		return nil
	}
	var id string
	var paths []string
	for _, st := range c.ResticStats {
		if st.Summary == nil {
			continue
		}
		if st.Summary.ID == "" || (id != "" && st.Summary.ID != id) || st.Summary.HostPath == "" {
			return nil
		}
		id = st.Summary.ID
		for _, p := range strings.Split(st.Summary.HostPath, ",") {
			if !filepath.IsAbs(p) {
				return nil
			}
			paths = append(paths, filepath.Clean(p))
		}
	}
	if len(id) != 64 {
		return nil
	}
	return &restic.Snapshot{ID: id, ShortID: id[:8], Paths: normalPaths(paths)}
}

// normalPaths are paths cleaned, sorted and each once: the record's and
// the manifest's are compared, and the files placed, in this one form.
func normalPaths(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Clean(p)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sameRecord says whether the manifest names the restic snapshot and the
// paths the restore took from the Snapshot's record.
func sameRecord(m *Manifest, snap *restic.Snapshot) bool {
	return m.ResticSnapshot == snap.ID && slices.Equal(normalPaths(m.Paths), snap.Paths)
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
	m, err := decodeManifest(rd, t.manifestKeys(), r.Options.Snapshot, r.Options.Component)
	if err != nil {
		r.Log.Info("cannot decode the content manifest to find the restic snapshot; listing restic's snapshots", "error", err.Error())
		return nil
	}
	return m
}
