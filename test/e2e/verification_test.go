package e2e

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/controllers/backupverificationsession"
	"github.com/stashplane/stashplane/internal/backend"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/trigger"
	"github.com/stashplane/stashplane/internal/verify"
)

// restoreOnlyVerifier restores into a scratch claim that does not exist,
// so each session makes one, with the pvc-addon mounting it where the
// backup read the files.
func restoreOnlyVerifier() *corev1alpha1.BackupVerifier {
	return &corev1alpha1.BackupVerifier{
		ObjectMeta: metav1.ObjectMeta{Name: "app-verifier", Namespace: "default"},
		Spec: corev1alpha1.BackupVerifierSpec{
			Type:      corev1alpha1.VerificationRestoreOnly,
			Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "0 3 * * *"},
			RestoreOption: corev1alpha1.RestoreOption{
				Target: storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "scratch"},
				AddonInfo: corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{
					Name: "logical-backup-restore", Params: &runtime.RawExtension{Raw: []byte(`{"mountPath": "/var/lib/app"}`)},
				}}},
			},
		},
	}
}

// packs lists the restic pack files under a component's data/.
func packs(t *testing.T, repoDir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(filepath.Join(repoDir, "data"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The RestoreOnly verification path on the dev cluster: a BackupVerifier
// linked to the seed configuration's repository composes its CronJob and
// marks the repository verificationConfigured; a session for the newest
// Snapshot restores it into a scratch claim made for the run and marks the
// Snapshot Verified, with the restore time on the session; a second
// session for the same Snapshot is Skipped; a second Snapshot whose new
// pack was overwritten with garbage in the storage is VerificationFailed,
// with the reason on the session; the scratch claims are gone after both
// the success and the failure.
func TestVerificationEndToEnd(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defer dumpOnFailure(t, kube, &corev1.PersistentVolumeClaimList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	storageDir, data := t.TempDir(), t.TempDir()
	generate(t, data, 80, 13)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Sessions[0].Repositories[0].BackupVerifier = &storagev1alpha1.ObjectReference{Name: "app-verifier"}
	for _, o := range []client.Object{
		localStorage("shared", "default", storageDir, nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		appWithHostDir("app", data),
		restoreOnlyVerifier(),
		bc,
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var first string
	poll(t, 3*time.Minute, "the first backup did not succeed", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		first = list.Items[0].Name
		return list.Items[0].Status.Phase == corev1alpha1.BackupSessionSucceeded, nil
	})

	// The verifier's scheduler and the configuration's link.
	cj := &batchv1.CronJob{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-verifier-verify"}, cj); err != nil {
		t.Fatalf("the verifier's cronjob: %v", err)
	}
	if args := strings.Join(cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args, " "); args != "verify now --namespace=default --verifier=app-verifier" {
		t.Errorf("the verifier's cronjob runs %q", args)
	}
	poll(t, time.Minute, "the configuration does not show verificationConfigured", func(ctx context.Context) (bool, error) {
		got := &corev1alpha1.BackupConfiguration{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(bc), got); err != nil || len(got.Status.Repositories) == 0 {
			return false, nil
		}
		return ptr.Deref(got.Status.Repositories[0].VerificationConfigured, false), nil
	})

	finished := func(name string) *corev1alpha1.BackupVerificationSession {
		t.Helper()
		s := &corev1alpha1.BackupVerificationSession{}
		poll(t, 2*time.Minute, "backupverificationsession "+name+" did not finish", func(ctx context.Context) (bool, error) {
			if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, s); err != nil {
				return false, nil
			}
			p := s.Status.Phase
			return p == corev1alpha1.VerificationSessionSucceeded || p == corev1alpha1.VerificationSessionFailed || p == corev1alpha1.VerificationSessionSkipped, nil
		})
		return s
	}
	snapshot := func(name string) *storagev1alpha1.Snapshot {
		t.Helper()
		s := &storagev1alpha1.Snapshot{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	scratchGone := func(session string) {
		t.Helper()
		name := backupverificationsession.ScratchClaimName("scratch", session)
		poll(t, time.Minute, "scratch claim "+name+" was not removed", func(ctx context.Context) (bool, error) {
			err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &corev1.PersistentVolumeClaim{})
			return err != nil && client.IgnoreNotFound(err) == nil, nil
		})
	}

	// (a) The newest Snapshot, verified by what the CronJob runs.
	started, err := verify.Now(ctx, kube, "default", "app-verifier", "", time.Now())
	if err != nil || len(started) != 1 {
		t.Fatalf("verify.Now: %d sessions, %v", len(started), err)
	}
	snap1 := "app-" + first
	if started[0].Spec.Snapshot != snap1 {
		t.Fatalf("verify.Now verifies %s, want %s", started[0].Spec.Snapshot, snap1)
	}
	s := finished(started[0].Name)
	if s.Status.Phase != corev1alpha1.VerificationSessionSucceeded || s.Status.RestoreDuration == "" {
		t.Fatalf("session %s: phase %s, restore time %q, conditions %+v", s.Name, s.Status.Phase, s.Status.RestoreDuration, s.Status.Conditions)
	}
	if got := snapshot(snap1); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerified || got.Status.VerificationSession != s.Name ||
		got.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Errorf("snapshot %s: phase %s, verification %s by %q, want Succeeded, Verified by %s", snap1, got.Status.Phase, got.Status.VerificationStatus, got.Status.VerificationSession, s.Name)
	}
	scratchGone(s.Name)

	// (b) The same Snapshot again: skipped.
	again := verify.Session("default", "app-verifier", snapshot(snap1), time.Now().Add(time.Hour))
	if err := kube.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	s = finished(again.Name)
	if c := s.GetCondition(corev1alpha1.TypeBackupVerificationSkipped); s.Status.Phase != corev1alpha1.VerificationSessionSkipped || c.Reason != corev1alpha1.ReasonSnapshotAlreadyVerified {
		t.Errorf("session %s: phase %s, skipped %s %s, want Skipped SnapshotAlreadyVerified", s.Name, s.Status.Phase, c.Status, c.Reason)
	}

	// (c) A second Snapshot whose new data pack is damaged in the storage.
	repoDir := filepath.Join(storageDir, "backups", backend.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	before := packs(t, repoDir)
	big := make([]byte, 256<<10)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "new.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	live := &corev1alpha1.BackupConfiguration{}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(bc), live); err != nil {
		t.Fatal(err)
	}
	second, err := trigger.Create(ctx, kube, live, "nightly", time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 3*time.Minute, "the second backup did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, second.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	var damaged string
	var size int64
	for p, n := range packs(t, repoDir) {
		if _, old := before[p]; !old && n > size {
			damaged, size = p, n
		}
	}
	if damaged == "" {
		t.Fatal("the second backup wrote no pack")
	}
	garbage := make([]byte, size)
	if _, err := rand.Read(garbage); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(damaged, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	snap2 := "app-" + second.Name
	bad := verify.Session("default", "app-verifier", snapshot(snap2), time.Now().Add(2*time.Hour))
	if err := kube.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	s = finished(bad.Name)
	c := s.GetCondition(corev1alpha1.TypeBackupVerified)
	if s.Status.Phase != corev1alpha1.VerificationSessionFailed || c.Status != corev1.ConditionFalse || c.Reason != corev1alpha1.ReasonVerificationFailed || c.Message == "" {
		t.Errorf("session %s: phase %s, BackupVerified %s %s (%s), want Failed, False VerificationFailed with a reason", s.Name, s.Status.Phase, c.Status, c.Reason, c.Message)
	}
	t.Logf("the damaged snapshot's verification failed with: %s", c.Message)
	if got := snapshot(snap2); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerificationFailed || got.Status.VerificationSession != s.Name {
		t.Errorf("snapshot %s: verification %s by %q, want VerificationFailed by %s", snap2, got.Status.VerificationStatus, got.Status.VerificationSession, s.Name)
	}
	if got := snapshot(snap1); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerified {
		t.Errorf("snapshot %s lost its verdict: %s", snap1, got.Status.VerificationStatus)
	}
	scratchGone(s.Name)
}
