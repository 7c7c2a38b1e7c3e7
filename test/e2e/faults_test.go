package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/devcluster"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/verify"
)

// Fault tests: each kills or cuts one part while a session runs and then
// checks that every session ends, that no Snapshot is Succeeded without
// its data and none Verified without a check, and that restic finds the
// repository clean. docs/reliability.md lists them.

// providerProcess starts the provider as a process of its own beside c.
func providerProcess(t *testing.T, c *devcluster.Cluster, flags ...string) *devcluster.ProviderProcess {
	t.Helper()
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	proc, err := c.StartProvider(filepath.Join(bin, "stashplane"), append([]string{"--poll-interval", "5s"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proc.Stop)
	return proc
}

// jobNames are the names of the Jobs in the default namespace.
func jobNames(t *testing.T, kube client.Client) map[string]bool {
	t.Helper()
	jobs := &batchv1.JobList{}
	if err := kube.List(context.Background(), jobs, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, j := range jobs.Items {
		out[j.Name] = true
	}
	return out
}

// newJob waits for a Job in the default namespace that is not in known.
func newJob(t *testing.T, kube client.Client, known map[string]bool, what string) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	poll(t, 3*time.Minute, "no "+what+" Job was created", func(ctx context.Context) (bool, error) {
		jobs := &batchv1.JobList{}
		if err := kube.List(ctx, jobs, client.InNamespace("default")); err != nil {
			return false, nil
		}
		for i := range jobs.Items {
			if !known[jobs.Items[i].Name] {
				job = &jobs.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	return job
}

// jobEndsAlone waits for a Job to end while no provider runs, and fails
// unless it completed.
func jobEndsAlone(t *testing.T, kube client.Client, job *batchv1.Job) {
	t.Helper()
	poll(t, 3*time.Minute, "job "+job.Name+" did not end without the provider", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
			return false, nil
		}
		return jobCondition(job) != "", nil
	})
	if got := jobCondition(job); got != batchv1.JobComplete {
		t.Fatalf("job %s ended %q without the provider, want Complete", job.Name, got)
	}
}

// kill SIGKILLs the provider process and says so in the test's output.
func kill(t *testing.T, proc *devcluster.ProviderProcess, during string) {
	t.Helper()
	pid := proc.Pid()
	proc.Kill()
	if proc.Running() {
		t.Fatal("the provider still runs after SIGKILL")
	}
	t.Logf("killed the provider (pid %d, SIGKILL) %s", pid, during)
}

// The provider, as a process of its own, is SIGKILLed once a restore's Job
// exists and again once a verification's Job exists. Each Job finishes
// alone; neither session is recorded as done while no provider runs; the
// restarted provider finishes both from what it finds: the restored files
// equal the backed-up ones, and the Snapshot is Verified by that session
// with every file checked.
func TestProviderKilledDuringRestoreAndVerification(t *testing.T) {
	t.Parallel()
	kube, c := clusterWithCRDs(t)
	proc := providerProcess(t, c)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	const files = 300
	storageDir, data := seedAppBackup(t, kube, files, 21, func(_ *appsv1.Deployment, bc *corev1alpha1.BackupConfiguration) {
		bc.Spec.Sessions[0].Repositories[0].BackupVerifier = &storagev1alpha1.ObjectReference{Name: "app-verifier"}
	})
	restoredDir := t.TempDir()
	for _, o := range []client.Object{restoreOnlyVerifier(), appWithHostDir("restored", restoredDir)} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	first := firstSession(t, kube)
	poll(t, 4*time.Minute, "the backup did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, first.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	snap := "app-" + first.Name

	// Restore, with the provider killed once the restore's Job exists.
	known := jobNames(t, kube)
	if err := kube.Create(ctx, restoreSession("after-kill", "restored", snap, "")); err != nil {
		t.Fatal(err)
	}
	job := newJob(t, kube, known, "restore")
	kill(t, proc, "after it created restore Job "+job.Name)
	jobEndsAlone(t, kube, job)
	rs := &corev1alpha1.RestoreSession{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "after-kill"}, rs); err != nil {
		t.Fatal(err)
	}
	if rs.Status.Phase == corev1alpha1.RestoreSucceeded {
		t.Fatalf("the restore is %s while no provider runs", rs.Status.Phase)
	}
	if err := proc.Restart(); err != nil {
		t.Fatal(err)
	}
	if rs = finishedRestore(t, kube, "default", "after-kill"); rs.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("restore after the provider's restart: %s, conditions %+v", rs.Status.Phase, rs.Status.Conditions)
	}
	if diff := cmp.Diff(digest(t, data), digest(t, restoredDir)); diff != "" {
		t.Errorf("restored after the provider's restart: -backed up +restored:\n%s", diff)
	}
	t.Logf("checked: restore %s Succeeded, %d files equal to the source", rs.Name, files)

	// Verification, with the provider killed once its restore Job exists.
	known = jobNames(t, kube)
	started, err := verify.Now(ctx, kube, "default", "app-verifier", "", time.Now())
	if err != nil || len(started) != 1 {
		t.Fatalf("verify.Now: %d sessions, %v", len(started), err)
	}
	job = newJob(t, kube, known, "verification")
	kill(t, proc, "after it created verification Job "+job.Name)
	jobEndsAlone(t, kube, job)
	vt := &verificationTest{t: t, kube: kube}
	if s := vt.snapshot(snap); s.Status.VerificationStatus == storagev1alpha1.SnapshotVerified {
		t.Fatalf("snapshot %s is Verified while no provider runs", snap)
	}
	if err := proc.Restart(); err != nil {
		t.Fatal(err)
	}
	s := vt.finished(started[0].Name)
	if s.Status.Phase != corev1alpha1.VerificationSessionSucceeded || s.Status.FilesChecked != files {
		t.Fatalf("verification after the provider's restart: %s with %d files checked, want Succeeded with %d; conditions %+v", s.Status.Phase, s.Status.FilesChecked, files, s.Status.Conditions)
	}
	if got := vt.snapshot(snap); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerified || got.Status.VerificationSession != s.Name {
		t.Errorf("snapshot %s: %s by %q, want Verified by %s", snap, got.Status.VerificationStatus, got.Status.VerificationSession, s.Name)
	}
	t.Logf("checked: verification %s Succeeded with %d files checked, snapshot Verified", s.Name, s.Status.FilesChecked)
	hostRestic(t, filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump)), "check")
}

// Two providers run with leader election. The leader is SIGKILLed while a
// backup's agent runs: the other takes the lease once it expires and
// finishes the session and its Snapshot, which holds the data.
func TestLeaderFailoverDuringBackup(t *testing.T) {
	t.Parallel()
	kube, c := clusterWithCRDs(t)
	ctx := context.Background()
	flags := []string{"--leader-election", "--leader-election-namespace", "default"}
	leader := providerProcess(t, c, flags...)
	lease := &coordinationv1.Lease{}
	poll(t, 2*time.Minute, "the first provider did not take the lease", func(ctx context.Context) (bool, error) {
		err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "stashplane-provider"}, lease)
		return err == nil && lease.Spec.HolderIdentity != nil, nil
	})
	firstHolder := *lease.Spec.HolderIdentity
	standby := providerProcess(t, c, flags...)
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	storageDir, data := seedAppBackup(t, kube, 2000, 23)

	first := firstSession(t, kube)
	pod := backupPod(t, kube, first.Name)
	kill(t, leader, "(the leader) while backup pod "+pod+" runs")
	poll(t, 4*time.Minute, "the standby provider did not finish the session", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, first.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	if !standby.Running() {
		t.Fatal("the standby provider exited")
	}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "stashplane-provider"}, lease); err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h == nil || *h == firstHolder {
		t.Fatalf("the lease is still held by the killed provider %q", firstHolder)
	}
	snapshotRestoresSource(t, kube, storageDir, data, "app-"+first.Name)
	t.Logf("checked: lease moved from %q to %q, session Succeeded, snapshot restores 2000 equal files, restic check clean", firstHolder, *lease.Spec.HolderIdentity)
}

