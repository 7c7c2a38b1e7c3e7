package backupverificationsession

import (
	"context"
	"fmt"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/cachestore"
	"github.com/stashplane/stashplane/internal/sessionrun"
)

// restoreTimeout bounds a verification's restore; a verifier has no field
// for it yet.
const restoreTimeout = time.Hour

// minScratchSize is the smallest scratch claim a session asks for.
const minScratchSize = 1 << 30

// reconcile moves a session that has no outcome yet on, by its steps in
// order: before its RestoreSession exists it checks that the verification
// should and can run and composes the restore; afterwards it waits for
// the restore and turns its outcome into the verdict.
func (r *reconciler) reconcile(ctx context.Context, s *corev1alpha1.BackupVerificationSession) (ctrl.Result, error) {
	return sessionrun.RunSteps(ctx, &run{s: s}, []sessionrun.Step[*run]{
		{Name: "restore", Run: r.restore},
		{Name: "verdict", Run: r.verdict},
	})
}

// run is what one reconcile of a session finds and its steps pass on.
type run struct {
	s  *corev1alpha1.BackupVerificationSession
	rs *corev1alpha1.RestoreSession
}

// restore finds the session's RestoreSession, or starts the verification
// (check chain, target, RestoreSession) when there is none.
func (r *reconciler) restore(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	s := rn.s
	rs := &corev1alpha1.RestoreSession{}
	err := r.kube.Get(ctx, client.ObjectKey{Namespace: restoreNamespace(s), Name: s.Name}, rs)
	switch {
	case kerrors.IsNotFound(err):
		res, err := r.start(ctx, s)
		return res, true, err
	case err != nil:
		return ctrl.Result{}, true, fmt.Errorf("cannot get restoresession %q: %w", s.Name, err)
	case !madeBy(rs, s):
		sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeVerificationExecutorEnsured, false, corev1alpha1.ReasonVerificationNotRunnable,
			fmt.Sprintf("restoresession %s/%s exists and does not belong to this session", rs.Namespace, rs.Name))
		return ctrl.Result{}, true, nil
	}
	rn.rs = rs
	return ctrl.Result{}, false, nil
}

// restoreNamespace is where a session's RestoreSession and scratch claim
// live: the verifier's target namespace, as recorded when the restore was
// composed, else the session's own.
func restoreNamespace(s *corev1alpha1.BackupVerificationSession) string {
	if s.Status.RestoreSessionNamespace != "" {
		return s.Status.RestoreSessionNamespace
	}
	return s.Namespace
}

// madeBy says whether the session made o: in its own namespace o is
// controlled by it; in another, where no owner reference can name it, o
// carries its name and namespace as labels.
func madeBy(o client.Object, s *corev1alpha1.BackupVerificationSession) bool {
	if o.GetNamespace() == s.Namespace {
		return metav1.IsControlledBy(o, s)
	}
	l := o.GetLabels()
	return l[corev1alpha1.LabelBackupVerificationSession] == s.Name && l[corev1alpha1.LabelBackupVerificationSessionNamespace] == s.Namespace
}

// own makes o the session's: a controller reference in the session's
// namespace, labels naming it elsewhere.
func (r *reconciler) own(s *corev1alpha1.BackupVerificationSession, o client.Object) error {
	if o.GetNamespace() == s.Namespace {
		return controllerutil.SetControllerReference(s, o, r.kube.Scheme())
	}
	l := o.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[corev1alpha1.LabelBackupVerificationSession] = s.Name
	l[corev1alpha1.LabelBackupVerificationSessionNamespace] = s.Namespace
	o.SetLabels(l)
	return nil
}

// verdict turns the restore's outcome, and a Query or Script verifier's,
// into the verdict.
func (r *reconciler) verdict(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	res, err := r.judge(ctx, rn.s, rn.rs)
	return res, false, err
}

