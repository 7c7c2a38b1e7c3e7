package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crossplane/crossplane-runtime/v2/pkg/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
)

// A provider killed after it marked a storage record's create pending and
// before it recorded the result leaves the object with
// crossplane.io/external-create-pending and no result. Such a
// BackupStorage and Repository are not wedged: the records are named by
// their objects, so the next look finds or writes them, and both become
// Ready with their records in the storage.
func TestInterruptedCreateDoesNotWedge(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &storagev1alpha1.BackupStorageList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.RepositoryList{})
	host := storageDir(t)
	pending := map[string]string{meta.AnnotationKeyExternalCreatePending: time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}
	bs := localStorage("shared", "default", host, nil)
	bs.Annotations = pending
	repo := repository("app", "default", "app", storagev1alpha1.DeletionPolicyWipeOut)
	repo.Annotations = pending
	if err := kube.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"},
		Data:       map[string][]byte{"RESTIC_PASSWORD": []byte("correct horse battery staple")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, bs); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, repo); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the BackupStorage whose create was left pending did not become Ready", func(ctx context.Context) (bool, error) {
		c, bs := storageCondition(ctx, kube, "default", "shared", storagev1alpha1.TypeBackendInitialized)
		return c.Status == corev1.ConditionTrue && bs.Status.Phase == storagev1alpha1.BackupStorageReady, nil
	})
	waitRepoReason(t, kube, "default", "app", corev1.ConditionTrue, string(storagev1alpha1.ReasonRepositoryInitializationSucceeded))
	for _, key := range []string{layout.MetadataKey, layout.RepositoryKey("app")} {
		if _, err := os.Stat(filepath.Join(host, "backups", key)); err != nil {
			t.Errorf("the record %s was not written: %v", key, err)
		}
	}
}
