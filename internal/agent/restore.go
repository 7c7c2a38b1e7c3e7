package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gocloud.dev/gcerrors"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
)

// Reasons a restore fails for what it found in the backup.
const (
	// ReasonRestoreMismatch: a restored file differs from the content
	// manifest written at backup time, or is missing, or is not in it.
	ReasonRestoreMismatch = "RestoreMismatch"
	// ReasonDamagedPack: restic could not read a pack of the repository;
	// the message names it.
	ReasonDamagedPack = "DamagedPack"
	// ReasonManifestInvalid: the component's content manifest cannot be
	// trusted: not sealed with the repository's password, changed, or
	// another Snapshot's.
	ReasonManifestInvalid = "ManifestInvalid"
)

// Reasons a restore fails for how it was asked, not for what the backup
// holds (agentapi.SetupReasons).
const (
	ReasonIncludeMatchedNothing = agentapi.ReasonIncludeMatchedNothing
	ReasonPathNotInBackup       = agentapi.ReasonPathNotInBackup
	ReasonNotAStream            = agentapi.ReasonNotAStream
	ReasonTargetTooSmall        = agentapi.ReasonTargetTooSmall
	ReasonTargetWriteFailed     = agentapi.ReasonTargetWriteFailed
)

// restoreResult is what a restore measured and found, reported even when
// it failed.
type restoreResult struct {
	filesRestored, bytesRestored int64
	filesChecked, totalDiffs     int64
	diffs                        []corev1alpha1.RestoreDifference
	dataChecked                  string
	// resources are the outcomes of recreated objects (RestoreObjects).
	resources      []corev1alpha1.ResourceOutcome
	totalResources int64
}

// Restore restores the component's latest restic snapshot taken for the
// Snapshot. With a target directory every backed-up path lands under it
// (TARGET/<path>); with an into directory a snapshot of one path puts that
// path's content there (several paths land as under a target); without
// either each of the paths (all of the snapshot's when none are given) is
// restored in place. With --read-data-subset,
// restic's check reads that part of the repository's packs first.
// Restored files are then compared with the component's content manifest,
// when there is one (with include patterns, only the files that were
// restored are compared).
func (r *Runner) Restore(ctx context.Context) error {
	return r.runRestore(ctx, r.restore)
}

// restoreWork is what a restore does once its objects are resolved and
// the storage is open: files (Runner.restore) or a stream
// (Runner.restoreStream).
type restoreWork func(ctx context.Context, t *target, errs *bridgeErrors, res *restoreResult, running func() error, ph *phases) error

// runRestore reports the component Running, runs work and reports its
// outcome.
func (r *Runner) runRestore(ctx context.Context, work restoreWork) error {
	o := r.Options
	if err := o.Validate(KindRestore); err != nil {
		return notRecorded(err)
	}
	start := time.Now()
	ph := &phases{last: start}
	rep := r.restoreReporter(start)
	// The Running write goes on while the run resolves its objects, opens
	// the storage and finds the snapshot; restic writes nothing before it
	// has landed, and no later write starts before it has.
	running := rep.reportRunning(ctx)
	t, err := r.resolve(ctx)
	ph.mark("resolve")
	if err != nil {
		if rerr := running(); rerr != nil {
			return notRecorded(rerr)
		}
		// resolve's errors carry no secret.
		if rerr := rep.report(ctx, time.Now(), ReasonRestoreNotStarted, err.Error(), nil); rerr != nil {
			return notRecorded(fmt.Errorf("%w; and %w", err, rerr))
		}
		if rep != nil {
			return &ExitError{Code: ExitFailed, Err: err}
		}
		return notRecorded(err)
	}
	errs := &bridgeErrors{log: r.Log.WithName("bridge")}
	res := &restoreResult{}
	if err = r.connect(ctx, t); err == nil {
		defer t.bucket.Close()
		ph.mark("connect")
		err = work(ctx, t, errs, res, running, ph)
	}
	if rerr := running(); rerr != nil {
		return notRecorded(rerr)
	}
	if err != nil {
		reason, msg := failure(err, errs, t.redact)
		if reason != ReasonRestoreMismatch && reason != ReasonDamagedPack {
			if pack := damagedPack(msg); pack != "" {
				reason, msg = ReasonDamagedPack, fmt.Sprintf("pack %s is damaged: %s", pack, msg)
			}
		}
		if strings.Contains(msg, "no space left on device") {
			reason, msg = ReasonTargetTooSmall, "the restore target ran out of space: "+msg
		}
		if rerr := rep.report(ctx, time.Now(), reason, msg, res); rerr != nil {
			return notRecorded(fmt.Errorf("%s: %s; and %w", reason, msg, rerr))
		}
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("cannot restore component %q: %s: %s", o.Component, reason, msg)}
	}
	if err := rep.report(ctx, time.Now(), "", "", res); err != nil {
		return notRecorded(err)
	}
	ph.mark("statusDone")
	r.Log.Info("restored", "snapshot", o.Snapshot, "component", o.Component, "duration", time.Since(start).Round(time.Millisecond).String(),
		"files", res.filesRestored, "bytes", res.bytesRestored)
	r.Log.Info("restore phases", ph.keysAndValues()...)
	return nil
}

