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
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/verify"
)

// restoreOnlyVerifier restores into a scratch claim that does not exist,
// so each session makes one, with the pvc-addon mounting it where the
// backup read the files.
func restoreOnlyVerifier() *corev1alpha1.BackupVerifier {
	return verifierWith("app-verifier", `{"mountPath": "/var/lib/app"}`)
}

// verifierWith is a RestoreOnly verifier into a scratch claim with the
// pvc-addon's restore task, given the task's params.
func verifierWith(name, params string) *corev1alpha1.BackupVerifier {
	return &corev1alpha1.BackupVerifier{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1alpha1.BackupVerifierSpec{
			Type:      corev1alpha1.VerificationRestoreOnly,
			Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "0 3 * * *"},
			RestoreOption: corev1alpha1.RestoreOption{
				Target: storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "scratch"},
				AddonInfo: corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{
					Name: "logical-backup-restore", Params: &runtime.RawExtension{Raw: []byte(params)},
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

// The RestoreOnly verification path on the dev cluster, with what it
// records and guards:
//
//   - a BackupVerifier linked to the seed configuration's repository
//     composes its CronJob and marks the repository verificationConfigured;
//   - a session for the newest Snapshot, with restic's check reading 100%
//     of the packs, runs while a backup of the same repository runs: both
//     succeed, and restic check on the repository is clean afterwards; the
//     session and the Snapshot carry the restore time and bytes restored,
//     the session the files checked and the data read;
//   - a second session for the same Snapshot is Skipped, and the verifier's
//     history limit of 1 keeps the first session and its RestoreSession:
//     skipped sessions are counted apart, and the Snapshot names it;
//   - a Snapshot whose new pack is overwritten in the storage is
//     VerificationFailed with a reason naming the pack, and is retried
//     once by the verifier's retryConfig, the retry failing too;
//   - of two sessions of a later Snapshot made at once, the second waits
//     for the first: a restore task whose include patterns restore nothing
//     fails VerificationSetupFailed with no verdict (the patterns are at
//     fault, not the backup), then the
//     Snapshot, which does not use the damaged pack, still verifies;
//   - the scratch claims are gone after success and failure alike;
//   - the verdict metrics are served in Prometheus' format, and
//     `stashplane snapshots` lists the Snapshots with their verdicts.
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
	storageDir, data := storageDir(t), t.TempDir()
	generate(t, data, 80, 13)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Sessions[0].Repositories[0].BackupVerifier = &storagev1alpha1.ObjectReference{Name: "app-verifier"}
	checking := verifierWith("app-verifier", `{"mountPath": "/var/lib/app"}`)
	checking.Spec.ReadDataSubset = "100%"
	checking.Spec.SessionHistoryLimit = 1
	retrying := verifierWith("retrying", `{"mountPath": "/var/lib/app"}`)
	retrying.Spec.SessionHistoryLimit = 5
	retrying.Spec.RetryConfig = &corev1alpha1.RetryConfig{MaxRetry: 1, Delay: metav1.Duration{Duration: time.Second}}
	nothing := verifierWith("restores-nothing", `{"mountPath": "/var/lib/app", "include": ["/no/such/file"]}`)
	nothing.Spec.SessionHistoryLimit = 5
	for _, o := range []client.Object{
		localStorage("shared", "default", storageDir, nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		appWithHostDir("app", data),
		checking, retrying, nothing,
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

	vt := &verificationTest{t: t, kube: kube}
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	before := packs(t, repoDir)
	big := make([]byte, 256<<10)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "new.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}

	// (a) The newest Snapshot, verified by what the CronJob runs, while a
	// second backup of the same repository runs.
	started, err := verify.Now(ctx, kube, "default", "app-verifier", "", time.Now())
	if err != nil || len(started) != 1 {
		t.Fatalf("verify.Now: %d sessions, %v", len(started), err)
	}
	second := vt.backup(bc)
	snap1 := "app-" + first
	if started[0].Spec.Snapshot != snap1 {
		t.Fatalf("verify.Now verifies %s, want %s", started[0].Spec.Snapshot, snap1)
	}
	s := vt.finished(started[0].Name)
	if s.Status.Phase != corev1alpha1.VerificationSessionSucceeded || s.Status.RestoreDuration == "" || s.Status.BytesRestored <= 0 ||
		s.Status.FilesChecked != 80 || s.Status.DataChecked != "100%" || len(s.Status.Differences) != 0 {
		t.Fatalf("session %s: phase %s, restore time %q, %d bytes restored, %d files checked, data checked %q, differences %+v, conditions %+v; "+
			"want Succeeded with a restore time, bytes, 80 files, 100%% and no difference",
			s.Name, s.Status.Phase, s.Status.RestoreDuration, s.Status.BytesRestored, s.Status.FilesChecked, s.Status.DataChecked, s.Status.Differences, s.Status.Conditions)
	}
	verified := s.Name
	if got := vt.snapshot(snap1); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerified || got.Status.VerificationSession != s.Name ||
		got.Status.Phase != storagev1alpha1.SnapshotSucceeded || got.Status.RestoreDuration != s.Status.RestoreDuration ||
		got.Status.BytesRestored != s.Status.BytesRestored || got.Status.VerificationTime == nil {
		t.Errorf("snapshot %s: phase %s, verification %s by %q at %v, restore time %q, %d bytes; want Succeeded, Verified by %s with the session's %q and %d bytes",
			snap1, got.Status.Phase, got.Status.VerificationStatus, got.Status.VerificationSession, got.Status.VerificationTime,
			got.Status.RestoreDuration, got.Status.BytesRestored, s.Name, s.Status.RestoreDuration, s.Status.BytesRestored)
	}
	vt.scratchGone(s.Name)
	poll(t, 3*time.Minute, "the backup run beside the verification did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, second.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	hostRestic(t, repoDir, "check")

	// (b) The same Snapshot again: skipped; the history limit of 1 keeps
	// the first session and its RestoreSession, the Snapshot's evidence.
	again := verify.Session("default", "app-verifier", vt.snapshot(snap1), time.Now().Add(time.Hour))
	if err := kube.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	s = vt.finished(again.Name)
	if c := s.GetCondition(corev1alpha1.TypeBackupVerificationSkipped); s.Status.Phase != corev1alpha1.VerificationSessionSkipped || c.Reason != corev1alpha1.ReasonSnapshotAlreadyVerified {
		t.Errorf("session %s: phase %s, skipped %s %s, want Skipped SnapshotAlreadyVerified", s.Name, s.Status.Phase, c.Status, c.Reason)
	}
	for _, o := range []client.Object{&corev1alpha1.BackupVerificationSession{}, &corev1alpha1.RestoreSession{}} {
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: verified}, o); err != nil {
			t.Errorf("the %T %s that verified snapshot %s is gone after a skipped session: %v", o, verified, snap1, err)
		}
	}

	// (c) The second Snapshot, whose new data pack is damaged in the
	// storage: the reason names the pack, and the verifier retries once.
	pack := damageNewPack(t, repoDir, before)
	snap2 := "app-" + second.Name
	bad := verify.Session("default", "retrying", vt.snapshot(snap2), time.Now().Add(2*time.Hour))
	if err := kube.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bad.Name, bad.Name + "-retry-0"} {
		s = vt.finished(name)
		c := s.GetCondition(corev1alpha1.TypeBackupVerified)
		if s.Status.Phase != corev1alpha1.VerificationSessionFailed || c.Status != corev1.ConditionFalse || c.Reason != corev1alpha1.ReasonVerificationFailed ||
			!strings.Contains(c.Message, "DamagedPack") || !strings.Contains(c.Message, pack) {
			t.Errorf("session %s: phase %s, BackupVerified %s %s (%s), want Failed, False VerificationFailed naming DamagedPack %s", s.Name, s.Status.Phase, c.Status, c.Reason, c.Message, pack)
		}
		t.Logf("the damaged snapshot's verification %s failed with: %s", s.Name, c.Message)
		if got := vt.snapshot(snap2); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerificationFailed {
			t.Errorf("snapshot %s: verification %s, want VerificationFailed", snap2, got.Status.VerificationStatus)
		}
		vt.scratchGone(s.Name)
	}
	poll(t, time.Minute, "the failed session was not marked retried", func(ctx context.Context) (bool, error) {
		got := &corev1alpha1.BackupVerificationSession{}
		return kube.Get(ctx, client.ObjectKeyFromObject(bad), got) == nil && ptr.Deref(got.Status.Retried, false), nil
	})
	if got := vt.snapshot(snap1); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerified {
		t.Errorf("snapshot %s lost its verdict: %s", snap1, got.Status.VerificationStatus)
	}

	// (d) A third Snapshot without the damaged data: a restore task whose
	// include patterns restore nothing fails VerificationSetupFailed and
	// gives no verdict; the snapshot itself verifies.
	if err := os.Remove(filepath.Join(data, "new.bin")); err != nil {
		t.Fatal(err)
	}
	third := vt.backup(bc)
	poll(t, 3*time.Minute, "the third backup did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, third.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	snap3 := "app-" + third.Name
	// Both sessions of the third Snapshot are created at once: the older
	// holds the Snapshot and the other waits for it to end.
	empty := verify.Session("default", "restores-nothing", vt.snapshot(snap3), time.Now().Add(3*time.Hour))
	good := verify.Session("default", "retrying", vt.snapshot(snap3), time.Now().Add(4*time.Hour))
	for _, o := range []client.Object{empty, good} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	s = vt.finished(empty.Name)
	if c := s.GetCondition(corev1alpha1.TypeBackupVerified); s.Status.Phase != corev1alpha1.VerificationSessionFailed || c.Reason != corev1alpha1.ReasonVerificationSetupFailed ||
		!strings.Contains(c.Message, "IncludeMatchedNothing") {
		t.Errorf("session %s (restores nothing): phase %s, BackupVerified %s (%s), want Failed VerificationSetupFailed naming IncludeMatchedNothing (the patterns are at fault, not the backup)",
			s.Name, s.Status.Phase, c.Reason, c.Message)
	}
	if got := vt.snapshot(snap3); got.Status.VerificationStatus == storagev1alpha1.SnapshotVerificationFailed {
		t.Errorf("snapshot %s: %s after a verification whose patterns matched nothing, want no verdict from it", snap3, got.Status.VerificationStatus)
	}
	emptyEnded := s.GetCondition(corev1alpha1.TypeBackupVerified).LastTransitionTime
	t.Logf("the empty restore failed with: %s", s.GetCondition(corev1alpha1.TypeBackupVerified).Message)
	vt.scratchGone(s.Name)
	if s = vt.finished(good.Name); s.Status.Phase != corev1alpha1.VerificationSessionSucceeded {
		t.Errorf("session %s of the undamaged snapshot %s: phase %s, conditions %+v, want Succeeded", s.Name, snap3, s.Status.Phase, s.Status.Conditions)
	}
	rs := &corev1alpha1.RestoreSession{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: good.Name}, rs); err != nil {
		t.Fatal(err)
	}
	if rs.CreationTimestamp.Before(&emptyEnded) {
		t.Errorf("session %s restored snapshot %s from %s, before session %s ended at %s", good.Name, snap3, rs.CreationTimestamp, empty.Name, emptyEnded)
	}

	// (e) What a user sees: the metrics and the snapshots command.
	vt.metrics("default", "app")
	vt.snapshotsTable(cluster.KubeconfigPath(), map[string]string{snap1: "Verified", snap2: "VerificationFailed", snap3: "Verified"})
}
