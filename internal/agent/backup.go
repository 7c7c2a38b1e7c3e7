package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"k8s.io/utils/ptr"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/storage"
)

// ProgressInterval is the least time between two progress writes of a
// running backup to the Snapshot.
const ProgressInterval = 5 * time.Second

// Backup backs up the paths into the component's restic repository and
// records the component in the Snapshot: Running at once, progress while
// restic runs, then Succeeded or Failed. It returns nil only on success; an
// *ExitError says whether the failure was recorded.
func (r *Runner) Backup(ctx context.Context) error {
	return r.runBackup(ctx, r.backup)
}

// backupWork is what a backup does between the Running and the final
// status: files (Runner.backup) or a stream (Runner.backupStream).
type backupWork func(ctx context.Context, t *target, w statusWriter, state componentState, errs *bridgeErrors) (*restic.BackupSummary, *bool, error)

// runBackup records the component Running, runs work and records its
// outcome.
func (r *Runner) runBackup(ctx context.Context, work backupWork) error {
	if err := r.Options.Validate(KindBackup); err != nil {
		return notRecorded(err)
	}
	start := time.Now()
	t, err := r.resolve(ctx)
	if err != nil {
		return notRecorded(err)
	}
	t.phases = &phases{last: start}
	t.phases.mark("resolve")
	w := &outcomeWriter{w: &applyWriter{kube: r.Kube, namespace: r.Options.Namespace, snapshot: r.Options.Snapshot, component: r.Options.Component}}
	state := componentState{ResticPath: t.resticPath, Phase: storagev1alpha1.ComponentRunning, Paths: r.Options.Paths, Start: start}
	running := buildComponent(state)
	if err := record(ctx, r.Log, func(ctx context.Context) error { return w.writeComponent(ctx, running) }); err != nil {
		return notRecorded(err)
	}
	t.phases.mark("running")
	r.Log.Info("backing up", "snapshot", r.Options.Snapshot, "component", r.Options.Component, "paths", r.Options.Paths, "repository", t.resticPath)

	errs := &bridgeErrors{log: r.Log.WithName("bridge")}
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		// Stopped (the Job's deadline, its pod deleted), the agent has a
		// grace period that restic may spend retrying a failing storage:
		// the component says Failed at once, not Running forever.
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		s := interrupted(state, errs, t.redact)
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := w.finish(wctx, buildComponent(s), false); err != nil {
			r.Log.Error(err, "cannot record the interruption")
		}
	}()
	var sum *restic.BackupSummary
	var integrity *bool
	if err = r.connect(ctx, t); err == nil {
		defer t.bucket.Close()
		t.phases.mark("connect")
		sum, integrity, err = work(ctx, t, w, state, errs)
	}
	state.End, state.Summary, state.Integrity, state.Healing = time.Now(), sum, integrity, t.healing
	if err != nil {
		state.Phase = storagev1alpha1.ComponentFailed
		state.Reason, state.Message = failure(err, errs, t.redact)
		// Statistics of a snapshot restic made without some files stay,
		// for the record; the component is still Failed.
	} else {
		state.Phase = storagev1alpha1.ComponentSucceeded
	}
	// The outcome is written even when the run's context ended, and
	// outlasts an API server that is away for a while.
	outcome := buildComponent(state)
	if werr := record(context.WithoutCancel(ctx), r.Log, func(ctx context.Context) error { return w.finish(ctx, outcome, true) }); werr != nil {
		if err != nil {
			werr = fmt.Errorf("%s: %s; and %w", state.Reason, state.Message, werr)
		}
		return notRecorded(werr)
	}
	t.phases.mark("report")
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("cannot back up component %q: %s: %s", r.Options.Component, state.Reason, state.Message)}
	}
	r.Log.Info("backed up", "snapshot", r.Options.Snapshot, "component", r.Options.Component,
		"resticSnapshot", sum.SnapshotID, "files", sum.TotalFilesProcessed, "unchanged", sum.FilesUnmodified, "size", formatBytes(sum.TotalBytesProcessed),
		"added", formatBytes(sum.DataAdded), "duration", state.End.Sub(start).Round(time.Millisecond).String())
	r.Log.Info("backup phases", t.phases.keysAndValues()...)
	return nil
}