// packInMessage finds a pack restic names in an error: "... from PACK
// failed" when a blob does not decrypt, "Load(<data/PACK>" when a pack
// file cannot be loaded, or "pack PACK" in check's reports. (A bare
// "<data/ID>" names a blob, not a pack.)
var packInMessage = regexp.MustCompile(`(?:\bfrom |Load\(<data/|\bpack )([0-9a-f]{8,64})\b`)

// damagedPack is the (short) ID of the first pack named in msg, or "".
func damagedPack(msg string) string {
	m := packInMessage.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	return shortID(m[1])
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func (r *Runner) restore(ctx context.Context, t *target, errs *bridgeErrors, res *restoreResult, running func() error, ph *phases) error {
	o := r.Options
	rc, stop, err := r.resticReading(ctx, t, errs)
	if err != nil {
		return err
	}
	defer stop(context.WithoutCancel(ctx))
	// restic's restore takes a shared lock, which a prune pod killed
	// before it removed its exclusive one would refuse for 30 minutes; a
	// verification restores the same way.
	if err := r.removeDeadLocks(ctx, t, rc); err != nil {
		return err
	}
	ph.mark("bridge")
	found, err := r.snapshotToRestore(ctx, t, rc)
	ph.mark("lookup")
	hashes, snap := found.hashes, found.snap
	defer hashes.wait()
	// The manifest may still be being read: no return leaves it behind.
	defer found.manifest()
	if err != nil {
		return err
	}
	if err := running(); err != nil {
		return err
	}
	ph.mark("statusRunning")
	if err := r.checkData(ctx, rc, res); err != nil {
		return err
	}
	paths := o.Paths
	if len(paths) == 0 {
		paths = snap.Paths
	}
	for _, p := range paths {
		if !underAny(p, snap.Paths) && !slices.ContainsFunc(snap.Paths, func(held string) bool { return underAny(held, []string{p}) }) {
			return &reasonError{reason: ReasonPathNotInBackup, msg: fmt.Sprintf("path %s is not in the backup, which holds %s", p, strings.Join(snap.Paths, ", "))}
		}
	}
	// Files found after the restore in a destination that was empty
	// before it came from the snapshot, so only then are files the
	// manifest does not list reported as Extra.
	place := hashes.place
	fresh := true
	for _, p := range paths {
		fresh = fresh && emptyDir(place.at(p))
	}
	// What restic restores, and where: the whole snapshot under the
	// target, or each path's content (snapshot:path) at its destination.
	type step struct{ path, from, dest string }
	steps := []step{{from: snap.ID, dest: o.Target}}
	if o.Target == "" || len(o.Paths) > 0 {
		steps = steps[:0]
		for _, p := range paths {
			steps = append(steps, step{path: p, from: snap.ID + ":" + p, dest: place.at(p)})
		}
	}
	dests := make([]string, len(steps))
	for i, s := range steps {
		dests[i] = s.dest
	}
	durable, err := openTargetSync(dests, r.syncfs)
	if err != nil {
		return &reasonError{reason: ReasonTargetWriteFailed, msg: err.Error()}
	}
	defer durable.close()
	for _, d := range durable.unreadable {
		r.Log.Info("cannot sync the restored files under a directory this Job may not read: the kernel writes them to disk in its own time", "directory", d)
	}
	size, room := componentSize(t.snapshot, o.Component), r.cacheRoom()
	after := hashAfterRestic(size, room)
	r.Log.Info("the restored files are hashed "+map[bool]string{true: "once restic has exited", false: "as restic reports them"}[after],
		"size", formatBytes(uint64(size)), "pageCacheRoom", formatBytes(uint64(room)))
	for _, s := range steps {
		if s.path == "" {
			r.Log.Info("restoring", "resticSnapshot", snap.ShortID, "target", s.dest)
		} else {
			r.Log.Info("restoring", "resticSnapshot", snap.ShortID, "path", s.path, "into", s.dest)
		}
		sum, err := hashes.restore(ctx, rc, s.from, s.dest, after, o.Include...)
		if sum != nil {
			res.filesRestored += int64(sum.FilesRestored)
			res.bytesRestored += int64(sum.BytesRestored)
		}
		if err != nil {
			return err
		}
	}
	ph.mark("restic")
	var record *restic.Snapshot
	if found.fromRecord {
		record = snap
	}
	// The restored files go to the target's disk while they are compared.
	synced := make(chan error, 1)
	go func() { synced <- durable.sync() }()
	err = r.verifyRestore(ctx, t, found.manifest(), paths, snap.ID, record, fresh, res, hashes, ph)
	ph.mark("verify")
	serr := <-synced
	ph.mark("sync")
	if err == nil && serr != nil {
		err = &reasonError{reason: ReasonTargetWriteFailed, msg: serr.Error()}
	}
	return err
}

// checkData runs restic's check over the part of the packs
// --read-data-subset names, without restic's lock so that a backup
// running meanwhile is neither blocked nor blocks it. A damaged pack
// fails the restore, naming the pack.
func (r *Runner) checkData(ctx context.Context, rc *restic.Restic, res *restoreResult) error {
	subset := r.Options.ReadDataSubset
	if subset == "" || subset == "0" {
		return nil
	}
	r.Log.Info("checking the repository's data", "readDataSubset", subset)
	sum, err := rc.Check(ctx, restic.CheckOptions{Subset: subset, NoLock: true})
	if sum != nil && len(sum.BrokenPacks) > 0 {
		short := make([]string, len(sum.BrokenPacks))
		for i, p := range sum.BrokenPacks {
			short[i] = shortID(p)
		}
		return &reasonError{reason: ReasonDamagedPack, msg: fmt.Sprintf("restic check reading %s of the packs found %d damaged: pack %s",
			subset, len(short), strings.Join(short, ", pack "))}
	}
	if err != nil {
		return err
	}
	res.dataChecked = subset
	return nil
}

// emptyDir says whether p holds no regular file (a missing p holds none).
func emptyDir(p string) bool {
	empty := true
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			empty = false
			return fs.SkipAll
		}
		return nil
	})
	return empty
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
// manifest of the backup (m, as the snapshot lookup read it; read again
// when the lookup could not), recording a sample of the differences in
// res. A component backed up before manifests existed has none: that is
// logged, not failed. A restore that brought back none of the manifest's
// files fails even with include patterns, which otherwise excuse a
// missing file. A restore that took its restic snapshot from the
// Snapshot's record (record, else nil) fails when the manifest names
// another restic snapshot or other paths: restic has run by then, and the
// two must agree for the comparison to mean anything.
func (r *Runner) verifyRestore(ctx context.Context, t *target, m *Manifest, paths []string, resticID string, record *restic.Snapshot, fresh bool, res *restoreResult, hashes *restoredHasher, ph *phases) error {
	o := r.Options
	if m == nil {
		rd, err := t.bucket.NewReader(ctx, layout.ManifestKey(t.repo.Spec.Path, o.Snapshot, o.Component), nil)
		if gcerrors.Code(err) == gcerrors.NotFound {
			r.Log.Info("no content manifest to compare the restored files with")
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot read the content manifest: %w", err)
		}
		defer rd.Close()
		if m, err = decodeManifest(rd, t.manifestKeys(), o.Snapshot, o.Component); err != nil {
			return &reasonError{reason: ReasonManifestInvalid, msg: err.Error()}
		}
	}
	if record != nil && !sameRecord(m, record) {
		return &reasonError{reason: ReasonRecordMismatch, msg: fmt.Sprintf("the content manifest of component %q names restic snapshot %s of %s, and snapshot %q recorded %s of %s: the manifest or the Snapshot's status was changed since the backup",
			o.Component, shortID(m.ResticSnapshot), strings.Join(m.Paths, ", "), o.Snapshot, record.ShortID, strings.Join(record.Paths, ", "))}
	}
	if m.ResticSnapshot != resticID {
		r.Log.Info("the content manifest belongs to another restic snapshot; not comparing", "manifest", m.ResticSnapshot, "restored", resticID)
		return nil
	}
	var missing []corev1alpha1.RestoreDifference
	listed := map[string]bool{}
	alg := m.Algorithm()
	ph.mark("manifest")
	hashes.expect(m.Files, alg)
	var under []string
	for _, f := range m.Files {
		if underAny(f.Path, paths) {
			under = append(under, f.Path)
		}
	}
	hashes.finish(under)
	ph.mark("hashTail")
	for _, f := range m.Files {
		if !underAny(f.Path, paths) {
			continue
		}
		listed[f.Path] = true
		got, err := hashes.get(f)
		if len(o.Include) > 0 && errors.Is(err, fs.ErrNotExist) {
			// Left out by the include patterns, unless nothing came back.
			missing = append(missing, difference(f, alg, corev1alpha1.DifferenceMissing, ""))
			continue
		}
		res.filesChecked++
		switch {
		case errors.Is(err, fs.ErrNotExist):
			res.record(difference(f, alg, corev1alpha1.DifferenceMissing, ""))
		case err != nil:
			res.record(difference(f, alg, corev1alpha1.DifferenceChanged, unwrapPathError(err).Error()))
		case got.Size != f.Size || got.Digest(alg) != f.Digest(alg):
			res.record(difference(f, alg, corev1alpha1.DifferenceChanged, describe(got.Size, alg, got.Digest(alg))))
		}
	}
	if res.filesChecked == 0 && len(missing) > 0 {
		// The patterns are at fault, not the backup: nothing it holds
		// was asked for.
		return &reasonError{reason: ReasonIncludeMatchedNothing, msg: fmt.Sprintf("the include patterns %s match none of the %d files the backup holds under %s",
			strings.Join(o.Include, ", "), len(missing), strings.Join(paths, ", "))}
	}
	if fresh {
		for _, p := range paths {
			r.extras(hashes.place.at(p), hashes.place, listed, res)
		}
	}
	if res.totalDiffs > 0 {
		return &reasonError{reason: ReasonRestoreMismatch, msg: res.mismatchMessage(len(listed))}
	}
	r.Log.Info("restored files match the content manifest", "files", res.filesChecked)
	return nil
}

