package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/verify"
)

// A verdict outlives no prune that freed data: a Snapshot verified for
// real is skipped by the next verification, then a prune frees the data
// of a Snapshot retention removed, and the next verification of the same
// Snapshot runs again (restoring through the pruned restic repository)
// instead of being skipped, and succeeds with a new verdict.
func TestReverifyAfterPrune(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defaultKeepLast(t, kube, 1)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Sessions[0].Repositories[0].BackupVerifier = &storagev1alpha1.ObjectReference{Name: "app-verifier"}
	verifier := verifierWith("app-verifier", `{"mountPath": "/var/lib/app"}`)
	verifier.Spec.ReadDataSubset = "100%"
	verifier.Spec.SessionHistoryLimit = 5
	startRetention(t, kube, bc, localStorage("shared", "default", storageDir(t), nil), verifier)
	// Only the next run holds 16 MiB of random data; the run after it
	// does not, and keeping the last one removes the first.
	big := filepath.Join(appData(t, kube), "big.bin")
	writeRandom(t, big, 16<<20)
	start := time.Now()
	retentionRun(t, kube, bc, start.Add(time.Second))
	if err := os.Remove(big); err != nil {
		t.Fatal(err)
	}
	kept := retentionRun(t, kube, bc, start.Add(2*time.Second))
	vt := &verificationTest{t: t, kube: kube}
	verifyKept := func(name string, at time.Time) *corev1alpha1.BackupVerificationSession {
		t.Helper()
		s := verify.Session("default", verifier.Name, vt.snapshot(kept), at)
		s.Name = name
		if err := kube.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		return vt.finished(s.Name)
	}

	first := verifyKept("first", start.Add(time.Hour))
	if first.Status.Phase != corev1alpha1.VerificationSessionSucceeded {
		t.Fatalf("the first verification of %s ended %s: %+v", kept, first.Status.Phase, first.Status.Conditions)
	}
	skipped := verifyKept("skipped", start.Add(2*time.Hour))
	if c := skipped.GetCondition(corev1alpha1.TypeBackupVerificationSkipped); skipped.Status.Phase != corev1alpha1.VerificationSessionSkipped || c.Reason != corev1alpha1.ReasonSnapshotAlreadyVerified {
		t.Fatalf("a verification of the Verified %s before any prune: phase %s, skipped %s %s; want Skipped SnapshotAlreadyVerified", kept, skipped.Status.Phase, c.Status, c.Reason)
	}

	res := stashplaneJSON[pruneResult](t, cluster.KubeconfigPath(), "prune", "app", "-n", "default", "-o", "json")
	if !res.Succeeded || res.Freed == "" || res.Freed == "0 B" {
		t.Fatalf("stashplane prune: %+v, want a prune that freed the removed Snapshot's data", res)
	}
	t.Logf("the prune freed %s", res.Freed)

	again := verifyKept("after-prune", start.Add(3*time.Hour))
	if again.Status.Phase != corev1alpha1.VerificationSessionSucceeded {
		t.Fatalf("the verification of %s after a prune that freed %s ended %s (%+v), want it run again and Succeeded", kept, res.Freed, again.Status.Phase, again.Status.Conditions)
	}
	if again.Status.DataChecked != "100%" || again.Status.BytesRestored <= 0 {
		t.Errorf("the verification after the prune read %q of the data and restored %d bytes, want it to have run", again.Status.DataChecked, again.Status.BytesRestored)
	}
	if got := vt.snapshot(kept); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerified || got.Status.VerificationSession != again.Name {
		t.Errorf("snapshot %s: %s by %q, want Verified by %s", kept, got.Status.VerificationStatus, got.Status.VerificationSession, again.Name)
	}
}
