package backupverificationsession

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/sessionrun"
)

// holder is the session that holds the Snapshot s verifies, or "" when s
// holds it. Of the unfinished sessions of one Snapshot, one that has
// started its restore goes first, else the oldest (by creation, then
// name); the others wait, and once the first has verified the Snapshot the
// ones that waited are skipped. That order is read from the cache, which
// may lag, so the session that goes first also takes the Snapshot's lock
// (see lock): two restores of one Snapshot never run at once.
func (r *reconciler) holder(ctx context.Context, s *corev1alpha1.BackupVerificationSession) (string, error) {
	l := &coordinationv1.Lease{}
	err := r.api.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: naming.VerifyLock(s.Spec.Snapshot)}, l)
	if client.IgnoreNotFound(err) != nil {
		return "", fmt.Errorf("cannot get lease %q: %w", naming.VerifyLock(s.Spec.Snapshot), err)
	}
	if err == nil && metav1.IsControlledBy(l, s) {
		return "", nil
	}
	list := &corev1alpha1.BackupVerificationSessionList{}
	if err := r.kube.List(ctx, list, client.InNamespace(s.Namespace)); err != nil {
		return "", fmt.Errorf("cannot list backupverificationsessions: %w", err)
	}
	if h := holderOf(s, list.Items); h != "" {
		return h, nil
	}
	return r.lock(ctx, s)
}

// lock takes the Lease named after the Snapshot s verifies, controlled by
// s, and returns "" once s holds it. Creating an object is atomic, so of
// two sessions that both think they go first only one gets it; the other
// is told the holder's name and waits. A Lease whose holder has finished,
// or is gone, is removed, so that the next session may take it.
func (r *reconciler) lock(ctx context.Context, s *corev1alpha1.BackupVerificationSession) (string, error) {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: naming.VerifyLock(s.Spec.Snapshot), Namespace: s.Namespace, Labels: map[string]string{corev1alpha1.LabelBackupVerificationSession: s.Name}},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(s.Name)},
	}
	if err := controllerutil.SetControllerReference(s, l, r.kube.Scheme()); err != nil {
		return "", fmt.Errorf("cannot own lease %q: %w", l.Name, err)
	}
	err := r.kube.Create(ctx, l)
	if err == nil {
		return "", nil
	}
	if !kerrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("cannot create lease %q: %w", l.Name, err)
	}
	if err := r.api.Get(ctx, client.ObjectKeyFromObject(l), l); err != nil {
		return "", fmt.Errorf("cannot get lease %q: %w", l.Name, err)
	}
	if metav1.IsControlledBy(l, s) {
		return "", nil
	}
	h := ptr.Deref(l.Spec.HolderIdentity, "")
	o := &corev1alpha1.BackupVerificationSession{}
	err = r.api.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: h}, o)
	if client.IgnoreNotFound(err) != nil {
		return "", fmt.Errorf("cannot get backupverificationsession %q: %w", h, err)
	}
	if err == nil && metav1.IsControlledBy(l, o) && !done(phase(o)) && o.DeletionTimestamp == nil {
		return h, nil
	}
	if err := r.unlock(ctx, l); err != nil {
		return "", err
	}
	return h, nil
}

// unlock removes the Lease l, unless it changed since it was read.
func (r *reconciler) unlock(ctx context.Context, l *coordinationv1.Lease) error {
	err := r.kube.Delete(ctx, l, client.Preconditions{UID: &l.UID, ResourceVersion: &l.ResourceVersion})
	if client.IgnoreNotFound(err) != nil && !kerrors.IsConflict(err) {
		return fmt.Errorf("cannot delete lease %q: %w", l.Name, err)
	}
	return nil
}

// release removes the lock a finished session holds on its Snapshot, so
// that a waiting session need not wait for it to be found stale.
func (r *reconciler) release(ctx context.Context, s *corev1alpha1.BackupVerificationSession) error {
	l := &coordinationv1.Lease{}
	err := r.api.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: naming.VerifyLock(s.Spec.Snapshot)}, l)
	if kerrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot get lease %q: %w", naming.VerifyLock(s.Spec.Snapshot), err)
	}
	if !metav1.IsControlledBy(l, s) {
		return nil
	}
	return r.unlock(ctx, l)
}

func holderOf(s *corev1alpha1.BackupVerificationSession, all []corev1alpha1.BackupVerificationSession) string {
	var ahead []string
	for i := range all {
		o := &all[i]
		if o.Name == s.Name || o.Spec.Snapshot != s.Spec.Snapshot || o.DeletionTimestamp != nil || done(phase(o)) {
			continue
		}
		older := o.CreationTimestamp.Before(&s.CreationTimestamp) ||
			(o.CreationTimestamp.Equal(&s.CreationTimestamp) && o.Name < s.Name)
		if o.Status.RestoreSession != "" || older {
			ahead = append(ahead, o.Name)
		}
	}
	slices.Sort(ahead)
	if len(ahead) == 0 {
		return ""
	}
	return ahead[0]
}

