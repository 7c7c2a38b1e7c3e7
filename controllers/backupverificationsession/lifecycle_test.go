package backupverificationsession

import (
	"context"
	"crypto/sha256"
	"fmt"
	batchv1 "k8s.io/api/batch/v1"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

// session is a session of verifier "v" for repository "app", created at
// t0 plus age, with the given conditions.
func session(name, snapshot string, age time.Duration, conds ...corev1.ConditionStatus) corev1alpha1.BackupVerificationSession {
	s := corev1alpha1.BackupVerificationSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: metav1.NewTime(t0.Add(age))},
		Spec: corev1alpha1.BackupVerificationSessionSpec{
			Invoker: storagev1alpha1.TypedObjectReference{Kind: "BackupVerifier", Name: "v"}, Repository: "app", Snapshot: snapshot, Session: "nightly",
		},
	}
	for _, c := range conds {
		s.SetConditions(cond(corev1alpha1.TypeBackupVerified, c, corev1alpha1.ReasonVerificationFailed))
	}
	return s
}

func TestHolderOf(t *testing.T) {
	started := session("b", "snap-1", time.Minute)
	started.Status.RestoreSession = "b"
	cases := map[string]struct {
		reason string
		s      corev1alpha1.BackupVerificationSession
		all    []corev1alpha1.BackupVerificationSession
		want   string
	}{
		"Alone": {reason: "A session alone holds its Snapshot.",
			s: session("a", "snap-1", 0), all: []corev1alpha1.BackupVerificationSession{session("a", "snap-1", 0)}},
		"Older": {reason: "An older unfinished session of the same Snapshot holds it.",
			s: session("b", "snap-1", time.Minute), all: []corev1alpha1.BackupVerificationSession{session("a", "snap-1", 0)}, want: "a"},
		"Younger": {reason: "A younger one that has not started does not.",
			s: session("a", "snap-1", 0), all: []corev1alpha1.BackupVerificationSession{session("b", "snap-1", time.Minute)}},
		"Started": {reason: "A younger one whose restore runs holds it.",
			s: session("a", "snap-1", 0), all: []corev1alpha1.BackupVerificationSession{started}, want: "b"},
		"SameTime": {reason: "Sessions made in the same second are ordered by name.",
			s: session("b", "snap-1", 0), all: []corev1alpha1.BackupVerificationSession{session("a", "snap-1", 0)}, want: "a"},
		"Finished": {reason: "A finished session holds nothing.",
			s: session("b", "snap-1", time.Minute), all: []corev1alpha1.BackupVerificationSession{session("a", "snap-1", 0, corev1.ConditionTrue)}},
		"OtherSnapshot": {reason: "Sessions of other Snapshots do not matter.",
			s: session("b", "snap-2", time.Minute), all: []corev1alpha1.BackupVerificationSession{session("a", "snap-1", 0)}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, holderOf(&tc.s, tc.all)); diff != "" {
				t.Errorf("%s\nholderOf(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestHolderLock(t *testing.T) {
	withUID := func(s corev1alpha1.BackupVerificationSession) *corev1alpha1.BackupVerificationSession {
		s.UID = types.UID("uid-" + s.Name)
		return &s
	}
	lease := func(holder string) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: naming.VerifyLock("snap-1"), Namespace: "default", OwnerReferences: []metav1.OwnerReference{{
				APIVersion: corev1alpha1.GroupVersion.String(), Kind: "BackupVerificationSession", Name: holder, UID: types.UID("uid-" + holder), Controller: ptr.To(true),
			}}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder)},
		}
	}
	type want struct {
		Holder string
		Lease  string
	}
	cases := map[string]struct {
		reason string
		others []client.Object
		want   want
	}{
		"Free": {reason: "A session first in line takes the Snapshot's lock.",
			want: want{Lease: "a"}},
		"Held": {reason: "A session already holding the lock keeps it, even behind an older session the cache shows.",
			others: []client.Object{withUID(session("z", "snap-1", -time.Minute)), lease("a")}, want: want{Lease: "a"}},
		"Older": {reason: "An older unfinished session goes first; the lock is left alone.",
			others: []client.Object{withUID(session("z", "snap-1", -time.Minute))}, want: want{Holder: "z"}},
		"Taken": {reason: "A session the cache did not show yet, holding the lock and running, makes this one wait.",
			others: []client.Object{withUID(session("b", "snap-1", time.Minute)), lease("b")}, want: want{Holder: "b", Lease: "b"}},
		"Finished": {reason: "A lock whose holder has finished is removed, so the next look takes it.",
			others: []client.Object{withUID(session("b", "snap-1", time.Minute, corev1.ConditionTrue)), lease("b")}, want: want{Holder: "b"}},
		"Gone": {reason: "A lock whose holder is gone is removed.",
			others: []client.Object{lease("b")}, want: want{Holder: "b"}},
		"OtherSnapshot": {reason: "Another Snapshot's sessions do not matter.",
			others: []client.Object{withUID(session("z", "snap-2", -time.Minute))}, want: want{Lease: "a"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := withUID(session("a", "snap-1", 0))
			r, kube, _ := newReconciler(t, t0, append([]client.Object{a}, tc.others...)...)
			var got want
			var err error
			got.Holder, err = r.holder(context.Background(), a)
			if err != nil {
				t.Fatalf("holder(): %v", err)
			}
			l := &coordinationv1.Lease{}
			if err := kube.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: naming.VerifyLock("snap-1")}, l); client.IgnoreNotFound(err) != nil {
				t.Fatal(err)
			} else if err == nil {
				got.Lease = ptr.Deref(l.Spec.HolderIdentity, "")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nholder(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestLockName(t *testing.T) {
	long := strings.Repeat("s", 250)
	cases := map[string]struct {
		snapshot string
		want     string
	}{
		"Short": {snapshot: "snap-1", want: "stashplane-verify-snap-1"},
		"Long":  {snapshot: long, want: "stashplane-verify-" + long[:253-len("stashplane-verify-")-9] + "-" + fmt.Sprintf("%x", sha256.Sum256([]byte(long)))[:8]},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, naming.VerifyLock(tc.snapshot)); diff != "" {
				t.Errorf("naming.VerifyLock(%q): -want +got:\n%s", tc.snapshot, diff)
			}
		})
	}
}

