package backupverificationsession

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/sessionjob"
	"github.com/stashplane/stashplane/internal/sessionrun"
)

// verifierTask is the task name a verifier's Function is rendered as.
const verifierTask = "verify"

// verifierGrace is how long past its own deadline (the Job's
// activeDeadlineSeconds, else defaultVerifierTimeout) a verifier Job may
// stay unfinished before the session gives up on it: time for the Job
// controller to notice.
const verifierGrace = 5 * time.Minute

// defaultVerifierTimeout bounds a verifier Job that sets no deadline.
const defaultVerifierTimeout = time.Hour

// Bounds of what a verifier's output adds to the session's status: only
// its last line, clipped, is kept; the lines before it may be a server's
// log and are never copied.
const (
	logLines       = 5
	maxResultBytes = 512
)

// ExitCheckFailed is the exit code by which a verifier's Job says that its
// check ran and found the restored data wanting; 0 says it passed. Only
// this code writes VerificationFailed to the Snapshot: any other ending
// (another code, a pod that never ran, its deadline, an eviction) says
// the check was not made, and the session fails as VerifierNotRun.
const ExitCheckFailed = 1

// LogTailer reads the last lines a container printed.
type LogTailer interface {
	Tail(ctx context.Context, namespace, pod, container string, lines int64) (string, error)
}

// checks says whether a verifier checks the restored data with a Job of
// its Function, after the restore.
func checks(v *corev1alpha1.BackupVerifier) bool {
	return v.Spec.Type == corev1alpha1.VerificationQuery || v.Spec.Type == corev1alpha1.VerificationScript
}

// checkRunnable says why a Query or Script verifier cannot run as written,
// or "". Its Function mounts the restored claim, so the target must be a
// claim.
func checkRunnable(v *corev1alpha1.BackupVerifier) string {
	if !checks(v) {
		return ""
	}
	switch {
	case v.Spec.Function == "":
		return fmt.Sprintf("a %s verifier needs spec.function, the Function that checks the restored data", v.Spec.Type)
	case v.Spec.Type == corev1alpha1.VerificationScript && (v.Spec.Script == nil || v.Spec.Script.Location == ""):
		return "a Script verifier needs spec.script.location"
	case !isClaim(v.Spec.RestoreOption.Target):
		return fmt.Sprintf("a %s verifier restores into a PersistentVolumeClaim that its Function mounts, not a %s", v.Spec.Type, v.Spec.RestoreOption.Target.Kind)
	}
	return ""
}

