// Package backupverificationsession reconciles BackupVerificationSessions:
// one verification of one Snapshot by a BackupVerifier. The session is
// skipped when the Snapshot is already Verified (or paused). Otherwise the
// controller prepares the verifier's scratch target, composes a
// RestoreSession (owned by the session) that restores the Snapshot into
// it, and waits for the restore. For a RestoreOnly verifier the verdict is
// the restore's outcome, which includes the agent's comparison of every
// restored file with the backup's content manifest; a Query or Script
// verifier's Function then checks the restored data in one Job
// (verifier.go), whose exit is the verdict. The verdict is written
// to the Snapshot's status.verificationStatus and verificationSession, and
// a scratch target the session created is removed once the session ends,
// whatever its outcome.
//
// Conditions, all set by this controller:
//
//	BackupVerificationSkipped    True when the Snapshot needs no
//	                             verification (SnapshotAlreadyVerified,
//	                             SnapshotPaused).
//	VerificationExecutorEnsured  True once the RestoreSession exists; False
//	                             with VerificationNotRunnable when the
//	                             verification cannot run as written
//	                             (verifier.go: also a Query or Script
//	                             verifier whose Function cannot render
//	                             its one Job).
//	RestoreSucceeded             follows the RestoreSession's outcome.
//	BackupVerified               the verdict, set once it is written to the
//	                             Snapshot.
//	VerificationExecutorEnsured  also False with WaitingForSession while
//	                             another session holds the Snapshot
//	                             (lifecycle.go); the phase stays Running.
//	VerificationSessionHistoryCleaned  True once a finished session has
//	                             removed the sessions beyond its verifier's
//	                             sessionHistoryLimit.
//
// Once a session ends, lifecycle.go retries it if it failed and the
// verifier's retryConfig allows, and trims the session history; what the
// restore measured goes to the session, the Snapshot and the metrics in
// metrics.go.
package backupverificationsession

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/sessionjob"
	"github.com/stashplane/stashplane/internal/sessionrun"
	"github.com/stashplane/stashplane/internal/version"
)

// Options configure the controller.
type Options struct {
	Controller controller.Options
	Log        logr.Logger
	Clock      clock.Clock
	// AmbientNamespaces may use storages of other namespaces that name no
	// credential Secret (tenancy.CheckStorage).
	AmbientNamespaces []string
	// Renderer renders Query and Script verifiers' Functions.
	Renderer *render.Renderer
	// Logs reads a verifier Job's output; by default through the API
	// server with the manager's credentials.
	Logs LogTailer
}

// Setup adds the BackupVerificationSession controller to the manager.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Renderer == nil {
		o.Renderer = render.New(render.Options{})
	}
	if o.Logs == nil {
		cs, err := kubernetes.NewForConfig(mgr.GetConfig())
		if err != nil {
			return fmt.Errorf("cannot make a client for verifier logs: %w", err)
		}
		o.Logs = sessionjob.PodLogs{CS: cs}
	}
	r := &reconciler{kube: mgr.GetClient(), api: mgr.GetAPIReader(), clock: o.Clock, ambient: o.AmbientNamespaces, log: o.Log.WithValues("controller", "backupverificationsession"),
		renderer: o.Renderer, image: version.Image(), logs: o.Logs}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("backupverificationsession").
		WithOptions(o.Controller).
		For(&corev1alpha1.BackupVerificationSession{}).
		Owns(&corev1alpha1.RestoreSession{}).
		Owns(&corev1.PersistentVolumeClaim{}, builder.OnlyMetadata).
		Owns(&batchv1.Job{}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up backupverificationsession controller: %w", err)
	}
	return nil
}

type reconciler struct {
	kube client.Client
	// api reads past the cache, for the Snapshot's lock.
	api   client.Reader
	clock clock.Clock
	log   logr.Logger
	// renderer, image and logs run Query and Script verifiers' Jobs.
	renderer *render.Renderer
	image    string
	logs     LogTailer
	ambient  []string
}

func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	s := &corev1alpha1.BackupVerificationSession{}
	if err := r.kube.Get(ctx, req.NamespacedName, s); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if s.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	before := s.DeepCopy()
	var res ctrl.Result
	var err error
	if !done(phase(s)) {
		res, err = r.reconcile(ctx, s)
	}
	s.Status.Phase = phase(s)
	if done(s.Status.Phase) {
		if s.Status.Duration == "" {
			s.Status.Duration = r.clock.Since(s.CreationTimestamp.Time).Round(time.Second).String()
		}
		var ferr error
		res, ferr = sessionrun.RunAll(ctx, &run{s: s}, r.finishedSteps())
		err = errors.Join(err, ferr)
	}
	if !equality.Semantic.DeepEqual(before.Status, s.Status) {
		if uerr := r.kube.Status().Update(ctx, s); uerr != nil {
			return ctrl.Result{}, errors.Join(err, fmt.Errorf("cannot update backupverificationsession status: %w", uerr))
		}
	}
	return res, err
}

