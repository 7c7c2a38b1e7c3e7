package backupverificationsession

import (
	"context"
	"fmt"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/sessionrun"
)

// A startCheck looks at one thing that decides whether a verification
// starts now. It returns a stop when the session must not go on (skipped,
// refused, or waiting for another session), a zero stop when the next
// check may run, and err when the API server could not be asked (the
// session is reconciled again). What a check finds goes into in.
type startCheck func(ctx context.Context, r *reconciler, in *startInput) (stop, error)

// startInput is what the checks see and gather.
type startInput struct {
	s        *corev1alpha1.BackupVerificationSession
	verifier *corev1alpha1.BackupVerifier
	snapshot *storagev1alpha1.Snapshot
	// repo is the Snapshot's Repository; nil when it is gone.
	repo   *storagev1alpha1.Repository
	target *storagev1alpha1.TypedObjectReference
}

// How a stop leaves the session.
type stopKind int

const (
	// stopSkipped: the Snapshot needs no verification; the session ends
	// Skipped.
	stopSkipped stopKind = iota
	// stopRefused: the verification cannot run as written; the session
	// fails without a verdict.
	stopRefused
	// stopWaiting: another session verifies the Snapshot; this one stays
	// Running and looks again.
	stopWaiting
)

// stop is why the chain stopped; a zero stop (no reason) is none.
type stop struct {
	kind   stopKind
	reason xpv2.ConditionReason
	msg    string
}

func refused(msg string) stop {
	return stop{kind: stopRefused, reason: corev1alpha1.ReasonVerificationNotRunnable, msg: msg}
}

// apply records the stop in the session's conditions at the clock's time
// and says when to look again.
func (st stop) apply(clk clock.PassiveClock, s *corev1alpha1.BackupVerificationSession) ctrl.Result {
	switch st.kind {
	case stopSkipped:
		sessionrun.SetCondition(clk, s, corev1alpha1.TypeBackupVerificationSkipped, true, st.reason, st.msg)
	case stopWaiting:
		sessionrun.SetCondition(clk, s, corev1alpha1.TypeVerificationExecutorEnsured, false, st.reason, st.msg)
		return ctrl.Result{RequeueAfter: 10 * time.Second}
	default:
		sessionrun.SetCondition(clk, s, corev1alpha1.TypeVerificationExecutorEnsured, false, st.reason, st.msg)
	}
	return ctrl.Result{}
}

// startChain is the order the checks run in: the verifier and the
// Snapshot must exist; a Snapshot that needs no verification skips the
// session before anything is asked of it; only a usable Snapshot is
// locked; the verifier's settings, a target namespace other than the
// session's (remote.go) and the target are checked by the session that
// holds the lock, and the target is made last.
var startChain = []startCheck{checkVerifier, checkSnapshot, checkSkip, checkSnapshotUsable, checkHolder, checkVerifierRunnable, checkRemote, checkTarget}

// check runs the chain and stops at the first check that stops.
func (r *reconciler) check(ctx context.Context, s *corev1alpha1.BackupVerificationSession) (*startInput, stop, error) {
	in := &startInput{s: s}
	for _, c := range startChain {
		st, err := c(ctx, r, in)
		if err != nil || st.reason != "" {
			return in, st, err
		}
	}
	return in, stop{}, nil
}

// checkVerifier: the invoker is a BackupVerifier that exists.
func checkVerifier(ctx context.Context, r *reconciler, in *startInput) (stop, error) {
	s := in.s
	if k := s.Spec.Invoker.Kind; k != "" && k != "BackupVerifier" {
		return refused(fmt.Sprintf("the invoker is a %s, not a BackupVerifier", k)), nil
	}
	v := &corev1alpha1.BackupVerifier{}
	err := sessionrun.Get(ctx, r.kube, r.api, client.ObjectKey{Namespace: s.Namespace, Name: s.Spec.Invoker.Name}, v)
	if kerrors.IsNotFound(err) {
		return refused(fmt.Sprintf("backupverifier %q does not exist", s.Spec.Invoker.Name)), nil
	}
	if err != nil {
		return stop{}, fmt.Errorf("cannot get backupverifier %q: %w", s.Spec.Invoker.Name, err)
	}
	in.verifier = v
	return stop{}, nil
}