// runVerifier is the step after a successful restore for a Query or Script
// verifier: it creates the Job of the verifier's Function and waits for
// it. handled is false when the caller goes on to the verdict Verified:
// the verifier is RestoreOnly or its Job succeeded. Otherwise the step
// has set what there is to say: still running (res requeues), cannot run
// (VerificationNotRunnable, no verdict), not run to its end
// (VerifierNotRun, no verdict), or failed (VerificationFailed, written to
// the Snapshot).
func (r *reconciler) runVerifier(ctx context.Context, s *corev1alpha1.BackupVerificationSession, rs *corev1alpha1.RestoreSession) (res ctrl.Result, handled bool, err error) {
	v := &corev1alpha1.BackupVerifier{}
	err = r.kube.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Spec.Invoker.Name}, v)
	if kerrors.IsNotFound(err) {
		if s.Status.VerifierJob == "" {
			return r.notRunnable(s, fmt.Sprintf("backupverifier %q was deleted before its check ran", s.Spec.Invoker.Name))
		}
		// The Job it asked for still says how the check went.
		v.Spec.Type = corev1alpha1.VerificationQuery
	} else if err != nil {
		return ctrl.Result{}, true, fmt.Errorf("cannot get backupverifier %q: %w", s.Spec.Invoker.Name, err)
	}
	if !checks(v) {
		return ctrl.Result{}, false, nil
	}
	if s.Status.VerifierJob == "" {
		return r.createVerifierJob(ctx, s, v, rs)
	}
	j := &batchv1.Job{}
	// The Job was made a moment ago, maybe by this very reconcile's
	// predecessor: a cache that has not seen it yet must not end the
	// session as if it vanished.
	err = sessionrun.Get(ctx, r.kube, r.api, client.ObjectKey{Namespace: s.Namespace, Name: s.Status.VerifierJob}, j)
	switch {
	case err != nil && !kerrors.IsNotFound(err):
		return ctrl.Result{}, true, fmt.Errorf("cannot get verifier job %q: %w", s.Status.VerifierJob, err)
	case kerrors.IsNotFound(err) || j.DeletionTimestamp != nil:
		if r.judged(ctx, s) {
			// A stale copy of a session that already ended and removed
			// its Job: the verdict stands, wait for the fresh copy.
			return ctrl.Result{RequeueAfter: 2 * time.Second}, true, nil
		}
		return ctrl.Result{}, true, r.withoutVerdict(ctx, s, corev1alpha1.ReasonVerifierNotRun,
			fmt.Sprintf("verifier job %q vanished before it finished", s.Status.VerifierJob))
	case !metav1.IsControlledBy(j, s):
		return r.notRunnable(s, fmt.Sprintf("job %q exists and does not belong to this session", j.Name))
	}
	pod := sessionjob.NewestPod(ctx, r.kube, r.api, j)
	end, how := jobOutcome(j, pod, r.clock.Now())
	if end == jobRunning {
		return ctrl.Result{RequeueAfter: 10 * time.Second}, true, nil
	}
	s.Status.VerifierResult = lastLine(r.output(ctx, j, pod))
	if end == jobPassed {
		return ctrl.Result{}, false, nil
	}
	msg := fmt.Sprintf("verifier job %q %s", j.Name, how)
	if s.Status.VerifierResult != "" {
		msg += "; its last line: " + s.Status.VerifierResult
	}
	if end == jobNotRun {
		return ctrl.Result{}, true, r.withoutVerdict(ctx, s, corev1alpha1.ReasonVerifierNotRun, msg)
	}
	return r.checkFailed(ctx, s, msg)
}

// createVerifierJob renders the verifier's Function and creates its one
// Job, owned by the session.
func (r *reconciler) createVerifierJob(ctx context.Context, s *corev1alpha1.BackupVerificationSession, v *corev1alpha1.BackupVerifier, rs *corev1alpha1.RestoreSession) (ctrl.Result, bool, error) {
	fn := &addonsv1alpha1.Function{}
	err := sessionrun.Get(ctx, r.kube, r.api, client.ObjectKey{Name: v.Spec.Function}, fn)
	if kerrors.IsNotFound(err) {
		return r.notRunnable(s, fmt.Sprintf("function %q of backupverifier %q does not exist", v.Spec.Function, v.Name))
	}
	if err != nil {
		return ctrl.Result{}, true, fmt.Errorf("cannot get function %q: %w", v.Spec.Function, err)
	}
	in, err := verifierInput(s, v, fn, rs.Spec.Target, r.image)
	if err != nil {
		return r.notRunnable(s, err.Error())
	}
	out, err := in.render(ctx, r.renderer)
	if err != nil {
		return r.notRunnable(s, fmt.Sprintf("cannot render function %q: %v", fn.Name, err))
	}
	jobs, err := out.Jobs()
	if err != nil {
		return r.notRunnable(s, fmt.Sprintf("cannot read the jobs function %q rendered: %v", fn.Name, err))
	}
	if len(jobs) != 1 || len(out.Objects) != 1 {
		return r.notRunnable(s, fmt.Sprintf("function %q rendered %d objects and %d jobs; a verifier function renders exactly one Job", fn.Name, len(out.Objects), len(jobs)))
	}
	j := jobs[0]
	if err := sessionjob.Ensure(ctx, r.kube, r.api, s, j, map[string]string{corev1alpha1.LabelBackupVerificationSession: s.Name}); err != nil {
		return r.verifierJobNotCreated(ctx, s, err)
	}
	s.Status.VerifierJob = j.Name
	sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeVerificationExecutorEnsured, true, corev1alpha1.ReasonVerificationExecutorEnsured, "")
	return ctrl.Result{RequeueAfter: 5 * time.Second}, true, nil
}