// summarise carries what the restore measured and found to the session:
// bytes restored and files compared over the components, a sample of the
// differences (components in name order), and how much data restic's
// check read.
func summarise(s *corev1alpha1.BackupVerificationSession, rs *corev1alpha1.RestoreSession) {
	s.Status.BytesRestored, s.Status.FilesChecked, s.Status.Differences, s.Status.DataChecked = 0, 0, nil, ""
	for _, name := range slices.Sorted(maps.Keys(rs.Status.Components)) {
		c := rs.Status.Components[name]
		s.Status.BytesRestored += c.BytesRestored
		s.Status.FilesChecked += c.FilesChecked
		for _, d := range c.Differences {
			if len(s.Status.Differences) < corev1alpha1.MaxDifferences {
				s.Status.Differences = append(s.Status.Differences, d)
			}
		}
		if s.Status.DataChecked == "" {
			s.Status.DataChecked = c.DataChecked
		}
	}
}

// finish runs once a session has an outcome: it retries a failed
// verification when the verifier allows it and removes finished sessions
// beyond the verifier's history limit. It says when to look again.
func (r *reconciler) finish(ctx context.Context, s *corev1alpha1.BackupVerificationSession) (time.Duration, error) {
	v := &corev1alpha1.BackupVerifier{}
	err := r.kube.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Spec.Invoker.Name}, v)
	if kerrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cannot get backupverifier %q: %w", s.Spec.Invoker.Name, err)
	}
	wait, err := r.retry(ctx, s, v)
	if err != nil {
		return 0, err
	}
	if err := r.cleanHistory(ctx, s, v); err != nil {
		sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeVerificationSessionHistoryCleaned, false, corev1alpha1.ReasonVerificationSessionHistoryCleanupFailed, err.Error())
		return wait, err
	}
	sessionrun.SetCondition(r.clock, s, corev1alpha1.TypeVerificationSessionHistoryCleaned, true, corev1alpha1.ReasonVerificationSessionHistoryCleaned, "")
	return wait, nil
}

// retriesLeft is how many more times a failed session may be retried: its
// spec.retryLeft when it is a retry or sets one, else the verifier's
// retryConfig.maxRetry.
func retriesLeft(s *corev1alpha1.BackupVerificationSession, v *corev1alpha1.BackupVerifier) int32 {
	if _, retry := s.Labels[corev1alpha1.LabelRetryOf]; retry || s.Spec.RetryLeft > 0 {
		return s.Spec.RetryLeft
	}
	if v.Spec.RetryConfig == nil {
		return 0
	}
	return v.Spec.RetryConfig.MaxRetry
}

// pendingRetry says whether a failed session is still to be retried: it
// failed at the restore or the verdict (a verification that cannot run as
// written is not retried), has retries left and was not retried yet.
func pendingRetry(s *corev1alpha1.BackupVerificationSession, v *corev1alpha1.BackupVerifier) bool {
	failed := s.GetCondition(corev1alpha1.TypeBackupVerified).Status == corev1.ConditionFalse ||
		s.GetCondition(corev1alpha1.TypeRestoreSucceeded).Status == corev1.ConditionFalse
	return phase(s) == corev1alpha1.VerificationSessionFailed && failed &&
		!ptr.Deref(s.Status.Retried, false) && retriesLeft(s, v) > 0 &&
		s.GetCondition(corev1alpha1.TypeVerificationExecutorEnsured).Reason != corev1alpha1.ReasonVerificationNotRunnable
}

// retry creates the session that retries s, once the verifier's delay has
// passed since s ended, with one retry fewer left, and marks s retried.
func (r *reconciler) retry(ctx context.Context, s *corev1alpha1.BackupVerificationSession, v *corev1alpha1.BackupVerifier) (time.Duration, error) {
	if !pendingRetry(s, v) {
		return 0, nil
	}
	var delay time.Duration
	if v.Spec.RetryConfig != nil {
		delay = v.Spec.RetryConfig.Delay.Duration
	}
	due := sessionrun.RetryAt(s.CreationTimestamp.Time, s.Status.Duration, delay, r.clock.Now())
	if wait := due.Sub(r.clock.Now()); wait > 0 {
		return wait, nil
	}
	next := retrySession(s, retriesLeft(s, v)-1)
	if err := r.kube.Create(ctx, next); err != nil && !kerrors.IsAlreadyExists(err) {
		return 0, fmt.Errorf("cannot create backupverificationsession %q to retry %q: %w", next.Name, s.Name, err)
	}
	s.Status.Retried = ptr.To(true)
	r.log.Info("retrying a failed verification", "backupverificationsession", s.Name, "retry", next.Name, "retryLeft", next.Spec.RetryLeft)
	return 0, nil
}

