package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A backup ends while its storage cannot take the Snapshot's record: the
// records' directory is a file, so every read and write of a record fails
// as it would while the storage's endpoint is replaced. The Snapshot and
// its session show no outcome while the record cannot hold it; once the
// storage takes records again, both succeed and the record says so.
func TestSnapshotRecordOutage(t *testing.T) {
	t.Parallel()
	kube, _ := withProviderCluster(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	dir := storageDir(t)
	records := filepath.Join(dir, "backups", "default", "app", "snapshots")
	if err := os.MkdirAll(filepath.Dir(records), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(records, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	seedAppBackupIn(t, kube, dir, 300, 19, configuration(`{"paths": ["/var/lib/app"]}`))

	// The agent reports its component; the Snapshot and the session stay
	// without an outcome for as long as the record cannot be written.
	var snap storagev1alpha1.Snapshot
	var session string
	poll(t, 3*time.Minute, "the backup's agent did not report its component", func(ctx context.Context) (bool, error) {
		list := &storagev1alpha1.SnapshotList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) != 1 {
			return false, nil
		}
		snap = list.Items[0]
		session = snap.Spec.BackupSession
		return snap.Status.Components[storagev1alpha1.ComponentDump].Phase == storagev1alpha1.ComponentSucceeded, nil
	})
	reported := time.Now()
	for time.Since(reported) < 10*time.Second {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(&snap), &snap); err != nil {
			t.Fatal(err)
		}
		if snap.Status.Phase == storagev1alpha1.SnapshotSucceeded || snap.Status.Phase == storagev1alpha1.SnapshotFailed {
			t.Fatalf("snapshot %s is %s while its record cannot be written: %+v", snap.Name, snap.Status.Phase, snap.Status.Conditions)
		}
		if c := snap.GetCondition(storagev1alpha1.TypeSnapshotMetadataUploaded); c.Status == corev1.ConditionTrue {
			t.Fatalf("snapshot %s says its record was written: %+v", snap.Name, c)
		}
		if p := sessionPhase(ctx, kube, session); p != corev1alpha1.BackupSessionRunning && p != "" {
			t.Fatalf("session %s is %s while its Snapshot's record cannot be written", session, p)
		}
		time.Sleep(250 * time.Millisecond)
	}
	c := snap.GetCondition(storagev1alpha1.TypeOutcomeRecorded)
	if c.Status != corev1.ConditionFalse || c.Reason != storagev1alpha1.ReasonRecordPending {
		t.Errorf("snapshot %s, held back, says OutcomeRecorded %s/%s", snap.Name, c.Status, c.Reason)
	}
	t.Logf("10s after the agent reported, snapshot %s is %s; OutcomeRecorded %s/%s: %s", snap.Name, snap.Status.Phase, c.Status, c.Reason, c.Message)

	// The storage takes records again.
	if err := os.Remove(records); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	poll(t, 2*time.Minute, "the session did not succeed once its Snapshot could be recorded", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, session) == corev1alpha1.BackupSessionSucceeded, nil
	})
	t.Logf("session %s Succeeded %s after the storage took records again", session, time.Since(back).Round(time.Second))
	if err := kube.Get(ctx, client.ObjectKeyFromObject(&snap), &snap); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(records, snap.Name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &storagev1alpha1.Snapshot{}
	if err := yaml.Unmarshal(data, rec); err != nil {
		t.Fatal(err)
	}
	if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded || rec.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Errorf("snapshot %s is %s and its record says %s, want both Succeeded", snap.Name, snap.Status.Phase, rec.Status.Phase)
	}
	if c := snap.GetCondition(storagev1alpha1.TypeOutcomeRecorded); c.Status != corev1.ConditionTrue {
		t.Errorf("snapshot %s, recorded, says OutcomeRecorded %s/%s: %s", snap.Name, c.Status, c.Reason, c.Message)
	}
}