// backup does the work between the Running and the final status: read the
// source, back it up, check the result, store the manifest.
func (r *Runner) backup(ctx context.Context, t *target, w statusWriter, state componentState, errs *bridgeErrors) (*restic.BackupSummary, *bool, error) {
	o := r.Options
	// The source is walked while restic starts. The manifest needs each
	// file's state from before restic reads it. restic's first write is
	// its lock, taken before it reads any source file: the bridge holds it
	// until the walk has succeeded. restic on its own local backend takes
	// its lock unseen, and waits at its gate after it (BackupOptions.Gate)
	// until then. After a failed walk it never passes: restic is stopped.
	//
	// The ledger names the previous manifest, whose hashes of unchanged
	// files this backup takes over. Without one (a first backup) nothing
	// is waited for: the new manifest's key is derived, and the small
	// files hashed, as soon as the walk is done, beside the repository's
	// preparation (a first backup's restic init spends seconds of one
	// core calibrating its key derivation) rather than beside restic's
	// backup, which keeps both cores busy with small files
	// (startHashingFirst).
	var files, dirs []sourceFile
	var walkErr error
	walk := r.walk
	if walk == nil {
		walk = walkTree
	}
	hctx, stopHashing := context.WithCancel(ctx)
	defer stopHashing()
	var read *ledger
	var readErr error
	ledgerRead := make(chan struct{})
	go func() {
		defer close(ledgerRead)
		read, readErr = readLedger(ctx, t.bucket, layout.LedgerKey(t.repo.Spec.Path, t.session, o.Component))
	}()
	var hashing *contentHasher
	var sealing *envelope
	released := make(chan struct{})
	walked, locks := make(chan struct{}), newLockGate()
	go func() {
		defer close(walked)
		files, dirs, walkErr = walk(o.Paths, o.Exclude)
		if <-ledgerRead; walkErr == nil && read == nil {
			hashing = startHashingFirst(hctx, files, released)
			sealing = startEnvelope(hctx, t.manifestKeys(), nil)
		}
	}()
	t.locksAfter = locks.current
	rc, stop, err := r.resticFor(ctx, t, errs)
	if err != nil {
		return nil, nil, err
	}
	defer stop(context.WithoutCancel(ctx))
	t.phases.mark("bridge")
	created, err := r.prepareRepository(ctx, t, rc)
	if err != nil {
		return nil, nil, err
	}
	<-ledgerRead
	l, lerr := read, readErr
	if created {
		// A ledger beside a repository made just now is another
		// repository's.
		l, lerr = nil, nil
	}
	t.phases.mark("prepare")
	listable := listableSource(o.Paths, o.Exclude)
	var gate <-chan struct{}
	if t.localRoot != "" {
		direct, share, err := r.directRestic(t)
		if err != nil {
			return nil, nil, err
		}
		if direct != nil {
			rc, gate = direct, locks.current()
			// Storage failures the bridge saw so far are not restic's.
			errs.clear()
			defer share()
		}
	}

	checked := r.startCheck(ctx, t, rc, created, l, lerr)
	progress := newProgressWriter(w, state, ProgressInterval)
	opts := restic.BackupOptions{Paths: o.Paths, Tags: tags(o, t.session), Host: hostName(o), Args: excludeArgs(o.Exclude)}
	listing := opts
	listing.Parent = resticParent(ctx, t, l)
	listing.Gate = gate
	// restic names every file it stores only when asked (see quiet.go).
	hinted := quietHinted(l, listing.Parent)
	listing.ListFiles = !quietGuess(l, hinted, listable)
	// stopped, when not nil, ends with a quiet restic replaced on its own
	// backend (below); it is waited for with the restic that replaced it.
	var ran, stopped chan backupRun
	var cancelRestic context.CancelCauseFunc
	stopRestic := func() { cancelRestic(context.Canceled) }
	defer func() { stopRestic() }()
	launch := func(opts restic.BackupOptions) {
		var rctx context.Context
		rctx, cancelRestic = context.WithCancelCause(ctx)
		ran = make(chan backupRun, 1)
		go func(ran chan<- backupRun) { ran <- r.backupWithParent(rctx, t, rc, opts, progress) }(ran)
	}
	launch(listing)
	<-walked
	if walkErr != nil {
		stopRestic()
		<-ran
		progress.stop()
		checked.stop()
		return nil, nil, walkErr
	}
	t.phases.mark("walk")
	// The previous manifest is opened while restic reads, not during the
	// walk restic's lock waits for, and the new one is sealed under the
	// key that opened it: one key derivation a run.
	previous := r.openPrevious(hctx, t, l)
	sameSource := hinted && sourceState(files) == l.Source
	if !listing.ListFiles && !listable && !sameSource {
		// A quiet restic of a source the walk cannot vouch for (exclude
		// patterns: listableSource) is let past its lock only for a
		// source the walk found as the previous manifest describes it;
		// for any other it is stopped before it has read anything, and
		// run again to name its files.
		if gate == nil {
			// Its lock waits in the bridge and is never written: it is
			// killed, not interrupted, which would wait for its key
			// derivation.
			cancelRestic(restic.ErrAbandoned)
			<-ran
		} else {
			// On restic's own backend its lock may be in the storage:
			// it is interrupted and its gate shut. At the gate it
			// removes its lock at once; still deriving its key, it
			// writes none once that is done. The next restic derives
			// its own key meanwhile; no other restic command runs
			// before the stopped one has exited (a repair's exclusive
			// lock would meet its lock).
			cancelRestic(context.Canceled)
			stopped = ran
		}
		locks.renew()
		if gate != nil {
			listing.Gate = locks.current()
		}
		r.Log.Info("asking restic to name the files it stores: the source is not as the last backup left it")
		listing.ListFiles = true
		launch(listing)
	}
	locks.open()
	close(released)
	if hashing == nil {
		sealing = startEnvelope(hctx, t.manifestKeys(), previous.done)
		hashing = startHashing(hctx, files, previous.wait)
	}
	var body *manifestBody
	switch {
	case !listing.ListFiles && sameSource:
		// Most likely restic stores the previous manifest's files
		// unchanged: their part of the new manifest is made meanwhile.
		body = startManifestBody(func() []ManifestFile {
			if p := previous.wait(); p != nil {
				return p.list
			}
			return nil
		})
	case !listing.ListFiles && listable:
		// Most likely restic stores the walk's files as the hasher
		// reads them, and the hasher is done before restic.
		body = startManifestBody(hashing.listed)
	}
	run := <-ran
	if stopped != nil {
		<-stopped
	}
	sum, err := run.sum, run.err
	listing.Parent = run.parent
	progress.stop()
	t.phases.mark("restic")
	if err == nil {
		err = checkRead(listedSizes(files), sum)
	}
	if err != nil {
		stopHashing()
		hashing.wait()
		checked.stop()
		return sum, nil, err
	}
	hashes := hashing.wait()
	var manifestFiles []ManifestFile
	var merr error
	keptWhole := storedAsPrevious(sum, hashing.previous, listing.Parent)
	var listedWhole bool
	switch {
	case keptWhole:
		// restic stored the previous manifest's files, each unchanged
		// (quiet.go): its entries are this manifest's.
		manifestFiles = hashing.previous.list
	case !listing.ListFiles && listable:
		// restic stored as many files as the walk listed, and none of
		// them moved from the walk until now (quiet.go): the walk's
		// files, as hashed, are this manifest's.
		manifestFiles, listedWhole = storedAsListed(ctx, sum, files, dirs, hashes, hashing.previous)
	}
	if !keptWhole && !listedWhole {
		var stored, unchangedPaths []string
		if stored, unchangedPaths, merr = r.storedFiles(ctx, rc, listing.ListFiles, sum); merr == nil {
			unchanged := unchangedSincePrevious(hashing.previous, listing.Parent, unchangedPaths)
			manifestFiles, merr = settleManifest(ctx, files, hashes, stored, unchanged, o.ScratchDir, restoreFrom(rc, sum.SnapshotID))
		}
	}
	if merr == nil && !listedWhole {
		manifestFiles = withStates(manifestFiles, files, hashes)
	}
	t.phases.mark("hashes")
	if hashing.carried > 0 {
		r.Log.Info("took the hashes of unchanged files from the previous content manifest", "files", hashing.carried, "snapshot", l.Manifest)
	}
	c := checked.wait()
	t.phases.mark("check")
	if c.err != nil {
		redo := func(ctx context.Context) (*restic.BackupSummary, error) {
			return rc.Backup(ctx, opts, nil)
		}
		h, err := r.heal(ctx, t, rc, sum.SnapshotID, c.sum, c.err, redo)
		t.healing = h
		if err != nil {
			return sum, ptr.To(false), err
		}
		// A healed repository keeps its damaged snapshots: the next
		// backup checks it again, and the ledger stays as it was.
		c.base = nil
	}
	if merr != nil {
		return sum, ptr.To(true), merr
	}
	m := newManifest(o.Snapshot, o.Component, sum.SnapshotID, o.Paths, state.Start, manifestFiles)
	b, err := m.encodeSealedWith(sealing, body)
	if err != nil {
		return sum, ptr.To(true), err
	}
	key := layout.ManifestKey(t.repo.Spec.Path, o.Snapshot, o.Component)
	if err := t.bucket.WriteAll(ctx, key, b, nil); err != nil {
		return sum, ptr.To(true), fmt.Errorf("cannot write the content manifest: %w", err)
	}
	t.phases.mark("manifest")
	// The next backup's guess (quiet.go): unchanged again, held still
	// again, or, after a backup with nothing to compare with, unchanged
	// at last.
	heldStill := listedWhole || (listing.ListFiles && listable && namedAsListed(sum.Files, files, hashes))
	r.writeLedger(ctx, t, c.base, o.Snapshot, sum.SnapshotID, keptWhole || heldStill || listing.Parent == "", manifestState(m.Files))
	t.phases.mark("ledger")
	return sum, ptr.To(true), nil
}

