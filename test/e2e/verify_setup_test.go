package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/verify"
)

// A verifier's own mistake never blames the backup. A Snapshot is verified
// for real; the verifier is then given include patterns that match none of
// the backup's files and a verdictMaxAge of one second, so the next
// session runs instead of being skipped: it fails VerificationSetupFailed,
// naming the patterns and what to fix, and the Snapshot stays Verified by
// the first session.
func TestVerifierSetupFaultKeepsVerdict(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defaultKeepLast(t, kube, 10)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Sessions[0].Repositories[0].BackupVerifier = &storagev1alpha1.ObjectReference{Name: "app-verifier"}
	verifier := verifierWith("app-verifier", `{"mountPath": "/var/lib/app"}`)
	verifier.Spec.SessionHistoryLimit = 5
	startRetention(t, kube, bc, localStorage("shared", "default", storageDir(t), nil), verifier)
	start := time.Now()
	snap := retentionRun(t, kube, bc, start.Add(time.Second))
	vt := &verificationTest{t: t, kube: kube}
	run := func(name string, at time.Time) *corev1alpha1.BackupVerificationSession {
		t.Helper()
		s := verify.Session("default", verifier.Name, vtSnapshot(t, kube, snap), at)
		s.Name = name
		if err := kube.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		return vt.finished(s.Name)
	}
	if first := run("first", start.Add(time.Hour)); first.Status.Phase != corev1alpha1.VerificationSessionSucceeded {
		t.Fatalf("the first verification of %s ended %s: %+v", snap, first.Status.Phase, first.Status.Conditions)
	}

	v := verifier.DeepCopy()
	update(t, kube, v, func() {
		v.Spec.RestoreOption.AddonInfo.Tasks[0].Params = &runtime.RawExtension{Raw: []byte(`{"mountPath": "/var/lib/app", "include": ["/nomatch*"]}`)}
		v.Spec.VerdictMaxAge = &metav1.Duration{Duration: time.Second}
	})
	time.Sleep(2 * time.Second) // the verdict ages past one second
	bad := run("misconfigured", start.Add(2*time.Hour))
	c := bad.GetCondition(corev1alpha1.TypeBackupVerified)
	if bad.Status.Phase != corev1alpha1.VerificationSessionFailed || c.Reason != corev1alpha1.ReasonVerificationSetupFailed ||
		!strings.Contains(c.Message, "IncludeMatchedNothing") || !strings.Contains(c.Message, "/nomatch*") {
		t.Errorf("the misconfigured verification: phase %s, BackupVerified %s %s (%s); want Failed VerificationSetupFailed naming IncludeMatchedNothing and the pattern",
			bad.Status.Phase, c.Status, c.Reason, c.Message)
	}
	t.Logf("the misconfigured verification said: %s", c.Message)
	if got := vtSnapshot(t, kube, snap); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerified || got.Status.VerificationSession != "first" {
		t.Errorf("snapshot %s: %s by %q after the misconfigured verification, want still Verified by first", snap, got.Status.VerificationStatus, got.Status.VerificationSession)
	}
}