func TestSummarise(t *testing.T) {
	d := func(p string) corev1alpha1.RestoreDifference {
		return corev1alpha1.RestoreDifference{Path: p, Kind: corev1alpha1.DifferenceMissing}
	}
	many := make([]corev1alpha1.RestoreDifference, 8)
	for i := range many {
		many[i] = d("/b/" + string(rune('a'+i)))
	}
	rs := &corev1alpha1.RestoreSession{Status: corev1alpha1.RestoreSessionStatus{Components: map[string]corev1alpha1.ComponentRestoreStatus{
		"b": {BytesRestored: 10, FilesChecked: 2, Differences: many},
		"a": {BytesRestored: 5, FilesChecked: 1, Differences: []corev1alpha1.RestoreDifference{d("/a/1"), d("/a/2"), d("/a/3")}, DataChecked: "5%"},
	}}}
	s := &corev1alpha1.BackupVerificationSession{}
	summarise(s, rs)
	want := corev1alpha1.BackupVerificationSessionStatus{BytesRestored: 15, FilesChecked: 3, DataChecked: "5%",
		Differences: append([]corev1alpha1.RestoreDifference{d("/a/1"), d("/a/2"), d("/a/3")}, many[:7]...)}
	if diff := cmp.Diff(want, s.Status); diff != "" {
		t.Errorf("summarise sums the components and keeps at most ten differences, components in name order: -want +got:\n%s", diff)
	}
}

func newReconciler(t *testing.T, now time.Time, objs ...client.Object) (*reconciler, client.Client, *clocktesting.FakeClock) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := storagev1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := batchv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&storagev1alpha1.Snapshot{}).Build()
	clk := clocktesting.NewFakeClock(now)
	return &reconciler{kube: kube, api: kube, clock: clk, log: logr.Discard()}, kube, clk
}

func verifier(maxRetry int32, delay time.Duration, history int32) *corev1alpha1.BackupVerifier {
	return &corev1alpha1.BackupVerifier{
		ObjectMeta: metav1.ObjectMeta{Name: "v", Namespace: "default"},
		Spec: corev1alpha1.BackupVerifierSpec{SessionHistoryLimit: history,
			RetryConfig: &corev1alpha1.RetryConfig{MaxRetry: maxRetry, Delay: metav1.Duration{Duration: delay}}},
	}
}

