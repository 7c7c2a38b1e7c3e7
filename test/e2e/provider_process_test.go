package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
)

// The provider runs as a process of its own (`stashplane provider`), is
// killed outright while a backup's Job runs, and is started again: the Job
// finishes without it, and the restarted provider takes the session and its
// Snapshot to Succeeded from what it finds in the cluster.
func TestProviderKilledDuringBackup(t *testing.T) {
	t.Parallel()
	kube, c := clusterWithCRDs(t)
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	proc, err := c.StartProvider(filepath.Join(bin, "stashplane"), "--poll-interval", "5s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proc.Stop)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	seedAppBackup(t, kube, 2000, 11)

	// Kill the provider as soon as the backup's agent runs.
	var job batchv1.Job
	poll(t, 3*time.Minute, "no backup Job started running", func(ctx context.Context) (bool, error) {
		pods := &corev1.PodList{}
		if err := kube.List(ctx, pods, client.InNamespace("default"), client.HasLabels{"job-name"}); err != nil {
			return false, nil
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				return kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: p.Labels["job-name"]}, &job) == nil, nil
			}
		}
		return false, nil
	})
	rss, err := proc.RSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("provider process %d: %d MiB resident before the kill", proc.Pid(), rss>>20)
	proc.Kill()
	if proc.Running() {
		t.Fatal("the provider still runs after SIGKILL")
	}

	// The Job finishes on its own; nobody records the session meanwhile.
	poll(t, 3*time.Minute, "the backup Job did not finish without the provider", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(&job), &job); err != nil {
			return false, nil
		}
		return jobCondition(&job) != "", nil
	})
	if got := jobCondition(&job); got != batchv1.JobComplete {
		t.Fatalf("the backup Job ended %q without the provider, want Complete", got)
	}
	sessions := &corev1alpha1.BackupSessionList{}
	if err := kube.List(ctx, sessions, client.InNamespace("default")); err != nil || len(sessions.Items) != 1 {
		t.Fatalf("want one BackupSession, got %d (%v)", len(sessions.Items), err)
	}
	session := sessions.Items[0].Name
	if phase := sessionPhase(ctx, kube, session); phase == corev1alpha1.BackupSessionSucceeded {
		t.Fatalf("the session is %s while no provider runs", phase)
	}

	if err := proc.Restart(); err != nil {
		t.Fatal(err)
	}
	poll(t, 3*time.Minute, "the restarted provider did not finish the session", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, session) == corev1alpha1.BackupSessionSucceeded, nil
	})
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-" + session}, snap); err != nil {
		t.Fatal(err)
	}
	if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Errorf("snapshot %s is %s after the restart, want Succeeded", snap.Name, snap.Status.Phase)
	}
	if rss, err = proc.RSS(); err == nil {
		t.Logf("restarted provider process %d: %d MiB resident", proc.Pid(), rss>>20)
	}
}