// retrySession is the session that retries s: the same Snapshot, named
// after the first session of the chain and the retries left, so that a
// chain's names never repeat.
func retrySession(s *corev1alpha1.BackupVerificationSession, left int32) *corev1alpha1.BackupVerificationSession {
	root := s.Name
	if v := s.Labels[corev1alpha1.LabelRetryOf]; v != "" {
		root = v
	}
	labels := maps.Clone(s.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[corev1alpha1.LabelRetryOf] = root
	spec := *s.Spec.DeepCopy()
	spec.RetryLeft = left
	return &corev1alpha1.BackupVerificationSession{
		ObjectMeta: metav1.ObjectMeta{Name: naming.VerificationRetry(root, left), Namespace: s.Namespace, Labels: labels},
		Spec:       spec,
	}
}

// cleanHistory deletes the finished sessions of the verifier and
// Repository beyond the verifier's sessionHistoryLimit, newest kept, with
// their RestoreSessions. Sessions that gave a verdict (Succeeded, Failed)
// and Skipped ones are counted apart, so a run of skipped sessions never
// pushes out the one that verified. The session cleaning is never deleted
// by itself, nor is a failed session whose retry is still to come, nor a
// session a Snapshot names as the one that gave its verdict.
func (r *reconciler) cleanHistory(ctx context.Context, s *corev1alpha1.BackupVerificationSession, v *corev1alpha1.BackupVerifier) error {
	list := &corev1alpha1.BackupVerificationSessionList{}
	if err := r.kube.List(ctx, list, client.InNamespace(s.Namespace)); err != nil {
		return fmt.Errorf("cannot list backupverificationsessions: %w", err)
	}
	snaps := &storagev1alpha1.SnapshotList{}
	if err := r.kube.List(ctx, snaps, client.InNamespace(s.Namespace)); err != nil {
		return fmt.Errorf("cannot list snapshots: %w", err)
	}
	verdicts := map[string]bool{}
	for i := range snaps.Items {
		if n := snaps.Items[i].Status.VerificationSession; n != "" {
			verdicts[n] = true
		}
	}
	for _, o := range beyondHistory(s, v, list.Items, verdicts) {
		if err := r.kube.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cannot delete backupverificationsession %q: %w", o.Name, err)
		}
		rs := &corev1alpha1.RestoreSession{}
		err := r.kube.Get(ctx, client.ObjectKey{Namespace: restoreNamespace(o), Name: o.Name}, rs)
		if err == nil && madeBy(rs, o) {
			err = r.kube.Delete(ctx, rs, client.PropagationPolicy(metav1.DeletePropagationBackground))
		}
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cannot delete restoresession %q: %w", o.Name, err)
		}
		r.log.V(1).Info("removed an old verification session", "backupverificationsession", o.Name)
	}
	return nil
}

// beyondHistory are the sessions cleanHistory deletes, by the rule every
// session kind shares (sessionrun.BeyondHistory); verdicts names the sessions
// Snapshots point at, which are always kept, as are s itself and a failed
// session whose retry is still to come.
func beyondHistory(s *corev1alpha1.BackupVerificationSession, v *corev1alpha1.BackupVerifier, all []corev1alpha1.BackupVerificationSession, verdicts map[string]bool) []*corev1alpha1.BackupVerificationSession {
	byName := map[string]*corev1alpha1.BackupVerificationSession{}
	var runs []sessionrun.Run
	for i := range all {
		o := &all[i]
		if o.Spec.Repository != s.Spec.Repository || o.Spec.Invoker.Name != s.Spec.Invoker.Name || o.DeletionTimestamp != nil || !done(phase(o)) {
			continue
		}
		byName[o.Name] = o
		runs = append(runs, sessionrun.Run{Name: o.Name, Created: o.CreationTimestamp.Time,
			Skipped: phase(o) == corev1alpha1.VerificationSessionSkipped,
			Keep:    o.Name == s.Name || verdicts[o.Name] || pendingRetry(o, v)})
	}
	var out []*corev1alpha1.BackupVerificationSession
	for _, name := range sessionrun.BeyondHistory(runs, int(v.Spec.SessionHistoryLimit)) {
		out = append(out, byName[name])
	}
	return out
}