// A failed session is retried once the delay has passed, with one retry
// fewer, and only once; the retry of the last allowed attempt is not.
func TestRetry(t *testing.T) {
	ctx := context.Background()
	v := verifier(2, 5*time.Minute, 10)
	failed := session("app-nightly-1", "snap-1", 0, corev1.ConditionFalse)
	failed.Status.Duration = "1m0s"
	r, kube, clk := newReconciler(t, t0.Add(2*time.Minute), v)

	wait, err := r.retry(ctx, &failed, v)
	if err != nil || wait != 4*time.Minute {
		t.Fatalf("before the delay: retry() = %s, %v; want to wait 4m0s (ended at 1m, delay 5m, now 2m)", wait, err)
	}
	if failed.Status.Retried != nil {
		t.Fatalf("retried before the delay passed")
	}
	clk.Step(4 * time.Minute)
	if wait, err := r.retry(ctx, &failed, v); err != nil || wait != 0 {
		t.Fatalf("after the delay: retry() = %s, %v", wait, err)
	}
	got := &corev1alpha1.BackupVerificationSession{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-nightly-1-retry-1"}, got); err != nil {
		t.Fatalf("the retry session: %v", err)
	}
	if got.Spec.RetryLeft != 1 || got.Spec.Snapshot != "snap-1" || got.Labels[corev1alpha1.LabelRetryOf] != "app-nightly-1" || !ptr.Deref(failed.Status.Retried, false) {
		t.Errorf("retry: retryLeft %d, snapshot %s, retry-of %q, retried %v; want 1, snap-1, app-nightly-1, true",
			got.Spec.RetryLeft, got.Spec.Snapshot, got.Labels[corev1alpha1.LabelRetryOf], failed.Status.Retried)
	}
	if pendingRetry(&failed, v) {
		t.Errorf("a retried session is still pending a retry")
	}

	last := retrySession(&failed, 0)
	last.SetConditions(cond(corev1alpha1.TypeBackupVerified, corev1.ConditionFalse, corev1alpha1.ReasonVerificationFailed))
	if pendingRetry(last, v) {
		t.Errorf("a session with no retry left is pending a retry")
	}
	ok := session("ok", "snap-1", 0, corev1.ConditionTrue)
	if pendingRetry(&ok, v) {
		t.Errorf("a verified session is pending a retry")
	}
}

// skippedSession is a session of verifier "v" that was skipped.
func skippedSession(name, snapshot string, age time.Duration) corev1alpha1.BackupVerificationSession {
	s := session(name, snapshot, age)
	s.SetConditions(cond(corev1alpha1.TypeBackupVerificationSkipped, corev1.ConditionTrue, corev1alpha1.ReasonSnapshotAlreadyVerified))
	return s
}