// directRestic is restic on its own local backend for a backup into the
// local storage mounted in this container (localRestic), held at its gate,
// after its lock, until the walk is done. The repository keeps the modes
// the bridge gave it (localmodes.go): share, called once restic has
// written its last, gives the files it wrote their read access. Where the
// modes cannot be read, direct is nil and the backup stays on the bridge.
func (r *Runner) directRestic(t *target) (direct *restic.Restic, share func(), err error) {
	dir := localRepository(t)
	modes, err := readModes(dir)
	if err == nil {
		err = modes.makeDirs(dir)
	}
	if err != nil {
		r.Log.Info("restic writes the local storage through the bridge", "why", err.Error())
		return nil, nil, nil
	}
	if direct, err = r.localRestic(t); err != nil {
		return nil, nil, err
	}
	since := time.Now().Add(-time.Second)
	return direct, func() {
		if err := modes.share(dir, since); err != nil {
			r.Log.Info("cannot give the files restic wrote the repository's read access", "error", err.Error())
		}
	}, nil
}

// backupRun is how restic's backup went, and the parent it had.
type backupRun struct {
	sum    *restic.BackupSummary
	err    error
	parent string
}

// backupWithParent runs restic's backup with opts. restic refuses a
// parent it cannot load: when the one named was forgotten since it was
// looked for, the backup runs again without one, and restic picks its own.
func (r *Runner) backupWithParent(ctx context.Context, t *target, rc *restic.Restic, opts restic.BackupOptions, progress *progressWriter) backupRun {
	sum, err := rc.Backup(ctx, opts, progress.report)
	if err != nil && opts.Parent != "" && ctx.Err() == nil {
		if ok, xerr := t.bucket.Exists(ctx, layout.ResticSnapshotKey(t.resticPath, opts.Parent)); xerr == nil && !ok {
			r.Log.Info("backing up again without a parent: the previous backup's restic snapshot was forgotten meanwhile", "resticSnapshot", opts.Parent)
			opts.Parent = ""
			sum, err = rc.Backup(ctx, opts, progress.report)
		}
	}
	return backupRun{sum: sum, err: err, parent: opts.Parent}
}

