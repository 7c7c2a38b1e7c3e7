package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/verify"
)

// A Snapshot of a StatefulSet with two pods holding different data has the
// components dump-pod-0 and dump-pod-1. A RestoreOnly verification restores
// both into one scratch claim, each into its own directory, and each is
// compared with its own content manifest: the Snapshot is Verified, the
// RestoreSession shows each component's files and bytes, the session their
// sums, and the scratch claim is gone. A later Snapshot whose new pack in
// dump-pod-1's repository is overwritten in the storage is
// VerificationFailed naming dump-pod-1, while dump-pod-0 still restores
// and matches.
func TestVerificationOfStatefulSetComponents(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defer dumpOnFailure(t, kube, &batchv1.JobList{})
	defer dumpOnFailure(t, kube, &corev1.PersistentVolumeClaimList{})
	storageDir, bc := statefulSetSetup(t, kube,
		verifierWith("pods-verifier", `{"mountPath": "/var/lib/app"}`),
		keptClaimVerifier(),
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "inspect", Namespace: "default"}, Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("64Mi")}},
		}},
	)

	// Different data in each ordinal's claim: the same paths, other
	// contents and a different number of files, so that a restore of one
	// pod's component over the other's would not match either manifest.
	files := []int64{40, 60}
	dirs := []string{claimDir(t, kube, "data-db-0"), claimDir(t, kube, "data-db-1")}
	want := make([]map[string]string, len(dirs))
	for i, dir := range dirs {
		generate(t, dir, int(files[i]), uint64(71+i))
		want[i] = digest(t, dir)
	}
	poll(t, 3*time.Minute, "the StatefulSet's two pods did not become ready", func(ctx context.Context) (bool, error) {
		sts := &appsv1.StatefulSet{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "db"}, sts); err != nil {
			return false, nil
		}
		return sts.Status.ReadyReplicas == 2, nil
	})
	if err := kube.Create(ctx, bc); err != nil {
		t.Fatal(err)
	}
	snap1, _ := componentsBackedUp(t, kube, "dump-pod-0", "dump-pod-1")
	vt := &verificationTest{t: t, kube: kube}

	// (a) Both components restored and checked, each on its own.
	s := vt.verifyPods(snap1, time.Now())
	if s.Status.Phase != corev1alpha1.VerificationSessionSucceeded || s.Status.FilesChecked != files[0]+files[1] ||
		s.Status.BytesRestored <= 0 || len(s.Status.Differences) != 0 {
		t.Fatalf("session %s: phase %s, %d files checked, %d bytes restored, differences %+v, conditions %+v; want Succeeded, %d files, bytes and no difference",
			s.Name, s.Status.Phase, s.Status.FilesChecked, s.Status.BytesRestored, s.Status.Differences, s.Status.Conditions, files[0]+files[1])
	}
	rs := vt.restoreOf(s)
	var bytes int64
	for i := range files {
		name := fmt.Sprintf("dump-pod-%d", i)
		c, ok := rs.Status.Components[name]
		if !ok || c.Phase != corev1alpha1.RestoreSucceeded || c.FilesChecked != files[i] || c.BytesRestored <= 0 {
			t.Errorf("restoresession %s, component %s: %+v (reported %t); want Succeeded with %d files checked and bytes", rs.Name, name, c, ok, files[i])
		}
		bytes += c.BytesRestored
	}
	if rs.Status.TotalComponents != 2 || bytes != s.Status.BytesRestored {
		t.Errorf("restoresession %s: %d components, %d bytes; the session has %d bytes; want 2 components summing to the session's bytes",
			rs.Name, rs.Status.TotalComponents, bytes, s.Status.BytesRestored)
	}
	if msg := s.GetCondition(corev1alpha1.TypeBackupVerified).Message; !strings.Contains(msg, `"dump-pod-0": 40 files`) || !strings.Contains(msg, `"dump-pod-1": 60 files`) {
		t.Errorf("session %s: BackupVerified says %q, want each component's files", s.Name, msg)
	}
	if got := vt.snapshot(snap1.Name); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerified || got.Status.VerificationSession != s.Name {
		t.Errorf("snapshot %s: verification %s by %q, want Verified by %s", snap1.Name, got.Status.VerificationStatus, got.Status.VerificationSession, s.Name)
	}
	vt.noScratchLeft(s.Name)

	// (b) A second backup whose only new pack of dump-pod-1's repository
	// is overwritten in the storage.
	repo1 := filepath.Join(storageDir, "backups", snap1.Status.Components["dump-pod-1"].Path)
	before := packs(t, repo1)
	big := make([]byte, 256<<10)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirs[1], "new.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	second := vt.backup(bc)
	poll(t, 5*time.Minute, "the second backup did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, second.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	snap2 := vt.snapshot("app-" + second.Name)
	if p := filepath.Join(storageDir, "backups", snap2.Status.Components["dump-pod-1"].Path); p != repo1 {
		t.Fatalf("the second snapshot's dump-pod-1 is in %s, the first's in %s", p, repo1)
	}
	pack := damageNewPack(t, repo1, before)
	s = vt.verifyPods(snap2, time.Now().Add(time.Hour))
	c := s.GetCondition(corev1alpha1.TypeBackupVerified)
	if s.Status.Phase != corev1alpha1.VerificationSessionFailed || c.Reason != corev1alpha1.ReasonVerificationFailed ||
		!strings.Contains(c.Message, `component "dump-pod-1" failed`) || !strings.Contains(c.Message, "DamagedPack") ||
		!strings.Contains(c.Message, pack) {
		t.Errorf("session %s: phase %s, BackupVerified %s %s (%s); want Failed, VerificationFailed naming dump-pod-1 and the damaged pack %s",
			s.Name, s.Status.Phase, c.Status, c.Reason, c.Message, pack)
	}
	t.Logf("the damaged snapshot's verification failed with: %s", c.Message)
	rs = vt.restoreOf(s)
	if c := rs.Status.Components["dump-pod-0"]; c.Phase != corev1alpha1.RestoreSucceeded || c.FilesChecked != files[0] {
		t.Errorf("restoresession %s, component dump-pod-0: %+v; want Succeeded with %d files: the undamaged pod's data checks on its own", rs.Name, c, files[0])
	}
	if c := rs.Status.Components["dump-pod-1"]; c.Phase != corev1alpha1.RestoreFailed {
		t.Errorf("restoresession %s, component dump-pod-1: %+v; want Failed", rs.Name, c)
	}
	if got := vt.snapshot(snap2.Name); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerificationFailed {
		t.Errorf("snapshot %s: verification %s, want VerificationFailed", snap2.Name, got.Status.VerificationStatus)
	}
	if got := vt.snapshot(snap1.Name); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerified {
		t.Errorf("snapshot %s lost its verdict: %s", snap1.Name, got.Status.VerificationStatus)
	}
	vt.noScratchLeft(s.Name)

	// (c) The same Snapshot into a claim that exists, which the session
	// uses and keeps: each component is in its own directory, the
	// undamaged one exactly as backed up, and nothing else is in the claim.
	kept := claimDir(t, kube, "inspect")
	s = vt.verifyPods(snap2, time.Now().Add(2*time.Hour), "kept-claim-verifier")
	if s.Status.Phase != corev1alpha1.VerificationSessionFailed {
		t.Errorf("session %s into the kept claim: phase %s, want Failed", s.Name, s.Status.Phase)
	}
	entries, err := os.ReadDir(kept)
	if err != nil {
		t.Fatal(err)
	}
	var top []string
	for _, e := range entries {
		top = append(top, e.Name())
	}
	if diff := cmp.Diff([]string{"dump-pod-0", "dump-pod-1"}, top); diff != "" {
		t.Errorf("the kept claim's root: -want +got:\n%s", diff)
	}
	if diff := cmp.Diff(want[0], digest(t, filepath.Join(kept, "dump-pod-0"))); diff != "" {
		t.Errorf("dump-pod-0 restored into the kept claim: -backed up +restored:\n%s", diff)
	}
}