// verifierJobNotCreated records a verifier Job that could not be created.
// Until the session's deadline (sessionrun.Deadline from its creation,
// sessionrun.StartTimeout since a verification session sets no timeout of
// its own) it is retried; past it the session ends without a verdict, so
// that the Snapshot's lock is released and later sessions run.
func (r *reconciler) verifierJobNotCreated(ctx context.Context, s *corev1alpha1.BackupVerificationSession, err error) (ctrl.Result, bool, error) {
	err = fmt.Errorf("cannot ensure the verifier job: %w", err)
	sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeVerificationExecutorEnsured, false, corev1alpha1.ReasonVerificationExecutorNotEnsured, err.Error())
	if d := sessionrun.Deadline(s.CreationTimestamp.Time, nil, false); d != nil && r.clock.Now().After(*d) {
		return ctrl.Result{}, true, r.withoutVerdict(ctx, s, corev1alpha1.ReasonVerifierNotRun,
			fmt.Sprintf("the verifier job could not be created before the session's deadline: %v", err))
	}
	return ctrl.Result{}, true, err
}

// verifierRender is what a verifier's Function is rendered with.
type verifierRender struct {
	verifier string
	function *addonsv1alpha1.Function
	params   []byte
	context  render.Context
}

func (in verifierRender) render(ctx context.Context, r *render.Renderer) (*render.Result, error) {
	return r.RenderVerification(ctx, in.function, in.verifier, verifierTask, in.params, in.context)
}

// verifierInput is what a verifier's Function is rendered with: its one
// task, named verifierTask, the verifier's own; the query or script as
// the parameters; the restored claim as the target, with the verifier's
// volumes; the verifier's runtime settings.
func verifierInput(s *corev1alpha1.BackupVerificationSession, v *corev1alpha1.BackupVerifier, fn *addonsv1alpha1.Function, target *storagev1alpha1.TypedObjectReference, image string) (verifierRender, error) {
	var params []byte
	switch v.Spec.Type {
	case corev1alpha1.VerificationQuery:
		if v.Spec.Query != nil {
			params = v.Spec.Query.Params()
		}
	case corev1alpha1.VerificationScript:
		b, err := json.Marshal(map[string]any{"location": v.Spec.Script.Location, "args": append([]string{}, v.Spec.Script.Args...)})
		if err != nil {
			return verifierRender{}, fmt.Errorf("cannot encode the script of backupverifier %q: %w", v.Name, err)
		}
		params = b
	}
	if target == nil {
		return verifierRender{}, fmt.Errorf("cannot find the target of restoresession %q", s.Status.RestoreSession)
	}
	vols := make([]corev1.Volume, 0, len(v.Spec.Volumes))
	for _, vol := range v.Spec.Volumes {
		vols = append(vols, vol.ToCore())
	}
	var rt render.Runtime
	if rs := v.Spec.RuntimeSettings; rs != nil {
		if rs.Pod != nil {
			rt.Pod = *rs.Pod
		}
		if rs.Container != nil {
			rt.Container = *rs.Container
		}
	}
	return verifierRender{
		verifier: v.Name, function: fn, params: params,
		context: render.Context{
			Namespace: s.Namespace,
			Invoker:   render.ObjectRef{APIGroup: corev1alpha1.Group, Kind: "BackupVerifier", Name: v.Name},
			Session:   render.ObjectRef{APIGroup: corev1alpha1.Group, Kind: "BackupVerificationSession", Name: s.Name},
			Target: render.Target{
				APIGroup: target.APIGroup, Kind: target.Kind, Name: target.Name, Namespace: s.Namespace,
				Volumes: vols, VolumeMounts: v.Spec.VolumeMounts,
			},
			Repository: render.Repository{Name: s.Spec.Repository, Namespace: s.Namespace},
			Snapshot:   s.Spec.Snapshot,
			Image:      image,
			Runtime:    rt,
		},
	}, nil
}

// jobEnd is how a verifier Job ended, as far as the verdict goes.
type jobEnd int

const (
	// jobRunning: no outcome yet.
	jobRunning jobEnd = iota
	// jobPassed: the Job completed, its check passed.
	jobPassed
	// jobCheckFailed: the check ran and failed (ExitCheckFailed).
	jobCheckFailed
	// jobNotRun: the Job ended without its check saying pass or fail.
	jobNotRun
)