// The backup Job's pod is SIGKILLed once restic holds its lock, so the lock
// stays behind. The run ends (retried or failed, never Succeeded without
// data), the next run removes the dead pod's lock and succeeds, and restic
// finds the repository clean.
func TestBackupPodKilled(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	storageDir, data := seedAppBackup(t, kube, 2000, 29)
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))

	first := firstSession(t, kube)
	pod := backupPod(t, kube, first.Name)
	pgid := podProcessGroupWith(t, pod, "backup")
	lock := stopWhenLocked(t, pgid, repoDir)
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed backup pod %s (process group %d, SIGKILL) holding restic lock %s", pod, pgid, lock)

	var phase corev1alpha1.BackupSessionPhase
	poll(t, 5*time.Minute, "the run whose pod was killed did not end", func(ctx context.Context) (bool, error) {
		phase = sessionPhase(ctx, kube, first.Name)
		return done(phase), nil
	})
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-" + first.Name}, snap); err != nil {
		t.Fatal(err)
	}
	comp := snap.Status.Components[storagev1alpha1.ComponentDump]
	if snap.Status.Phase == storagev1alpha1.SnapshotSucceeded && (len(comp.ResticStats) != 1 || comp.ResticStats[0].Summary == nil) {
		t.Fatalf("snapshot %s is Succeeded without a restic snapshot: %+v", snap.Name, comp)
	}
	t.Logf("the run whose pod was killed ended %s, its Snapshot %s", phase, snap.Status.Phase)

	vt := &verificationTest{t: t, kube: kube}
	bc := &corev1alpha1.BackupConfiguration{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-backup"}, bc); err != nil {
		t.Fatal(err)
	}
	next := vt.backup(bc)
	poll(t, 4*time.Minute, "the next run did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, next.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	if slices.Contains(repoFiles(t, filepath.Join(repoDir, "locks")), lock) {
		t.Errorf("the killed pod's lock %s is still there", lock)
	}
	hostRestic(t, repoDir, "check")
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-" + next.Name}, snap); err != nil {
		t.Fatal(err)
	}
	comp = snap.Status.Components[storagev1alpha1.ComponentDump]
	restored := t.TempDir()
	hostRestic(t, repoDir, "restore", comp.ResticStats[0].Summary.ID, "--target", restored)
	if diff := cmp.Diff(digest(t, data), digest(t, filepath.Join(restored, "var/lib/app"))); diff != "" {
		t.Errorf("the next run's Snapshot: -backed up +restored:\n%s", diff)
	}
	t.Logf("checked: next run %s Succeeded, dead lock gone, restic check clean, 2000 files restore equal", next.Name)
}