// keptClaimVerifier restores into the claim "inspect", which exists, so
// that a session uses it as it is and leaves it for the test to look at.
func keptClaimVerifier() *corev1alpha1.BackupVerifier {
	v := verifierWith("kept-claim-verifier", `{"mountPath": "/var/lib/app"}`)
	v.Spec.RestoreOption.Target.Name = "inspect"
	return v
}

// verifyPods starts a session of the "pods-verifier" (or of the verifier
// named) for a Snapshot and
// waits for its outcome.
func (v *verificationTest) verifyPods(snap *storagev1alpha1.Snapshot, now time.Time, verifier ...string) *corev1alpha1.BackupVerificationSession {
	v.t.Helper()
	name := "pods-verifier"
	if len(verifier) > 0 {
		name = verifier[0]
	}
	s := verify.Session("default", name, snap, now)
	if err := v.kube.Create(context.Background(), s); err != nil {
		v.t.Fatal(err)
	}
	return v.finished(s.Name)
}

// restoreOf is the RestoreSession a verification session composed.
func (v *verificationTest) restoreOf(s *corev1alpha1.BackupVerificationSession) *corev1alpha1.RestoreSession {
	v.t.Helper()
	rs := &corev1alpha1.RestoreSession{}
	if err := v.kube.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: s.Status.RestoreSession}, rs); err != nil {
		v.t.Fatal(err)
	}
	return rs
}

// noScratchLeft waits until no claim made for the session is left.
func (v *verificationTest) noScratchLeft(session string) {
	v.t.Helper()
	v.scratchGone(session)
	poll(v.t, 2*time.Minute, "claims of session "+session+" were left", func(ctx context.Context) (bool, error) {
		list := &corev1.PersistentVolumeClaimList{}
		err := v.kube.List(ctx, list, client.InNamespace("default"), client.MatchingLabels{corev1alpha1.LabelBackupVerificationSession: session})
		return err == nil && len(list.Items) == 0, nil
	})
}

// damageNewPack overwrites with random bytes the largest pack a component's
// repository gained since before (a listing by packs), and returns the
// pack's short ID, which a restore's DamagedPack reason names.
func damageNewPack(t *testing.T, repoDir string, before map[string]int64) string {
	t.Helper()
	var damaged string
	var size int64
	for p, n := range packs(t, repoDir) {
		if _, old := before[p]; !old && n > size {
			damaged, size = p, n
		}
	}
	if damaged == "" {
		t.Fatalf("no pack was written to %s since the listing", repoDir)
	}
	garbage := make([]byte, size)
	if _, err := rand.Read(garbage); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(damaged, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(damaged)[:8]
}
