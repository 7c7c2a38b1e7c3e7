package agent

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"

	"k8s.io/utils/ptr"
	"lukechampine.com/blake3"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
)

// StreamPath is where a stream named name is in its restic snapshot and
// manifest: a file at the root.
func StreamPath(name string) string { return "/" + name }

// BackupStream backs up what open's reader gives, up to its end, as the
// one file name of the component (restic's standard-input backup; nothing
// is written to disk), and records the component like Backup. The reader
// must fail, not end, when its source fails (pgdump.Dump does): restic is
// then interrupted before its input ends, no restic snapshot is made, and
// the component is Failed with the source's reason. The manifest lists
// the file with its size and digest, taken from the stream as it passed.
func (r *Runner) BackupStream(ctx context.Context, name string, open func(context.Context) (io.ReadCloser, error)) error {
	if err := r.Options.Validate(KindBackupStream); err != nil {
		return notRecorded(err)
	}
	r.Options.Paths = []string{StreamPath(name)}
	return r.runBackup(ctx, func(ctx context.Context, t *target, w statusWriter, state componentState, errs *bridgeErrors) (*restic.BackupSummary, *bool, error) {
		return r.backupStream(ctx, t, w, state, errs, name, open)
	})
}

func (r *Runner) backupStream(ctx context.Context, t *target, w statusWriter, state componentState, errs *bridgeErrors, name string,
	open func(context.Context) (io.ReadCloser, error)) (*restic.BackupSummary, *bool, error) {
	o := r.Options
	rc, stop, err := r.resticFor(ctx, t, errs)
	if err != nil {
		return nil, nil, err
	}
	defer stop(context.WithoutCancel(ctx))
	created, err := r.prepareRepository(ctx, t, rc)
	if err != nil {
		return nil, nil, err
	}
	src, err := open(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	var l *ledger
	var lerr error
	if !created {
		l, lerr = readLedger(ctx, t.bucket, layout.LedgerKey(t.repo.Spec.Path, t.session, o.Component))
	}
	checked := r.startCheck(ctx, t, rc, created, l, lerr)
	defer checked.stop()
	sealing := startEnvelope(ctx, t.manifestKeys(), nil)
	h := blake3.New(32, nil)
	n := &countWriter{}
	progress := newProgressWriter(w, state, ProgressInterval)
	sum, err := rc.BackupStdin(ctx, restic.BackupOptions{Tags: tags(o, t.session), Host: hostName(o)}, name,
		io.TeeReader(src, io.MultiWriter(h, n)), progress.report)
	progress.stop()
	if err != nil {
		return sum, nil, err
	}
	if n.n == 0 {
		return sum, nil, &reasonError{reason: ReasonNothingRead, msg: "the stream ended before it gave any data"}
	}
	c := checked.wait()
	if c.err != nil {
		// A stream cannot be read twice: the index is repaired, and if
		// this run's snapshot lost data the next run stores it whole.
		h, err := r.heal(ctx, t, rc, sum.SnapshotID, c.sum, c.err, nil)
		t.healing = h
		if err != nil {
			return sum, ptr.To(false), err
		}
		c.base = nil
	}
	file := ManifestFile{Path: StreamPath(name), Size: n.n, BLAKE3: hex.EncodeToString(h.Sum(nil))}
	m := newManifest(o.Snapshot, o.Component, sum.SnapshotID, o.Paths, state.Start, []ManifestFile{file})
	b, err := m.encodeSealed(sealing)
	if err != nil {
		return sum, ptr.To(true), err
	}
	if err := t.bucket.WriteAll(ctx, layout.ManifestKey(t.repo.Spec.Path, o.Snapshot, o.Component), b, nil); err != nil {
		return sum, ptr.To(true), fmt.Errorf("cannot write the content manifest: %w", err)
	}
	r.writeLedger(ctx, t, c.base, "", "", false, "")
	return sum, ptr.To(true), nil
}

// RestoreStream gives the file name of the component's backup to load
// (restic's dump; nothing is written to disk) and reports the component
// like Restore. As the stream passes, its size and digest are compared
// with the content manifest: a difference fails the restore with
// RestoreMismatch even when load took it.
func (r *Runner) RestoreStream(ctx context.Context, name string, load func(context.Context, io.Reader) error) error {
	return r.runRestore(ctx, func(ctx context.Context, t *target, errs *bridgeErrors, res *restoreResult, running func() error, ph *phases) error {
		return r.restoreStream(ctx, t, errs, res, running, ph, name, load)
	})
}

func (r *Runner) restoreStream(ctx context.Context, t *target, errs *bridgeErrors, res *restoreResult, running func() error, ph *phases,
	name string, load func(context.Context, io.Reader) error) error {
	rc, stop, err := r.resticReading(ctx, t, errs)
	if err != nil {
		return err
	}
	defer stop(context.WithoutCancel(ctx))
	m := r.manifestOf(ctx, t)
	if m == nil || m.ResticSnapshot == "" || m.Algorithm() != HashBLAKE3 {
		return &reasonError{reason: ReasonNotAStream, msg: "the component has no readable content manifest naming its restic snapshot: it was not backed up as a stream"}
	}
	var want *ManifestFile
	for i := range m.Files {
		if m.Files[i].Path == StreamPath(name) {
			want = &m.Files[i]
		}
	}
	if want == nil {
		return &reasonError{reason: ReasonNotAStream, msg: fmt.Sprintf("the component's content manifest lists no %s: it was not backed up as the stream %q", StreamPath(name), name)}
	}
	if err := running(); err != nil {
		return err
	}
	if err := r.checkData(ctx, rc, res); err != nil {
		return err
	}
	ph.mark("lookup")
	pr, pw := io.Pipe()
	dumped := make(chan error, 1)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		err := rc.Dump(dctx, m.ResticSnapshot, StreamPath(name), pw)
		_ = pw.CloseWithError(err)
		dumped <- err
	}()
	h := blake3.New(32, nil)
	n := &countWriter{}
	r.Log.Info("loading", "resticSnapshot", shortID(m.ResticSnapshot), "file", StreamPath(name))
	if err := load(ctx, io.TeeReader(pr, io.MultiWriter(h, n))); err != nil {
		// A failed load (or a dump that broke off, which the load
		// reports) ends restic's dump too.
		cancel()
		_ = pr.CloseWithError(err)
		<-dumped
		res.filesRestored, res.bytesRestored = 1, n.n
		return err
	}
	// Whatever the load left unread is read to the end, so that the
	// digest covers the whole stream.
	_, _ = io.Copy(io.MultiWriter(h, n), pr)
	derr := <-dumped
	ph.mark("load")
	res.filesRestored, res.bytesRestored = 1, n.n
	if derr != nil {
		return derr
	}
	res.filesChecked = 1
	got := ManifestFile{Path: want.Path, Size: n.n, BLAKE3: hex.EncodeToString(h.Sum(nil))}
	if got != *want {
		res.totalDiffs = 1
		res.diffs = []corev1alpha1.RestoreDifference{{Path: want.Path, Kind: corev1alpha1.DifferenceChanged,
			Want: describe(want.Size, HashBLAKE3, want.BLAKE3), Got: describe(got.Size, HashBLAKE3, got.BLAKE3)}}
		return &reasonError{reason: ReasonRestoreMismatch, msg: fmt.Sprintf("the loaded stream %s differs from the content manifest (%s, want %s)",
			want.Path, describe(got.Size, HashBLAKE3, got.BLAKE3), describe(want.Size, HashBLAKE3, want.BLAKE3))}
	}
	return nil
}

// countWriter counts the bytes written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