// start runs the checks that may skip, refuse or hold back the
// verification (checks.go), then creates the RestoreSession into the
// target the checks prepared.
func (r *reconciler) start(ctx context.Context, s *corev1alpha1.BackupVerificationSession) (ctrl.Result, error) {
	in, st, err := r.check(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if st.reason != "" {
		return st.apply(r.clock, s), nil
	}
	rs := restoreSession(s, in.verifier, in.target, in.repo)
	if err := r.withObjectsTask(ctx, rs, in.snapshot); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.own(s, rs); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot own restoresession %q: %w", rs.Name, err)
	}
	if rs.Namespace != s.Namespace {
		// Recorded before the create: a later reconcile looks there.
		s.Status.RestoreSessionNamespace = rs.Namespace
	}
	if err := r.kube.Create(ctx, rs); err != nil && !kerrors.IsAlreadyExists(err) {
		err = fmt.Errorf("cannot create restoresession %q: %w", rs.Name, err)
		sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeVerificationExecutorEnsured, false, corev1alpha1.ReasonVerificationExecutorNotEnsured, err.Error())
		return ctrl.Result{}, err
	}
	s.Status.RestoreSession = rs.Name
	sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeVerificationExecutorEnsured, true, corev1alpha1.ReasonVerificationExecutorEnsured, "")
	return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
}

// skip says why a Snapshot needs no verification, or "".
func skip(snap *storagev1alpha1.Snapshot) (reason, msg string) {
	switch {
	case snap.Status.VerificationStatus == storagev1alpha1.SnapshotVerified:
		return string(corev1alpha1.ReasonSnapshotAlreadyVerified),
			fmt.Sprintf("snapshot %q was verified by backupverificationsession %q", snap.Name, snap.Status.VerificationSession)
	case snap.Spec.Paused:
		return string(corev1alpha1.ReasonSnapshotPaused), fmt.Sprintf("snapshot %q is paused", snap.Name)
	}
	return "", ""
}

// judge waits for the RestoreSession's outcome, writes the verdict to the
// Snapshot and then records it on the session.
func (r *reconciler) judge(ctx context.Context, s *corev1alpha1.BackupVerificationSession, rs *corev1alpha1.RestoreSession) (ctrl.Result, error) {
	s.Status.RestoreSession = rs.Name
	v := restoreVerdict(rs)
	if !v.final {
		r.showPruneWait(s, rs)
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	if v.verified {
		snap := &storagev1alpha1.Snapshot{}
		if err := r.kube.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Spec.Snapshot}, snap); err != nil {
			return ctrl.Result{}, fmt.Errorf("cannot get snapshot %q: %w", s.Spec.Snapshot, err)
		}
		v = everyComponent(v, snap, rs)
	}
	v = setupFault(v, rs)
	s.Status.RestoreDuration = rs.Status.Duration
	summarise(s, rs)
	if !v.runnable {
		sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeVerificationExecutorEnsured, false, corev1alpha1.ReasonVerificationNotRunnable, v.message)
		sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeRestoreSucceeded, false, corev1alpha1.ReasonRestoreFailed, v.message)
		return ctrl.Result{}, nil
	}
	if v.noVerdict != "" {
		return ctrl.Result{}, r.withoutVerdict(ctx, s, v.noVerdict, v.message)
	}
	if v.verified {
		// Query and Script verifiers check the restored data next.
		if res, handled, err := r.runVerifier(ctx, s, rs); handled {
			return res, err
		}
	}
	status := storagev1alpha1.SnapshotVerificationFailed
	if v.verified {
		status = storagev1alpha1.SnapshotVerified
	}
	// The Snapshot first: a session shows its verdict only once the
	// Snapshot carries it, so a failed write is retried.
	if err := r.writeVerdict(ctx, s, status); err != nil {
		return ctrl.Result{}, err
	}
	if v.verified {
		sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeRestoreSucceeded, true, corev1alpha1.ReasonRestoreSucceeded, "")
		msg := fmt.Sprintf("snapshot %q restored in %s (%d bytes) and all %d restored files matched the backup's content manifest",
			s.Spec.Snapshot, rs.Status.Duration, s.Status.BytesRestored, s.Status.FilesChecked)
		if s.Status.FilesChecked == 0 {
			msg = fmt.Sprintf("snapshot %q restored in %s; it holds no data, so there were no files to compare", s.Spec.Snapshot, rs.Status.Duration)
		}
		if per := componentsChecked(rs); per != "" {
			msg += ", each component its own (" + per + ")"
		}
		sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeBackupVerified, true, corev1alpha1.ReasonVerificationPassed, msg)
		notePassedCheck(r.clock, s)
		return ctrl.Result{}, nil
	}
	sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeRestoreSucceeded, false, corev1alpha1.ReasonRestoreFailed, v.message)
	sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeBackupVerified, false, corev1alpha1.ReasonVerificationFailed, v.message)
	return ctrl.Result{}, nil
}

