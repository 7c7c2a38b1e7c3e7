package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A Snapshot is recorded in its repository's storage as soon as it exists,
// its phase follows the components its Jobs report, its record is rewritten
// when the phase changes, and its Repository's status counts it.
func TestSnapshotRecord(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	host := storageDir(t)
	bs := localStorage("shared", "default", host, nil)
	if err := kube.Create(ctx, bs); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"},
		Data:       map[string][]byte{"RESTIC_PASSWORD": []byte("s3cret-password")},
	}); err != nil {
		t.Fatal(err)
	}
	repo := repository("app", "default", "default/app", storagev1alpha1.DeletionPolicyDelete)
	if err := kube.Create(ctx, repo); err != nil {
		t.Fatal(err)
	}
	waitRepoReason(t, kube, "default", "app", corev1.ConditionTrue, string(storagev1alpha1.ReasonRepositoryInitializationSucceeded))

	snap := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "app-nightly-1767225600", Namespace: "default",
			Labels: map[string]string{storagev1alpha1.LabelRepository: "app"}},
		Spec: storagev1alpha1.SnapshotSpec{
			SnapshotID: "01JH0000000000000000000000", Type: storagev1alpha1.SnapshotFullBackup,
			Repository: "app", Session: "nightly", BackupSession: "app-nightly-1767225600", Version: "v1",
		},
	}
	if err := kube.Create(ctx, snap); err != nil {
		t.Fatal(err)
	}
	recordPath := filepath.Join(host, "backups", "default", "app", "snapshots", snap.Name+".yaml")
	readRecord := func() *storagev1alpha1.Snapshot {
		b, err := os.ReadFile(recordPath)
		if err != nil {
			return nil
		}
		r := &storagev1alpha1.Snapshot{}
		if yaml.Unmarshal(b, r) != nil {
			return nil
		}
		return r
	}
	poll(t, 2*time.Minute, "the snapshot record was not written as Pending", func(context.Context) (bool, error) {
		r := readRecord()
		return r != nil && r.Status.Phase == storagev1alpha1.SnapshotPending, nil
	})

	// The backup Job reports its component, as the agent does. The agent
	// applies it server-side; this test updates, so when the provider wrote
	// the status in between, the update is retried on a fresh read.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got := &storagev1alpha1.Snapshot{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(snap), got); err != nil {
			return err
		}
		got.Status.TotalComponents = 1
		got.Status.Components = map[string]storagev1alpha1.Component{"dump": {
			Path: "default/app/repository/v1/nightly/dump", Phase: storagev1alpha1.ComponentSucceeded,
			Size: "12 MiB", Integrity: ptr.To(true), Driver: storagev1alpha1.DriverRestic, Duration: "3s",
		}}
		return kube.Status().Update(ctx, got)
	}); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the snapshot did not become Succeeded in the cluster and in its record", func(ctx context.Context) (bool, error) {
		s := &storagev1alpha1.Snapshot{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(snap), s); err != nil {
			return false, nil
		}
		r := readRecord()
		return s.Status.Phase == storagev1alpha1.SnapshotSucceeded && s.Status.Size == "12 MiB" &&
			r != nil && r.Status.Phase == storagev1alpha1.SnapshotSucceeded, nil
	})
	poll(t, 2*time.Minute, "the repository does not count the snapshot", func(ctx context.Context) (bool, error) {
		r := &storagev1alpha1.Repository{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app"}, r); err != nil {
			return false, nil
		}
		return ptr.Deref(r.Status.SnapshotCount, 0) == 1 && r.Status.LastBackupTime != nil && r.Status.Size == "12 MiB" &&
			len(r.Status.RecentSnapshots) == 1 && r.Status.RecentSnapshots[0].Phase == storagev1alpha1.SnapshotSucceeded, nil
	})
	if b, _ := os.ReadFile(recordPath); strings.Contains(string(b), "s3cret-password") {
		t.Errorf("the snapshot record holds the repository password")
	}
}