// checkSnapshot: the Snapshot exists.
func checkSnapshot(ctx context.Context, r *reconciler, in *startInput) (stop, error) {
	s := in.s
	snap := &storagev1alpha1.Snapshot{}
	err := sessionrun.Get(ctx, r.kube, r.api, client.ObjectKey{Namespace: s.Namespace, Name: s.Spec.Snapshot}, snap)
	if kerrors.IsNotFound(err) {
		return refused(fmt.Sprintf("snapshot %q does not exist", s.Spec.Snapshot)), nil
	}
	if err != nil {
		return stop{}, fmt.Errorf("cannot get snapshot %q: %w", s.Spec.Snapshot, err)
	}
	in.snapshot = snap
	return stop{}, nil
}

// checkSkip: the Snapshot is neither Verified already (by a verdict given
// since the Repository's last prune) nor paused.
func checkSkip(ctx context.Context, r *reconciler, in *startInput) (stop, error) {
	repo := &storagev1alpha1.Repository{}
	err := sessionrun.Get(ctx, r.kube, r.api, client.ObjectKey{Namespace: in.s.Namespace, Name: in.snapshot.Spec.Repository}, repo)
	if client.IgnoreNotFound(err) != nil {
		return stop{}, fmt.Errorf("cannot get repository %q: %w", in.snapshot.Spec.Repository, err)
	}
	if err == nil {
		in.repo = repo
	}
	reason, msg := skip(in.snapshot)
	if reason == string(corev1alpha1.ReasonSnapshotAlreadyVerified) &&
		(storagev1alpha1.VerdictBeforePrune(repo, in.snapshot) || verdictAged(in.verifier, in.snapshot, r.clock.Now())) {
		return stop{}, nil
	}
	if reason != "" {
		return stop{kind: stopSkipped, reason: xpv2.ConditionReason(reason), msg: msg}, nil
	}
	return stop{}, nil
}

// verdictAged says whether a Snapshot's verdict is older than the
// verifier's verdictMaxAge (a week when unset), so that it is given again.
func verdictAged(v *corev1alpha1.BackupVerifier, s *storagev1alpha1.Snapshot, now time.Time) bool {
	maxAge := 7 * 24 * time.Hour
	if v != nil && v.Spec.VerdictMaxAge != nil {
		maxAge = v.Spec.VerdictMaxAge.Duration
	}
	if maxAge <= 0 || s.Status.VerificationTime == nil {
		return false
	}
	return now.Sub(s.Status.VerificationTime.Time) > maxAge
}

// checkSnapshotUsable: the Snapshot is of the session's Repository and
// Succeeded.
func checkSnapshotUsable(_ context.Context, _ *reconciler, in *startInput) (stop, error) {
	snap := in.snapshot
	switch {
	case snap.Spec.Repository != in.s.Spec.Repository:
		return refused(fmt.Sprintf("snapshot %q belongs to repository %q, not %q", snap.Name, snap.Spec.Repository, in.s.Spec.Repository)), nil
	case snap.Status.Phase != storagev1alpha1.SnapshotSucceeded:
		return refused(fmt.Sprintf("snapshot %q is %q, not Succeeded", snap.Name, snap.Status.Phase)), nil
	}
	return stop{}, nil
}

// checkHolder: no other session verifies the Snapshot, and this one holds
// its lock (lifecycle.go).
func checkHolder(ctx context.Context, r *reconciler, in *startInput) (stop, error) {
	holder, err := r.holder(ctx, in.s)
	if err != nil || holder == "" {
		return stop{}, err
	}
	return stop{kind: stopWaiting, reason: corev1alpha1.ReasonVerificationWaiting,
		msg: fmt.Sprintf("backupverificationsession %q is verifying snapshot %q; this session starts when it ends", holder, in.snapshot.Name)}, nil
}

// checkVerifierRunnable: the verifier's settings can run (verifier.go).
func checkVerifierRunnable(_ context.Context, _ *reconciler, in *startInput) (stop, error) {
	if msg := checkRunnable(in.verifier); msg != "" {
		return refused(msg), nil
	}
	return stop{}, nil
}

// checkTarget: the target exists or, for a claim, is made for the run.
func checkTarget(ctx context.Context, r *reconciler, in *startInput) (stop, error) {
	target, msg, err := r.target(ctx, in.s, in.verifier, in.snapshot)
	if err != nil {
		sessionrun.SetCondition(r.clock, in.s, corev1alpha1.TypeVerificationExecutorEnsured, false, corev1alpha1.ReasonVerificationExecutorNotEnsured, err.Error())
		return stop{}, err
	}
	if msg != "" {
		return refused(msg), nil
	}
	in.target = target
	return stop{}, nil
}