// ReasonRepositoryNotEmpty: the component's restic repository has no
// config but its directory holds files; no repository is initialised
// over them.
const ReasonRepositoryNotEmpty = "RepositoryNotEmpty"

// prepareRepository makes the component's restic repository when it has
// none (in an empty directory only), else removes the locks of runs that
// are gone.
func (r *Runner) prepareRepository(ctx context.Context, t *target, rc *restic.Restic) (created bool, err error) {
	exists, err := t.bucket.Exists(ctx, layout.ResticConfigKey(t.resticPath))
	if err != nil {
		return false, fmt.Errorf("cannot look for the restic repository: %w", err)
	}
	if !exists {
		objs, _, err := t.bucket.ListPage(ctx, blob.FirstPageToken, 1, &blob.ListOptions{Prefix: t.resticPath})
		if err != nil {
			return false, fmt.Errorf("cannot look for the restic repository: %w", err)
		}
		if len(objs) > 0 {
			return false, &reasonError{reason: ReasonRepositoryNotEmpty, msg: fmt.Sprintf("the restic repository's directory %s holds %s but no config (the leftovers of a wiped or interrupted repository?); nothing is initialised over it: remove them, or put its config back", t.resticPath, strings.TrimPrefix(objs[0].Key, t.resticPath))}
		}
		r.Log.Info("initialising the restic repository", "repository", t.resticPath)
		return true, rc.Init(ctx)
	}
	if err := r.removeDeadLocks(ctx, t, rc); err != nil {
		return false, err
	}
	return false, unlockStale(ctx, t.bucket, t.resticPath, func(ctx context.Context) error { return rc.Unlock(ctx, false) })
}