func TestBeyondHistory(t *testing.T) {
	other := session("x", "snap-x", 0, corev1.ConditionTrue)
	other.Spec.Repository = "other"
	four := []corev1alpha1.BackupVerificationSession{
		session("s1", "snap-1", time.Minute, corev1.ConditionTrue),
		session("s2", "snap-2", 2*time.Minute, corev1.ConditionFalse),
		session("s3", "snap-3", 3*time.Minute, corev1.ConditionTrue),
		session("s4", "snap-4", 4*time.Minute, corev1.ConditionTrue),
		session("s5", "snap-5", 5*time.Minute),
		other,
	}
	cases := map[string]struct {
		reason   string
		v        *corev1alpha1.BackupVerifier
		cleaner  string
		all      []corev1alpha1.BackupVerificationSession
		verdicts map[string]bool
		want     []string
	}{
		"NewestKept": {reason: "The two newest finished sessions of the repository stay; running ones and other repositories are left.",
			v: verifier(0, 0, 2), cleaner: "s4", all: four, want: []string{"s2", "s1"}},
		"NeverItself": {reason: "The cleaning session never deletes itself.",
			v: verifier(0, 0, 2), cleaner: "s1", all: four, want: []string{"s2"}},
		"PendingRetryKept": {reason: "A failed session still to be retried stays.",
			v: verifier(1, 0, 2), cleaner: "s4", all: four, want: []string{"s1"}},
		"SkippedDoesNotEvictVerdict": {reason: "Skipped sessions are counted apart: a newer skipped one does not push out the session that verified.",
			v: verifier(0, 0, 1), cleaner: "k2",
			all: []corev1alpha1.BackupVerificationSession{
				session("ok", "snap-1", 0, corev1.ConditionTrue), skippedSession("k1", "snap-1", time.Minute), skippedSession("k2", "snap-1", 2*time.Minute),
			},
			want: []string{"k1"}},
		"SnapshotVerdictKept": {reason: "A session a Snapshot names as its verdict's stays beyond the limit; one no Snapshot names goes.",
			v: verifier(0, 0, 1), cleaner: "new",
			all: []corev1alpha1.BackupVerificationSession{
				session("verdict", "snap-1", 0, corev1.ConditionTrue), session("plain", "snap-2", time.Minute, corev1.ConditionTrue),
				session("new", "snap-3", 2*time.Minute, corev1.ConditionFalse),
			},
			verdicts: map[string]bool{"verdict": true}, want: []string{"plain"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var cleaner *corev1alpha1.BackupVerificationSession
			for i := range tc.all {
				if tc.all[i].Name == tc.cleaner {
					cleaner = &tc.all[i]
				}
			}
			var got []string
			for _, o := range beyondHistory(cleaner, tc.v, tc.all, tc.verdicts) {
				got = append(got, o.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nbeyondHistory(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// cleanHistory deletes the old sessions and their RestoreSessions, and
// keeps the session a Snapshot names even when a later session of the
// verifier was skipped and a later one failed.
func TestCleanHistory(t *testing.T) {
	ctx := context.Background()
	v := verifier(0, 0, 1)
	old, cur := session("old", "snap-1", 0, corev1.ConditionTrue), session("cur", "snap-2", time.Minute, corev1.ConditionTrue)
	old.UID = "old-uid"
	verified := session("verified", "snap-3", -time.Hour, corev1.ConditionTrue)
	skipped := skippedSession("skipped", "snap-3", 2*time.Minute)
	snap := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "snap-3", Namespace: "default"},
		Status: storagev1alpha1.SnapshotStatus{VerificationStatus: storagev1alpha1.SnapshotVerified, VerificationSession: "verified"}}
	rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "default",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: corev1alpha1.GroupVersion.String(), Kind: "BackupVerificationSession", Name: "old", UID: "old-uid", Controller: ptr.To(true)}}}}
	r, kube, clk := newReconciler(t, t0, v, &old, &cur, &verified, &skipped, snap, rs)
	clk.Step(time.Hour)
	if err := r.cleanHistory(ctx, &skipped, v); err != nil {
		t.Fatal(err)
	}
	if err := r.cleanHistory(ctx, &cur, v); err != nil {
		t.Fatal(err)
	}
	list := &corev1alpha1.BackupVerificationSessionList{}
	if err := kube.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, o := range list.Items {
		left = append(left, o.Name)
	}
	if diff := cmp.Diff([]string{"cur", "skipped", "verified"}, left); diff != "" {
		t.Errorf("sessions left: -want +got:\n%s", diff)
	}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(rs), &corev1alpha1.RestoreSession{}); client.IgnoreNotFound(err) != nil || err == nil {
		t.Errorf("the old session's restoresession was not deleted: %v", err)
	}
}

func TestObserve(t *testing.T) {
	observe("ns-metrics", "repo", string(storagev1alpha1.SnapshotVerified), 1500*time.Millisecond, 4096)
	observe("ns-metrics", "repo", string(storagev1alpha1.SnapshotVerificationFailed), 2*time.Second, 1024)
	want := `
# HELP stashplane_verification_restored_bytes How many bytes the last verification of a repository's snapshot restored.
# TYPE stashplane_verification_restored_bytes gauge
stashplane_verification_restored_bytes{namespace="ns-metrics",repository="repo"} 1024
# HELP stashplane_verification_verdicts_total Verdicts given on snapshots, by result: Verified or VerificationFailed.
# TYPE stashplane_verification_verdicts_total counter
stashplane_verification_verdicts_total{namespace="ns-metrics",repository="repo",result="Verified"} 1
stashplane_verification_verdicts_total{namespace="ns-metrics",repository="repo",result="VerificationFailed"} 1
`
	if err := testutil.GatherAndCompare(ctrlmetrics.Registry, strings.NewReader(want),
		"stashplane_verification_restored_bytes", "stashplane_verification_verdicts_total"); err != nil {
		t.Errorf("the metrics in controller-runtime's registry: %v", err)
	}
}
