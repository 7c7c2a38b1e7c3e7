package backupverificationsession

import (
	"fmt"
	"testing"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func cond(t xpv2.ConditionType, s corev1.ConditionStatus, r xpv2.ConditionReason) xpv2.Condition {
	return xpv2.Condition{Type: t, Status: s, Reason: r}
}

func TestPhase(t *testing.T) {
	cases := map[string]struct {
		reason string
		conds  []xpv2.Condition
		want   corev1alpha1.BackupVerificationSessionPhase
	}{
		"New": {
			reason: "A session with no conditions is Running.",
			want:   corev1alpha1.VerificationSessionRunning,
		},
		"Restoring": {
			reason: "A session whose RestoreSession exists and has no outcome is Running.",
			conds:  []xpv2.Condition{cond(corev1alpha1.TypeVerificationExecutorEnsured, corev1.ConditionTrue, corev1alpha1.ReasonVerificationExecutorEnsured)},
			want:   corev1alpha1.VerificationSessionRunning,
		},
		"Skipped": {
			reason: "A Snapshot already Verified skips the session.",
			conds:  []xpv2.Condition{cond(corev1alpha1.TypeBackupVerificationSkipped, corev1.ConditionTrue, corev1alpha1.ReasonSnapshotAlreadyVerified)},
			want:   corev1alpha1.VerificationSessionSkipped,
		},
		"Verified": {
			reason: "A True verdict succeeds.",
			conds: []xpv2.Condition{
				cond(corev1alpha1.TypeRestoreSucceeded, corev1.ConditionTrue, corev1alpha1.ReasonRestoreSucceeded),
				cond(corev1alpha1.TypeBackupVerified, corev1.ConditionTrue, corev1alpha1.ReasonVerificationPassed),
			},
			want: corev1alpha1.VerificationSessionSucceeded,
		},
		"VerificationFailed": {
			reason: "A False verdict fails.",
			conds: []xpv2.Condition{
				cond(corev1alpha1.TypeRestoreSucceeded, corev1.ConditionFalse, corev1alpha1.ReasonRestoreFailed),
				cond(corev1alpha1.TypeBackupVerified, corev1.ConditionFalse, corev1alpha1.ReasonVerificationFailed),
			},
			want: corev1alpha1.VerificationSessionFailed,
		},
		"RestoreInvalid": {
			reason: "A restore that could not run fails the session without a verdict.",
			conds: []xpv2.Condition{
				cond(corev1alpha1.TypeVerificationExecutorEnsured, corev1.ConditionFalse, corev1alpha1.ReasonVerificationNotRunnable),
				cond(corev1alpha1.TypeRestoreSucceeded, corev1.ConditionFalse, corev1alpha1.ReasonRestoreFailed),
			},
			want: corev1alpha1.VerificationSessionFailed,
		},
		"NotRunnable": {
			reason: "A verification that cannot run as written fails.",
			conds:  []xpv2.Condition{cond(corev1alpha1.TypeVerificationExecutorEnsured, corev1.ConditionFalse, corev1alpha1.ReasonVerificationNotRunnable)},
			want:   corev1alpha1.VerificationSessionFailed,
		},
		"NotImplemented": {
			reason: "A Query or Script verifier fails visibly rather than pretending.",
			conds:  []xpv2.Condition{cond(corev1alpha1.TypeVerificationExecutorEnsured, corev1.ConditionFalse, corev1alpha1.ReasonVerificationTypeNotImplemented)},
			want:   corev1alpha1.VerificationSessionFailed,
		},
		"ExecutorNotYetEnsured": {
			reason: "A RestoreSession that could not be created yet is retried: still Running.",
			conds:  []xpv2.Condition{cond(corev1alpha1.TypeVerificationExecutorEnsured, corev1.ConditionFalse, corev1alpha1.ReasonVerificationExecutorNotEnsured)},
			want:   corev1alpha1.VerificationSessionRunning,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &corev1alpha1.BackupVerificationSession{}
			s.SetConditions(tc.conds...)
			if diff := cmp.Diff(tc.want, phase(s)); diff != "" {
				t.Errorf("%s\nphase(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRestoreVerdict(t *testing.T) {
	incomplete := corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "rs"}}
	incomplete.Status.Phase = corev1alpha1.RestoreFailed
	incomplete.SetConditions(xpv2.Condition{Type: corev1alpha1.TypeRestoreIncomplete, Status: corev1.ConditionTrue,
		Reason: corev1alpha1.ReasonRestoreExecutorFailed, Message: `component "dump" failed: RestoreMismatch: a: content differs`})
	invalid := corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "rs"}}
	invalid.Status.Phase = corev1alpha1.RestoreInvalid
	invalid.SetConditions(xpv2.Condition{Type: corev1alpha1.TypeRestoreExecutorEnsured, Status: corev1.ConditionFalse,
		Reason: corev1alpha1.ReasonRestoreSpecInvalid, Message: `addon "nope" does not exist`})
	cases := map[string]struct {
		reason string
		rs     corev1alpha1.RestoreSession
		want   verdict
	}{
		"Running": {
			reason: "A restore without an outcome gives no verdict yet.",
			rs:     corev1alpha1.RestoreSession{Status: corev1alpha1.RestoreSessionStatus{Phase: corev1alpha1.RestoreRunning}},
			want:   verdict{},
		},
		"Succeeded": {
			reason: "A restore that succeeded (the agent's manifest comparison included) verifies the Snapshot.",
			rs:     corev1alpha1.RestoreSession{Status: corev1alpha1.RestoreSessionStatus{Phase: corev1alpha1.RestoreSucceeded}},
			want:   verdict{final: true, runnable: true, verified: true},
		},
		"Failed": {
			reason: "A failed restore fails verification with the restore's reason.",
			rs:     incomplete,
			want: verdict{final: true, runnable: true,
				message: `restoresession "rs": RestoreExecutorFailed: component "dump" failed: RestoreMismatch: a: content differs`},
		},
		"Invalid": {
			reason: "A restore the verifier's settings made invalid says nothing of the Snapshot.",
			rs:     invalid,
			want:   verdict{final: true, message: `restoresession "rs": RestoreSpecInvalid: addon "nope" does not exist`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, restoreVerdict(&tc.rs), cmp.AllowUnexported(verdict{})); diff != "" {
				t.Errorf("%s\nrestoreVerdict(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestSkip(t *testing.T) {
	cases := map[string]struct {
		reason string
		snap   storagev1alpha1.Snapshot
		want   string
	}{
		"NotVerified": {
			reason: "A Snapshot without a verdict is verified.",
			snap:   storagev1alpha1.Snapshot{},
		},
		"Failed": {
			reason: "A Snapshot that failed verification before is verified again.",
			snap:   storagev1alpha1.Snapshot{Status: storagev1alpha1.SnapshotStatus{VerificationStatus: storagev1alpha1.SnapshotVerificationFailed}},
		},
		"Verified": {
			reason: "A Verified Snapshot is skipped.",
			snap:   storagev1alpha1.Snapshot{Status: storagev1alpha1.SnapshotStatus{VerificationStatus: storagev1alpha1.SnapshotVerified}},
			want:   string(corev1alpha1.ReasonSnapshotAlreadyVerified),
		},
		"Paused": {
			reason: "A paused Snapshot is skipped.",
			snap:   storagev1alpha1.Snapshot{Spec: storagev1alpha1.SnapshotSpec{Paused: true}},
			want:   string(corev1alpha1.ReasonSnapshotPaused),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, _ := skip(&tc.snap)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nskip(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestScratchSize(t *testing.T) {
	cases := map[string]struct {
		reason string
		size   string
		want   string
	}{
		"Unknown":  {reason: "A Snapshot without a size gets the smallest claim.", size: "", want: "1Gi"},
		"Small":    {reason: "A small Snapshot gets the smallest claim.", size: "1.54 MiB", want: "1Gi"},
		"Large":    {reason: "A claim holds twice the Snapshot, in whole GiB.", size: "3 GiB", want: "6Gi"},
		"RoundsUp": {reason: "A fraction of a GiB rounds up.", size: "1.5 GiB", want: "3Gi"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			snap := &storagev1alpha1.Snapshot{Status: storagev1alpha1.SnapshotStatus{Size: tc.size}}
			got := scratchSize(snap)
			want := resource.MustParse(tc.want)
			if diff := cmp.Diff(want.String(), got.String()); diff != "" {
				t.Errorf("%s\nscratchSize(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRestoreSession(t *testing.T) {
	s := &corev1alpha1.BackupVerificationSession{
		ObjectMeta: metav1.ObjectMeta{Name: "app-nightly-100", Namespace: "ns"},
		Spec:       corev1alpha1.BackupVerificationSessionSpec{Repository: "app", Snapshot: "app-snap", Session: "nightly"},
	}
	v := &corev1alpha1.BackupVerifier{Spec: corev1alpha1.BackupVerifierSpec{RestoreOption: corev1alpha1.RestoreOption{
		AddonInfo: corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup-restore"}}},
	}}}
	target := &storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: naming.ScratchClaim("scratch", s.Name)}
	repo := &storagev1alpha1.Repository{Spec: storagev1alpha1.RepositorySpec{EncryptionSecret: storagev1alpha1.ObjectReference{Name: "app-pw"}}}
	got := restoreSession(s, v, target, repo)
	want := corev1alpha1.RestoreSessionSpec{
		Target:         target,
		DataSource:     corev1alpha1.RestoreDataSource{Repository: "app", Snapshot: "app-snap"},
		Addon:          &v.Spec.RestoreOption.AddonInfo,
		RestoreTimeout: &metav1.Duration{Duration: restoreTimeout},
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("restoreSession(): -want +got:\n%s", diff)
	}
	if got.Name != s.Name || got.Namespace != "ns" || got.Labels[corev1alpha1.LabelBackupVerificationSession] != s.Name {
		t.Errorf("restoreSession(): %s/%s labels %v, want ns/%s labelled with the session", got.Namespace, got.Name, got.Labels, s.Name)
	}
	// Into another namespace: from the session's Repository, with the
	// Secret of the Repository's password's name there.
	v.Spec.RestoreOption.Target.Namespace = "verify"
	got = restoreSession(s, v, target, repo)
	want.DataSource.Namespace, want.DataSource.EncryptionSecret = "ns", &storagev1alpha1.ObjectReference{Name: "app-pw"}
	if diff := cmp.Diff(want, got.Spec); diff != "" || got.Namespace != "verify" {
		t.Errorf("restoreSession() into namespace verify: in %q, -want +got:\n%s", got.Namespace, diff)
	}
	if a, b := naming.ScratchClaim("scratch", "one"), naming.ScratchClaim("scratch", "two"); a == b || len(naming.ScratchClaim(string(make([]byte, 80)), "x")) > 63 {
		t.Errorf("ScratchClaim: %q and %q must differ and fit in 63 characters", a, b)
	}
}

func TestSetupFault(t *testing.T) {
	failedWith := func(errs ...string) *corev1alpha1.RestoreSession {
		rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "rs"}}
		rs.Status.Phase = corev1alpha1.RestoreFailed
		rs.Status.Components = map[string]corev1alpha1.ComponentRestoreStatus{}
		for i, e := range errs {
			rs.Status.Components[fmt.Sprintf("dump-pod-%d", i)] = corev1alpha1.ComponentRestoreStatus{Phase: corev1alpha1.RestoreFailed, Error: e}
		}
		return rs
	}
	failed := verdict{final: true, runnable: true, message: "restore failed"}
	cases := map[string]struct {
		reason string
		v      verdict
		rs     *corev1alpha1.RestoreSession
		want   verdict
	}{
		"BackupAtFault": {
			reason: "A content mismatch blames the backup: the verdict stands.",
			v:      failed, rs: failedWith("RestoreMismatch: a: content differs"), want: failed,
		},
		"IncludeMatchedNothing": {
			reason: "Include patterns that match nothing blame the verifier: no verdict, and the message says what to fix.",
			v:      failed, rs: failedWith("IncludeMatchedNothing: the include patterns /x* match none of the 3 files"),
			want: verdict{final: true, runnable: true, noVerdict: corev1alpha1.ReasonVerificationSetupFailed,
				message: `the verifier's restore of component "dump-pod-0" failed for its own settings, not for the backup, which keeps its verdict: ` +
					`IncludeMatchedNothing: the include patterns /x* match none of the 3 files; fix the BackupVerifier's restoreOption (paths, include patterns, addon task, target size)`},
		},
		"TargetTooSmall": {
			reason: "A scratch target that ran out of space blames the verifier.",
			v:      failed, rs: failedWith("TargetTooSmall: the restore target ran out of space"),
			want: verdict{final: true, runnable: true, noVerdict: corev1alpha1.ReasonVerificationSetupFailed,
				message: `the verifier's restore of component "dump-pod-0" failed for its own settings, not for the backup, which keeps its verdict: ` +
					`TargetTooSmall: the restore target ran out of space; fix the BackupVerifier's restoreOption (paths, include patterns, addon task, target size)`},
		},
		"Verified": {
			reason: "A verdict of Verified is left alone.",
			v:      verdict{final: true, runnable: true, verified: true}, rs: failedWith("NotAStream: x"),
			want: verdict{final: true, runnable: true, verified: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, setupFault(tc.v, tc.rs), cmp.AllowUnexported(verdict{})); diff != "" {
				t.Errorf("%s\nsetupFault(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