// restoreFrom restores the files of restic snapshot id that match paths
// into dir: how the manifest takes back what changed during the run.
func restoreFrom(rc *restic.Restic, id string) restoreFunc {
	return func(ctx context.Context, dir string, paths []string) error {
		_, err := rc.Restore(ctx, id, dir, nil, includePatterns(paths)...)
		return err
	}
}

// checkResult is what the repository's structural check found.
type checkResult struct {
	sum *restic.CheckSummary
	err error
	// base is the ledger the backup builds on once it succeeds: the one
	// whose verdict stood, or what the check saw when it passed; nil when
	// the repository could not be listed.
	base *ledger
}

// pendingCheck is a structural check running beside the backup; result
// is set once done is closed.
type pendingCheck struct {
	done   chan struct{}
	cancel context.CancelFunc
	result checkResult
}

// startCheck checks the repository's structure while the backup runs:
// every pack the index names is in storage, and every earlier snapshot's
// trees are whole. That is what a new snapshot builds on: restic stores
// only the data the index lacks, so a pack storage lost would leave the
// new snapshot pointing at nothing, and the check finds it (heal repairs
// it). What this backup adds restic verifies itself before it uploads.
// Running beside the backup, the check's key derivation and index
// reading cost no time after it.
//
// A repository this run created holds nothing to build on, and one whose
// ledger still stands (ledger.go) holds what restic's last check
// vouched for: neither runs restic's check.
//
// The check runs without the exclusive lock: a lock left by an
// interrupted run of this component stays until restic deems it stale
// (30 minutes), and must not fail every backup until then. Packs the
// backup uploads before its index are not an error to restic's check.
func (r *Runner) startCheck(ctx context.Context, t *target, rc *restic.Restic, created bool, l *ledger, lerr error) *pendingCheck {
	ctx, cancel := context.WithCancel(ctx)
	p := &pendingCheck{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		start := time.Now()
		if created {
			p.result.base = &ledger{Checked: start, Files: map[string]int64{}}
			return
		}
		files, listErr := listLedger(ctx, t.bucket, t.resticPath)
		if listErr == nil {
			if lerr != nil {
				r.Log.Info("running restic's check", "why", t.redact.redact(lerr.Error()))
			} else if why := l.holds(files, start); why != "" {
				r.Log.Info("running restic's check", "why", why)
			} else {
				p.result.base = l
				return
			}
		}
		p.result.sum, p.result.err = rc.Check(ctx, restic.CheckOptions{NoLock: true})
		if listErr == nil && p.result.err == nil {
			p.result.base = &ledger{Checked: start, Files: files}
		}
	}()
	return p
}

// wait gives the check's result; it may be called more than once.
func (p *pendingCheck) wait() checkResult {
	<-p.done
	p.cancel()
	return p.result
}

