package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/trigger"
)

// With concurrencyPolicy Replace, a backup started by hand while an older
// run hangs (its processes stopped once restic holds its lock) ends the
// older run: its Job goes with its pod, its Snapshot fails with
// ReplacedByNewerRun, the run fails and is not retried. The new run waits
// for the old pod to be gone, removes the restic lock it left (restic
// would deem it stale only after 30 minutes) and succeeds; no lock is left
// and restic's check passes.
func TestReplaceEndsRunningBackup(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	storageDir := storageDir(t)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Sessions[0].Scheduler.ConcurrencyPolicy = corev1alpha1.ConcurrencyReplace
	bc.Spec.Sessions[0].RetryConfig = &corev1alpha1.RetryConfig{MaxRetry: 2}
	bc.Spec.Sessions[0].SessionHistoryLimit = 5
	startRetention(t, kube, bc, localStorage("shared", "default", storageDir, nil),
		execTemplate("thaw", `echo ${STASHPLANE_PHASE} > /var/lib/app/thawed-after-${STASHPLANE_SESSION} && echo thawed`),
		execTemplate("notify", `echo notified`))
	// Post hooks, exec'd in the app's pod.
	app := &appsv1.Deployment{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app"}, app); err != nil {
		t.Fatal(err)
	}
	update(t, kube, app, func() { app.Spec.Replicas = ptr.To[int32](1) })
	poll(t, 2*time.Minute, "the app's pod did not become ready", func(ctx context.Context) (bool, error) {
		return kube.Get(ctx, client.ObjectKeyFromObject(app), app) == nil && app.Status.ReadyReplicas == 1, nil
	})
	bc.Spec.Sessions[0].Hooks = &corev1alpha1.BackupHooks{PostBackup: []corev1alpha1.HookInfo{
		hookInfo("thaw", "thaw", corev1alpha1.HookExecuteAlways), hookInfo("notify", "notify", corev1alpha1.HookExecuteOnSuccess)}}
	hooks := bc.Spec.Sessions[0].Hooks
	update(t, kube, bc, func() { bc.Spec.Sessions[0].Hooks = hooks })
	poll(t, time.Minute, "the configuration with hooks did not become Ready", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(bc), bc); err != nil {
			return false, nil
		}
		c := bc.GetCondition(corev1alpha1.TypeValidationPassed)
		return bc.Status.Phase == corev1alpha1.BackupInvokerReady && c.Status == corev1.ConditionTrue && c.ObservedGeneration == bc.Generation, nil
	})
	poll(t, 2*time.Minute, "a run started by the configuration's change did not end", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil {
			return false, nil
		}
		for _, s := range list.Items {
			if p := s.Status.Phase; p != corev1alpha1.BackupSessionSucceeded && p != corev1alpha1.BackupSessionFailed && p != corev1alpha1.BackupSessionSkipped {
				return false, nil
			}
		}
		return true, nil
	})
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	writeRandom(t, filepath.Join(appData(t, kube), "big.bin"), 64<<20)

	// The older run hangs once restic holds its lock.
	old, err := trigger.Create(ctx, kube, bc, "nightly", time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	pod := backupPod(t, kube, old.Name)
	pgid := podProcessGroupWith(t, pod, "backup")
	lock := stopWhenLocked(t, pgid, repoDir)
	t.Logf("stopped backup pod %s holding restic lock %s", pod, lock)

	// A run started by hand replaces it. It is named by what the CLI
	// printed: it may be created in the same second as the older one,
	// whose creation time then equals it.
	triggered := stashplaneJSON[[]struct {
		BackupSession string `json:"backupSession"`
	}](t, cluster.KubeconfigPath(), "trigger", "--namespace", "default", "--configuration", bc.Name, "--session", "nightly", "-o", "json")
	if len(triggered) != 1 || triggered[0].BackupSession == old.Name {
		t.Fatalf("stashplane trigger started %+v, want one run other than %s", triggered, old.Name)
	}
	newer := triggered[0].BackupSession
	poll(t, 30*time.Second, "the new run did not appear", func(ctx context.Context) (bool, error) {
		return kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: newer}, &corev1alpha1.BackupSession{}) == nil, nil
	})
	sawDeadLock := false
	poll(t, 4*time.Minute, "the new run did not succeed", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: pod}, &corev1.Pod{}); kerrors.IsNotFound(err) {
			if _, err := os.Stat(filepath.Join(repoDir, "locks", lock)); err == nil {
				sawDeadLock = true
			}
		}
		return sessionPhase(ctx, kube, newer) == corev1alpha1.BackupSessionSucceeded, nil
	})
	t.Logf("the lock outlived its pod until the new run's agent came: %v", sawDeadLock)

	// The older run failed, replaced, and made no retry.
	got := &corev1alpha1.BackupSession{}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(old), got); err != nil {
		t.Fatal(err)
	}
	if c := got.GetCondition(corev1alpha1.TypeBackupReplaced); got.Status.Phase != corev1alpha1.BackupSessionFailed || c.Status != corev1.ConditionTrue {
		t.Errorf("the replaced run is %s with BackupReplaced %+v, want Failed and True", got.Status.Phase, c)
	}
	// Its Always post hook ran and learnt the run failed; its OnSuccess
	// one did not run.
	if got := readTrimmed(t, filepath.Join(appData(t, kube), "thawed-after-"+old.Name)); got != "Failed" {
		t.Errorf("the Always post hook of the replaced run was told %q, want Failed", got)
	}
	for _, h := range got.Status.Hooks.PostHooks {
		if h.Name == "notify" && h.Phase == corev1alpha1.HookSucceeded {
			t.Errorf("the OnSuccess post hook ran after the replaced run: %+v", h)
		}
	}
	t.Logf("post hooks of the replaced run: %+v", hooksSeen(got.Status.Hooks.PostHooks))
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-" + old.Name}, snap); err != nil {
		t.Fatal(err)
	}
	if c := snap.GetCondition(storagev1alpha1.TypeBackupIncomplete); snap.Status.Phase != storagev1alpha1.SnapshotFailed || c.Reason != storagev1alpha1.ReasonReplacedByNewerRun {
		t.Errorf("the replaced run's Snapshot is %s with BackupIncomplete %+v, want Failed with %s", snap.Status.Phase, c, storagev1alpha1.ReasonReplacedByNewerRun)
	}
	jobs := &batchv1.JobList{}
	if err := kube.List(ctx, jobs, client.InNamespace("default"), client.MatchingLabels{corev1alpha1.LabelBackupSession: old.Name}); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 0 {
		t.Errorf("the replaced run still has %d Jobs", len(jobs.Items))
	}
	newSnap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-" + newer}, newSnap); err != nil {
		t.Fatal(err)
	}
	if newSnap.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Errorf("the new run's Snapshot is %s, want Succeeded", newSnap.Status.Phase)
	}
	list := &corev1alpha1.BackupSessionList{}
	if err := kube.List(ctx, list, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		if s.Spec.RetryLeft == 1 {
			t.Errorf("the replaced run was retried by %s", s.Name)
		}
	}
	if locks := repoFiles(t, filepath.Join(repoDir, "locks")); len(locks) != 0 {
		t.Errorf("restic locks left after the new run: %v", locks)
	}
	hostRestic(t, repoDir, "check")
}