// writeVerdict records the verdict in the Snapshot's status. It patches
// only the two verification fields; the Snapshot controller derives the
// phase, size and integrity and leaves them alone.
func (r *reconciler) writeVerdict(ctx context.Context, s *corev1alpha1.BackupVerificationSession, status storagev1alpha1.VerificationStatus) error {
	snap := &storagev1alpha1.Snapshot{}
	if err := r.kube.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Spec.Snapshot}, snap); err != nil {
		return fmt.Errorf("cannot get snapshot %q: %w", s.Spec.Snapshot, err)
	}
	if snap.Status.VerificationStatus == status && snap.Status.VerificationSession == s.Name {
		return nil
	}
	patch := client.MergeFrom(snap.DeepCopy())
	snap.Status.VerificationStatus = status
	snap.Status.VerificationSession = s.Name
	snap.Status.VerificationTime = &metav1.Time{Time: r.clock.Now()}
	snap.Status.RestoreDuration = s.Status.RestoreDuration
	snap.Status.BytesRestored = s.Status.BytesRestored
	if err := r.kube.Status().Patch(ctx, snap, patch); err != nil {
		return fmt.Errorf("cannot record the verdict on snapshot %q: %w", snap.Name, err)
	}
	d, _ := time.ParseDuration(s.Status.RestoreDuration)
	observe(s.Namespace, s.Spec.Repository, string(status), d, s.Status.BytesRestored)
	return nil
}

// target is where the Snapshot is restored: in the verifier's target
// namespace (the session's by default; another one has passed
// checkRemote). A target that exists is used as it is and left in place:
// it is the user's. A PersistentVolumeClaim that does not exist is made
// for this run (a per-session name, the cluster's default StorageClass,
// twice the Snapshot's size and at least 1 GiB), made the session's (own)
// and removed when the session ends. Any other missing kind cannot be made
// up, so the verification does not run and msg says why.
func (r *reconciler) target(ctx context.Context, s *corev1alpha1.BackupVerificationSession, v *corev1alpha1.BackupVerifier, snap *storagev1alpha1.Snapshot) (*storagev1alpha1.TypedObjectReference, string, error) {
	t := v.Spec.RestoreOption.Target
	ns := targetNamespace(s, v)
	t.Namespace = ""
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: t.APIGroup, Version: "v1", Kind: t.Kind})
	err := sessionrun.Get(ctx, r.kube, r.api, client.ObjectKey{Namespace: ns, Name: t.Name}, u)
	switch {
	case err == nil:
		return &t, "", nil
	case !kerrors.IsNotFound(err) && !meta.IsNoMatchError(err):
		return nil, "", fmt.Errorf("cannot get target %s %q: %w", t.Kind, t.Name, err)
	case !isClaim(t):
		return nil, fmt.Sprintf("%s %q does not exist in namespace %q; only a PersistentVolumeClaim is made as a scratch target for a run", t.Kind, t.Name, ns), nil
	}
	pvc := scratchClaim(s, t.Name, ns, snap)
	if err := r.own(s, pvc); err != nil {
		return nil, "", fmt.Errorf("cannot own persistentvolumeclaim %q: %w", pvc.Name, err)
	}
	if err := r.kube.Create(ctx, pvc); err != nil && !kerrors.IsAlreadyExists(err) {
		return nil, "", fmt.Errorf("cannot create scratch persistentvolumeclaim %s/%s: %w", ns, pvc.Name, err)
	}
	t.Name = pvc.Name
	return &t, "", nil
}