// stop ends a check whose result no longer matters (the backup failed)
// and waits until restic has exited, so that the bridge it uses may stop.
func (p *pendingCheck) stop() {
	p.cancel()
	p.wait()
}

// unlockStale runs restic's unlock only when the repository holds a lock.
// Unlock removes stale locks only (those of dead runs on this host and
// those older than restic's threshold), so with none it has nothing to do,
// and a restic run costs about half a second of key derivation alone. A
// lock made after the listing belongs to a live run, which unlock would
// keep anyway.
func unlockStale(ctx context.Context, bucket *blob.Bucket, resticPath string, unlock func(context.Context) error) error {
	n, err := countLocks(ctx, bucket, resticPath)
	if err != nil || n == 0 {
		return err
	}
	return unlock(ctx)
}

func excludeArgs(patterns []string) []string {
	var args []string
	for _, p := range patterns {
		args = append(args, "--exclude="+p)
	}
	return args
}

// checkRead refuses a backup that read nothing from a source that has
// data: restic then made a snapshot, but claiming success would promise a
// restore that gives nothing back.
func checkRead(files []ManifestFile, sum *restic.BackupSummary) error {
	if sum == nil {
		return errors.New("cannot check the backup: restic reported no summary")
	}
	var size uint64
	for _, f := range files {
		size += uint64(f.Size)
	}
	switch {
	case len(files) > 0 && sum.TotalFilesProcessed == 0:
		return &reasonError{reason: ReasonNothingRead, msg: fmt.Sprintf("the source holds %d files but restic read none", len(files))}
	case size > 0 && sum.TotalBytesProcessed == 0:
		return &reasonError{reason: ReasonNothingRead, msg: fmt.Sprintf("the source holds %s but restic read no data", formatBytes(size))}
	}
	return nil
}

// progressWriter writes restic's progress to the Snapshot at most once per
// interval, off restic's output loop, and never after stop.
type progressWriter struct {
	mu     sync.Mutex
	latest *restic.BackupProgress
	done   chan struct{}
	wg     sync.WaitGroup
}

func newProgressWriter(w statusWriter, state componentState, interval time.Duration) *progressWriter {
	p := &progressWriter{done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		every(interval, p.done, func() {
			p.mu.Lock()
			latest := p.latest
			p.latest = nil
			p.mu.Unlock()
			if latest == nil {
				return
			}
			s := state
			s.Progress = latest
			ctx, cancel := context.WithTimeout(context.Background(), interval)
			// A lost progress write is not a failure of the backup.
			_ = w.writeComponent(ctx, buildComponent(s))
			cancel()
		})
	}()
	return p
}

// every calls f every interval until stop is closed.
func every(interval time.Duration, stop <-chan struct{}, f func()) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			f()
		}
	}
}

func (p *progressWriter) report(bp restic.BackupProgress) {
	p.mu.Lock()
	p.latest = &bp
	p.mu.Unlock()
}

func (p *progressWriter) stop() {
	close(p.done)
	p.wg.Wait()
}

// interrupted is the component of a run stopped from outside.
func interrupted(s componentState, errs *bridgeErrors, red redactor) componentState {
	s.Phase, s.End = storagev1alpha1.ComponentFailed, time.Now()
	s.Reason = restic.ReasonInterrupted
	s.Message = "the backup was stopped before it finished (the Job's deadline passed or its pod was deleted)"
	if serr := errs.last(); serr != nil {
		s.Message += "; the storage was failing: " + storage.Reason(serr) + ": " + storage.Message(serr)
	}
	s.Message = red.redact(s.Message)
	return s
}

// outcomeWriter keeps a final outcome final: once one is written, progress
// is no longer written, and only a forced final write (the run's own
// result) replaces it.
type outcomeWriter struct {
	mu    sync.Mutex
	w     statusWriter
	final bool
}

func (o *outcomeWriter) writeComponent(ctx context.Context, c storagev1alpha1.Component) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.final {
		return nil
	}
	return o.w.writeComponent(ctx, c)
}

func (o *outcomeWriter) finish(ctx context.Context, c storagev1alpha1.Component, force bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.final && !force {
		return nil
	}
	o.final = true
	return o.w.writeComponent(ctx, c)
}