// extras records the regular files under dir that the manifest does not
// list.
func (r *Runner) extras(dir string, place placement, listed map[string]bool, res *restoreResult) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		backedUp := place.backedUp(p)
		if !listed[backedUp] {
			got := ""
			if fi, err := d.Info(); err == nil {
				got = fmt.Sprintf("%d bytes", fi.Size())
			}
			res.record(corev1alpha1.RestoreDifference{Path: backedUp, Kind: corev1alpha1.DifferenceExtra, Got: got})
		}
		return nil
	})
}

// difference is a manifest file that was not restored as it was backed
// up; alg is the manifest's hash algorithm.
func difference(f ManifestFile, alg string, kind corev1alpha1.DifferenceKind, got string) corev1alpha1.RestoreDifference {
	return corev1alpha1.RestoreDifference{Path: f.Path, Kind: kind, Want: describe(f.Size, alg, f.Digest(alg)), Got: got}
}

// describe is a file's size and short hash under the algorithm it names,
// as a difference shows them: "1024 bytes, blake3 3f2a9c01".
func describe(size int64, alg, digest string) string {
	if len(digest) > 8 {
		digest = digest[:8]
	}
	return fmt.Sprintf("%d bytes, %s %s", size, alg, digest)
}

// record counts a difference and keeps it if the sample has room.
func (res *restoreResult) record(d corev1alpha1.RestoreDifference) {
	res.totalDiffs++
	if len(res.diffs) < corev1alpha1.MaxDifferences {
		res.diffs = append(res.diffs, d)
	}
}

// mismatchMessage says how many files differ and shows the first few.
func (res *restoreResult) mismatchMessage(listed int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of the %d files in the backup's content manifest did not restore as backed up", res.totalDiffs, listed)
	for i, d := range res.diffs {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", res.totalDiffs-3)
			break
		}
		sep := ": "
		if i > 0 {
			sep = "; "
		}
		fmt.Fprintf(&b, "%s%s %s", sep, d.Kind, d.Path)
		if d.Want != "" || d.Got != "" {
			fmt.Fprintf(&b, " (want %s, got %s)", orNone(d.Want), orNone(d.Got))
		}
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

func underAny(p string, roots []string) bool {
	for _, root := range roots {
		if p == root || strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/") {
			return true
		}
	}
	return false
}