// targetNamespace is the namespace the verifier restores into.
func targetNamespace(s *corev1alpha1.BackupVerificationSession, v *corev1alpha1.BackupVerifier) string {
	if ns := v.Spec.RestoreOption.Target.Namespace; ns != "" {
		return ns
	}
	return s.Namespace
}

func isClaim(t storagev1alpha1.TypedObjectReference) bool {
	return t.APIGroup == "" && t.Kind == "PersistentVolumeClaim"
}

// scratchSize is what a scratch claim asks for: twice the Snapshot's size,
// in whole GiB, and at least 1 GiB.
func scratchSize(snap *storagev1alpha1.Snapshot) resource.Quantity {
	n, err := storagev1alpha1.ParseSize(snap.Status.Size)
	if err != nil || n < 0 {
		n = 0
	}
	want := 2 * n
	if want < minScratchSize {
		want = minScratchSize
	}
	gib := (want + minScratchSize - 1) / minScratchSize
	return resource.MustParse(fmt.Sprintf("%dGi", gib))
}

func scratchClaim(s *corev1alpha1.BackupVerificationSession, target, ns string, snap *storagev1alpha1.Snapshot) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name: naming.ScratchClaim(target, s.Name), Namespace: ns,
			Labels: map[string]string{corev1alpha1.LabelBackupVerificationSession: s.Name},
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: scratchSize(snap)}},
		},
	}
}

// restoreSession is the restore a session composes: the Snapshot, with the
// verifier's addon, into the target. Into another namespace it restores
// from the session's Repository across namespaces, with the Secret of the
// Repository's encryption Secret's name in that namespace (checkRemote).
func restoreSession(s *corev1alpha1.BackupVerificationSession, v *corev1alpha1.BackupVerifier, target *storagev1alpha1.TypedObjectReference, repo *storagev1alpha1.Repository) *corev1alpha1.RestoreSession {
	rs := &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: targetNamespace(s, v), Labels: map[string]string{corev1alpha1.LabelBackupVerificationSession: s.Name}},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target:         target,
			DataSource:     corev1alpha1.RestoreDataSource{Repository: s.Spec.Repository, Snapshot: s.Spec.Snapshot},
			Addon:          v.Spec.RestoreOption.AddonInfo.DeepCopy(),
			RestoreTimeout: &metav1.Duration{Duration: restoreTimeout},
			ReadDataSubset: v.Spec.ReadDataSubset,
		},
	}
	if rs.Namespace != s.Namespace {
		rs.Spec.DataSource.Namespace = s.Namespace
		rs.Spec.DataSource.EncryptionSecret = &storagev1alpha1.ObjectReference{Name: repo.Spec.EncryptionSecret.Name}
	}
	return rs
}

// withObjectsTask adds to the restore of a Snapshot that holds resource
// manifests the verifier addon's task that restores them, when the
// verifier did not name it: its agent checks them by a server-side dry
// run (the RestoreSession controller sees to that), so a verdict covers
// the objects too. An addon without such a task leaves them unchecked,
// which everyComponent reports.
func (r *reconciler) withObjectsTask(ctx context.Context, rs *corev1alpha1.RestoreSession, snap *storagev1alpha1.Snapshot) error {
	if _, ok := snap.Status.Components[storagev1alpha1.ComponentManifest]; !ok || len(rs.Spec.Addon.Tasks) == 0 {
		return nil
	}
	a := &addonsv1alpha1.Addon{}
	if err := sessionrun.Get(ctx, r.kube, r.api, client.ObjectKey{Name: rs.Spec.Addon.Name}, a); err != nil {
		return client.IgnoreNotFound(err)
	}
	for _, t := range a.Spec.RestoreTasks {
		if t.Component != storagev1alpha1.ComponentManifest {
			continue
		}
		for _, ref := range rs.Spec.Addon.Tasks {
			if ref.Name == t.Name {
				return nil
			}
		}
		rs.Spec.Addon.Tasks = append(rs.Spec.Addon.Tasks, corev1alpha1.TaskReference{Name: t.Name})
		return nil
	}
	return nil
}

