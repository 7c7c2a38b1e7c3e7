package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A namespace whose ResourceQuota allows no Jobs: its backup fails within
// its timeout, its Snapshot saying why, rather than waiting for ever; once
// the quota goes, the next run succeeds.
func TestQuotaRefusesJobs(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-jobs", Namespace: "default"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/jobs.batch": resource.MustParse("0")}},
	}
	if err := kube.Create(ctx, quota); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the quota was not counted", func(ctx context.Context) (bool, error) {
		err := kube.Get(ctx, client.ObjectKeyFromObject(quota), quota)
		return err == nil && quota.Status.Hard != nil, nil
	})
	start := time.Now()
	seedAppBackup(t, kube, 5, 23, func(_ *appsv1.Deployment, bc *corev1alpha1.BackupConfiguration) {
		bc.Spec.Sessions[0].BackupTimeout = &metav1.Duration{Duration: 30 * time.Second}
	})
	first := &corev1alpha1.BackupSession{}
	poll(t, 3*time.Minute, "the backup refused its Jobs did not end", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		*first = list.Items[0]
		return done(first.Status.Phase), nil
	})
	took := time.Since(start)
	if first.Status.Phase != corev1alpha1.BackupSessionFailed {
		t.Fatalf("a backup whose Jobs the quota refuses is %s", first.Status.Phase)
	}
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-" + first.Name}, snap); err != nil {
		t.Fatal(err)
	}
	c := snap.GetCondition(storagev1alpha1.TypeBackupIncomplete)
	t.Logf("the refused backup ended after %s: %s: %s", took.Round(time.Second), c.Reason, c.Message)
	if snap.Status.Phase != storagev1alpha1.SnapshotFailed || !strings.Contains(c.Message, "quota") {
		t.Errorf("the Snapshot of the refused backup is %s (%s: %q), want Failed naming the quota", snap.Status.Phase, c.Reason, c.Message)
	}

	if err := kube.Delete(ctx, quota); err != nil {
		t.Fatal(err)
	}
	second := runAgain(t, kube, func(*corev1alpha1.BackupConfiguration) {})
	if second.Status.Phase != corev1alpha1.BackupSessionSucceeded {
		t.Errorf("the backup after the quota went is %s", second.Status.Phase)
	}
}