// The API server is stopped and started again while a backup's agent runs
// (as in a control-plane upgrade): the provider, the node and the agent
// reconnect, the session and its Snapshot succeed, and the Snapshot holds
// the data.
func TestAPIServerRestartedDuringBackup(t *testing.T) {
	t.Parallel()
	kube, c := clusterWithCRDs(t)
	providerProcess(t, c)
	defer restoreLogsOnFailure(t, kube, c.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	storageDir, data := seedAppBackup(t, kube, 2000, 31)
	first := firstSession(t, kube)
	pod := backupPod(t, kube, first.Name)
	start := time.Now()
	if err := c.RestartAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted the API server (%s) while backup pod %s runs", time.Since(start).Round(time.Millisecond), pod)
	poll(t, 4*time.Minute, "the session did not succeed after the API server's restart", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, first.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	snapshotRestoresSource(t, kube, storageDir, data, "app-"+first.Name)
	t.Logf("checked: session Succeeded, snapshot restores 2000 equal files, restic check clean")
}

// snapshotRestoresSource checks that the Snapshot name of the seed flow
// Succeeded with one restic snapshot of its component, that restic finds
// the repository clean, and that it restores files equal to data.
func snapshotRestoresSource(t *testing.T, kube client.Client, storageDir, data, name string) {
	t.Helper()
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, snap); err != nil {
		t.Fatal(err)
	}
	comp := snap.Status.Components[storagev1alpha1.ComponentDump]
	if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded || len(comp.ResticStats) != 1 || comp.ResticStats[0].Summary == nil {
		t.Fatalf("snapshot %s: %s, component %+v", snap.Name, snap.Status.Phase, comp)
	}
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	hostRestic(t, repoDir, "check")
	restored := t.TempDir()
	hostRestic(t, repoDir, "restore", comp.ResticStats[0].Summary.ID, "--target", restored)
	if diff := cmp.Diff(digest(t, data), digest(t, filepath.Join(restored, "var/lib/app"))); diff != "" {
		t.Errorf("snapshot %s: -backed up +restored:\n%s", snap.Name, diff)
	}
}