// jobOutcome says how a verifier Job ended, from its conditions and its
// newest pod (nil when it has none), and, unless it passed, how to say
// so. Only the check's own exit code ExitCheckFailed is a failed check. A
// pod whose image can never be pulled ends the Job early; a Job still
// unfinished well past its deadline has ended too: the session is never
// left Running for ever.
func jobOutcome(j *batchv1.Job, pod *corev1.Pod, now time.Time) (jobEnd, string) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return jobPassed, ""
		case batchv1.JobFailed:
			if c.Reason == batchv1.JobReasonDeadlineExceeded {
				return jobNotRun, fmt.Sprintf("timed out after %ds (DeadlineExceeded) before its check said pass or fail", ptrValue(j.Spec.ActiveDeadlineSeconds))
			}
			return failedPod(j, pod, c.Reason)
		}
	}
	if st := verifyContainer(j, pod); st != nil && st.State.Waiting != nil {
		switch st.State.Waiting.Reason {
		case "InvalidImageName", "ErrImageNeverPull":
			return jobNotRun, fmt.Sprintf("cannot start its container: %s", st.State.Waiting.Reason)
		}
	}
	limit := defaultVerifierTimeout
	if d := j.Spec.ActiveDeadlineSeconds; d != nil {
		limit = time.Duration(*d) * time.Second
	}
	if now.Sub(j.CreationTimestamp.Time) > limit+verifierGrace {
		return jobNotRun, fmt.Sprintf("did not finish within %s", limit+verifierGrace)
	}
	return jobRunning, ""
}

// failedPod tells a failed Job's check that failed (exit code
// ExitCheckFailed) from one that was not made, by how its pod ended.
func failedPod(j *batchv1.Job, pod *corev1.Pod, reason string) (jobEnd, string) {
	if reason == "" {
		reason = "Failed"
	}
	st := verifyContainer(j, pod)
	switch {
	case pod != nil && pod.Status.Reason != "":
		return jobNotRun, fmt.Sprintf("failed (%s): its pod was stopped (%s) before its check said pass or fail", reason, pod.Status.Reason)
	case st == nil || st.State.Terminated == nil:
		return jobNotRun, fmt.Sprintf("failed (%s) without a container that ran its check to the end", reason)
	case st.State.Terminated.ExitCode == ExitCheckFailed:
		return jobCheckFailed, fmt.Sprintf("failed: its check did not pass (exit code %d)", ExitCheckFailed)
	}
	t := st.State.Terminated
	return jobNotRun, fmt.Sprintf("failed (%s): its container exited with code %d (%s), which is not a check's verdict", reason, t.ExitCode, t.Reason)
}

// verifyContainer is the status of the Job's first container in pod, or
// nil.
func verifyContainer(j *batchv1.Job, pod *corev1.Pod) *corev1.ContainerStatus {
	if pod == nil || len(j.Spec.Template.Spec.Containers) == 0 {
		return nil
	}
	for i := range pod.Status.ContainerStatuses {
		if st := &pod.Status.ContainerStatuses[i]; st.Name == j.Spec.Template.Spec.Containers[0].Name {
			return st
		}
	}
	return nil
}

func ptrValue(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// output is the end of what the Job's pod printed, or "" when it cannot
// be read; the verdict never waits for logs.
func (r *reconciler) output(ctx context.Context, j *batchv1.Job, pod *corev1.Pod) string {
	if r.logs == nil || pod == nil || len(j.Spec.Template.Spec.Containers) == 0 {
		return ""
	}
	out, err := r.logs.Tail(ctx, j.Namespace, pod.Name, j.Spec.Template.Spec.Containers[0].Name, logLines)
	if err != nil {
		r.log.V(1).Info("cannot read verifier output", "job", j.Name, "error", err.Error())
		return ""
	}
	return strings.TrimSpace(out)
}

// lastLine is the verifier's result: its last line of output.
func lastLine(out string) string {
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	return clip(strings.TrimSpace(out), maxResultBytes)
}

// clip shortens s to at most n bytes, keeping its end, where a failing
// program says why.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + strings.ToValidUTF8(s[len(s)-n:], "")
}