// finishedSteps run once a session has an outcome, each whatever the
// others did: the scratch target goes (on success and on failure alike),
// the Snapshot's lock is released, and the verifier's retry and history
// rules apply (lifecycle.go).
func (r *reconciler) finishedSteps() []sessionrun.Step[*run] {
	return []sessionrun.Step[*run]{
		{Name: "scratch", Run: func(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
			return ctrl.Result{}, false, r.removeScratch(ctx, rn.s)
		}},
		{Name: "lock", Run: func(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
			return ctrl.Result{}, false, r.release(ctx, rn.s)
		}},
		{Name: "retry and history", Run: func(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
			wait, err := r.finish(ctx, rn.s)
			return ctrl.Result{RequeueAfter: wait}, false, err
		}},
	}
}

func done(p corev1alpha1.BackupVerificationSessionPhase) bool {
	return p == corev1alpha1.VerificationSessionSucceeded || p == corev1alpha1.VerificationSessionFailed || p == corev1alpha1.VerificationSessionSkipped
}

// notRunnable are the reasons of a VerificationExecutorEnsured=False that
// end the session without a verdict.
var notRunnable = map[xpv2.ConditionReason]bool{
	corev1alpha1.ReasonVerificationNotRunnable:        true,
	corev1alpha1.ReasonVerificationTypeNotImplemented: true,
}

// phase is derived from the conditions: Skipped when the verification was
// skipped, Succeeded or Failed by the verdict, Failed when the restore
// failed or the verification cannot run, and Running otherwise.
func phase(s *corev1alpha1.BackupVerificationSession) corev1alpha1.BackupVerificationSessionPhase {
	if s.GetCondition(corev1alpha1.TypeBackupVerificationSkipped).Status == corev1.ConditionTrue {
		return corev1alpha1.VerificationSessionSkipped
	}
	switch s.GetCondition(corev1alpha1.TypeBackupVerified).Status {
	case corev1.ConditionTrue:
		return corev1alpha1.VerificationSessionSucceeded
	case corev1.ConditionFalse:
		return corev1alpha1.VerificationSessionFailed
	}
	if s.GetCondition(corev1alpha1.TypeRestoreSucceeded).Status == corev1.ConditionFalse {
		return corev1alpha1.VerificationSessionFailed
	}
	if ex := s.GetCondition(corev1alpha1.TypeVerificationExecutorEnsured); ex.Status == corev1.ConditionFalse && notRunnable[ex.Reason] {
		return corev1alpha1.VerificationSessionFailed
	}
	return corev1alpha1.VerificationSessionRunning
}

// verdict is what a finished restore says of the Snapshot, for a
// RestoreOnly verifier: the restore either succeeded (and with it the
// agent's manifest comparison) or failed, with its reason. A restore that
// could not run as composed (Invalid) gives no verdict on the Snapshot.
type verdict struct {
	// final is false while the restore is still going.
	final bool
	// runnable is false when the restore was refused as invalid: the
	// verifier is at fault, not the Snapshot.
	runnable bool
	verified bool
	// noVerdict, when set, ends the session Failed with this reason and
	// leaves the Snapshot's verdict as it was: the restore ran, but what
	// it found supports no verdict (ContentNotChecked).
	noVerdict xpv2.ConditionReason
	message   string
}

func restoreVerdict(rs *corev1alpha1.RestoreSession) verdict {
	switch rs.Status.Phase {
	case corev1alpha1.RestoreSucceeded:
		return verdict{final: true, runnable: true, verified: true}
	case corev1alpha1.RestoreInvalid:
		return verdict{final: true, message: restoreFailure(rs)}
	case corev1alpha1.RestoreFailed:
		return verdict{final: true, runnable: true, message: restoreFailure(rs)}
	}
	return verdict{}
}

// restoreFailure says why a RestoreSession failed, from its conditions or
// its first failed component. The RestoreSession's messages carry no
// secret, so they are passed on as they are.
func restoreFailure(rs *corev1alpha1.RestoreSession) string {
	// A failed component's own error says most: the agent's reason, such
	// as DamagedPack or RestoreMismatch, and what it found.
	for _, name := range slices.Sorted(maps.Keys(rs.Status.Components)) {
		if c := rs.Status.Components[name]; c.Phase == corev1alpha1.RestoreFailed && c.Error != "" {
			return fmt.Sprintf("restoresession %q: component %q failed: %s", rs.Name, name, c.Error)
		}
	}
	for _, t := range []xpv2.ConditionType{corev1alpha1.TypeRestoreIncomplete, corev1alpha1.TypeRestoreTargetFound, corev1alpha1.TypeRestoreExecutorEnsured} {
		c := rs.GetCondition(t)
		bad := c.Status == corev1.ConditionFalse
		if t == corev1alpha1.TypeRestoreIncomplete {
			bad = c.Status == corev1.ConditionTrue
		}
		if bad {
			if c.Message != "" {
				return fmt.Sprintf("restoresession %q: %s: %s", rs.Name, c.Reason, c.Message)
			}
			return fmt.Sprintf("restoresession %q: %s", rs.Name, c.Reason)
		}
	}
	for name, c := range rs.Status.Components {
		if c.Phase == corev1alpha1.RestoreFailed {
			return fmt.Sprintf("restoresession %q: component %q failed: %s", rs.Name, name, c.Error)
		}
	}
	return fmt.Sprintf("restoresession %q is %s", rs.Name, rs.Status.Phase)
}