// backupPod waits for the pod of the run's backup Job to run.
func backupPod(t *testing.T, kube client.Client, session string) string {
	t.Helper()
	var name string
	poll(t, 2*time.Minute, "the backup Job's pod did not run", func(ctx context.Context) (bool, error) {
		jobs := &batchv1.JobList{}
		if err := kube.List(ctx, jobs, client.InNamespace("default"), client.MatchingLabels{corev1alpha1.LabelBackupSession: session}); err != nil || len(jobs.Items) == 0 {
			return false, nil
		}
		pods := &corev1.PodList{}
		if err := kube.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{batchv1.ControllerUidLabel: string(jobs.Items[0].UID)}); err != nil {
			return false, nil
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				name = p.Name
				return true, nil
			}
		}
		return false, nil
	})
	return name
}

// podProcessGroupWith finds the process group of the pod's process whose
// command line holds marker (the process node runs a container as a local
// process with HOSTNAME set to the pod's name).
func podProcessGroupWith(t *testing.T, pod, marker string) int {
	t.Helper()
	var pgid int
	poll(t, 30*time.Second, "the pod's process was not found", func(context.Context) (bool, error) {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return false, err
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			if err != nil || !bytes.Contains(env, []byte("\x00HOSTNAME="+pod+"\x00")) && !bytes.HasPrefix(env, []byte("HOSTNAME="+pod+"\x00")) {
				continue
			}
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if !bytes.Contains(cmdline, []byte(marker)) {
				continue
			}
			if pgid, err = syscall.Getpgid(pid); err != nil {
				return false, nil
			}
			return true, nil
		}
		return false, nil
	})
	return pgid
}

// stopWhenLocked lets the process group run in slices of 20 ms, stopped
// in between, until the restic repository holds a whole lock, and leaves it
// stopped (SIGSTOP): the run hangs holding the lock. It returns the lock.
func stopWhenLocked(t *testing.T, pgid int, repoDir string) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
			t.Fatalf("the backup ended before restic took its lock: %v", err)
		}
		for _, l := range repoFiles(t, filepath.Join(repoDir, "locks")) {
			// The storage writes a file under a temporary name first
			// (restic's local backend "<id>-tmp-<n>", gocloud's fileblob
			// "<id>.<n>.tmp"): a lock is taken once it has its own.
			if layout.IsResticID(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pgid, syscall.SIGCONT)
			t.Fatal("restic took no lock in 2 minutes")
		}
		if err := syscall.Kill(-pgid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