// removeScratch deletes the claims the session made. A claim stays in use
// while any pod that mounted it exists, finished or not, so the finished
// restore's Jobs (and with them their pods) go first; the RestoreSession
// keeps the record of the restore. Claims the session does not control
// are never touched.
func (r *reconciler) removeScratch(ctx context.Context, s *corev1alpha1.BackupVerificationSession) error {
	ns := restoreNamespace(s)
	list := cachestore.MetadataList(corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"))
	if err := r.kube.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{corev1alpha1.LabelBackupVerificationSession: s.Name}); err != nil {
		return fmt.Errorf("cannot list scratch persistentvolumeclaims: %w", err)
	}
	owned := 0
	for i := range list.Items {
		if madeBy(&list.Items[i], s) {
			owned++
		}
	}
	if owned == 0 {
		return nil
	}
	// The verifier Job mounts the claim too.
	if err := r.removeVerifierJob(ctx, s); err != nil {
		return err
	}
	if s.Status.RestoreSession != "" {
		jobs := &batchv1.JobList{}
		if err := r.kube.List(ctx, jobs, client.InNamespace(ns), client.MatchingLabels{corev1alpha1.LabelRestoreSession: s.Status.RestoreSession}); err != nil {
			return fmt.Errorf("cannot list restore jobs: %w", err)
		}
		for i := range jobs.Items {
			j := &jobs.Items[i]
			if j.DeletionTimestamp != nil {
				continue
			}
			if err := r.kube.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("cannot delete restore job %q: %w", j.Name, err)
			}
		}
	}
	for i := range list.Items {
		pvc := &list.Items[i]
		if !madeBy(pvc, s) || pvc.DeletionTimestamp != nil {
			continue
		}
		if err := r.kube.Delete(ctx, pvc); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cannot delete scratch persistentvolumeclaim %s/%s: %w", ns, pvc.Name, err)
		}
		r.log.V(1).Info("removed scratch target", "backupverificationsession", s.Name, "namespace", ns, "persistentvolumeclaim", pvc.Name)
	}
	return nil
}

// showPruneWait shows on the session that its restore waits for a prune
// of the Repository (RestoreSucceeded Unknown, WaitingForPrune, the
// RestoreSession's message), and that the restore went on once it ended.
func (r *reconciler) showPruneWait(s *corev1alpha1.BackupVerificationSession, rs *corev1alpha1.RestoreSession) {
	ex := rs.GetCondition(corev1alpha1.TypeRestoreExecutorEnsured)
	shown := s.GetCondition(corev1alpha1.TypeRestoreSucceeded)
	c := xpv2.Condition{Type: corev1alpha1.TypeRestoreSucceeded, Status: corev1.ConditionUnknown, LastTransitionTime: metav1.NewTime(r.clock.Now())}
	switch {
	case ex.Status == corev1.ConditionFalse && ex.Reason == corev1alpha1.ReasonWaitingForPrune:
		c.Reason, c.Message = corev1alpha1.ReasonWaitingForPrune, fmt.Sprintf("restoresession %q is %s", rs.Name, ex.Message)
	case shown.Reason == corev1alpha1.ReasonWaitingForPrune:
		c.Reason, c.Message = corev1alpha1.ReasonRestoreRunning, fmt.Sprintf("restoresession %q runs: the prune it waited for ended", rs.Name)
	default:
		return
	}
	if shown.Status == c.Status && shown.Reason == c.Reason && shown.Message == c.Message {
		return
	}
	s.SetConditions(c)
}