// judged says whether the Snapshot already carries this session's
// verdict.
func (r *reconciler) judged(ctx context.Context, s *corev1alpha1.BackupVerificationSession) bool {
	snap := &storagev1alpha1.Snapshot{}
	if err := r.kube.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Spec.Snapshot}, snap); err != nil {
		return false
	}
	return snap.Status.VerificationSession == s.Name && snap.Status.VerificationStatus != ""
}

// notRunnable ends the session without a verdict: the verifier, not the
// Snapshot, is at fault.
func (r *reconciler) notRunnable(s *corev1alpha1.BackupVerificationSession, msg string) (ctrl.Result, bool, error) {
	sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeRestoreSucceeded, true, corev1alpha1.ReasonRestoreSucceeded, "")
	sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeVerificationExecutorEnsured, false, corev1alpha1.ReasonVerificationNotRunnable, msg)
	return ctrl.Result{}, true, nil
}

// checkFailed records a failed check: the Snapshot restored, but the
// verifier found it wanting, so it is VerificationFailed.
func (r *reconciler) checkFailed(ctx context.Context, s *corev1alpha1.BackupVerificationSession, msg string) (ctrl.Result, bool, error) {
	if err := r.writeVerdict(ctx, s, storagev1alpha1.SnapshotVerificationFailed); err != nil {
		return ctrl.Result{}, true, err
	}
	sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeRestoreSucceeded, true, corev1alpha1.ReasonRestoreSucceeded, "")
	sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeBackupVerified, false, corev1alpha1.ReasonVerificationFailed, msg)
	return ctrl.Result{}, true, nil
}

// withoutVerdict ends the session Failed with reason and msg and gives
// the Snapshot no verdict: what ran cannot say whether the Snapshot is
// good. A Snapshot that has a verdict keeps it; one without is marked
// NotVerified.
func (r *reconciler) withoutVerdict(ctx context.Context, s *corev1alpha1.BackupVerificationSession, reason xpv2.ConditionReason, msg string) error {
	snap := &storagev1alpha1.Snapshot{}
	err := r.kube.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Spec.Snapshot}, snap)
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("cannot get snapshot %q: %w", s.Spec.Snapshot, err)
	}
	if err == nil && snap.Status.VerificationStatus == "" {
		patch := client.MergeFrom(snap.DeepCopy())
		snap.Status.VerificationStatus = storagev1alpha1.SnapshotNotVerified
		if err := r.kube.Status().Patch(ctx, snap, patch); err != nil {
			return fmt.Errorf("cannot mark snapshot %q not verified: %w", snap.Name, err)
		}
	}
	sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeRestoreSucceeded, true, corev1alpha1.ReasonRestoreSucceeded, "")
	sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeBackupVerified, false, reason, msg)
	return nil
}

// notePassedCheck adds a passed check's result to the verdict's message.
func notePassedCheck(clk clock.PassiveClock, s *corev1alpha1.BackupVerificationSession) {
	if s.Status.VerifierJob == "" {
		return
	}
	c := s.GetCondition(corev1alpha1.TypeBackupVerified)
	msg := fmt.Sprintf("%s; verifier job %q passed", c.Message, s.Status.VerifierJob)
	if s.Status.VerifierResult != "" {
		msg += ": " + s.Status.VerifierResult
	}
	sessionrun.SetCondition(clk, s, corev1alpha1.TypeBackupVerified, true, c.Reason, msg)
}

// removeVerifierJob deletes the session's verifier Job and with it its
// pods, which hold the scratch claim.
func (r *reconciler) removeVerifierJob(ctx context.Context, s *corev1alpha1.BackupVerificationSession) error {
	if s.Status.VerifierJob == "" {
		return nil
	}
	j := &batchv1.Job{}
	err := r.kube.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Status.VerifierJob}, j)
	if kerrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot get verifier job %q: %w", s.Status.VerifierJob, err)
	}
	if !metav1.IsControlledBy(j, s) || j.DeletionTimestamp != nil {
		return nil
	}
	if err := r.kube.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("cannot delete verifier job %q: %w", j.Name, err)
	}
	return nil
}
