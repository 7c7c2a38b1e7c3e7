package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

func s3Storage(name, endpoint, bucket string) *storagev1alpha1.BackupStorage {
	return &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: storagev1alpha1.BackupStorageSpec{Storage: storagev1alpha1.Backend{
			Provider: storagev1alpha1.ProviderS3,
			S3:       &storagev1alpha1.S3Spec{Endpoint: endpoint, Bucket: bucket, Prefix: "stashplane", Region: "us-east-1", SecretName: "s3-creds"},
		}},
	}
}

func waitStorageReason(t *testing.T, kube client.Client, name string, ct string, status corev1.ConditionStatus, reason string) {
	t.Helper()
	poll(t, 2*time.Minute, fmt.Sprintf("backupstorage %s: %s did not become %s/%s", name, ct, status, reason), func(ctx context.Context) (bool, error) {
		bs := &storagev1alpha1.BackupStorage{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, bs); err != nil {
			return false, nil
		}
		for _, c := range bs.Status.Conditions {
			if string(c.Type) == ct && c.Status == status && string(c.Reason) == reason {
				return true, nil
			}
		}
		return false, nil
	})
}

// An S3 BackupStorage reports each thing a user can get wrong — a missing
// Secret, wrong credentials, a missing bucket, an unreachable endpoint —
// as a condition reason, writes nothing meanwhile, never shows the secret
// key, and recovers once the cause is fixed without being recreated.
func TestS3BackupStorageFailuresRecover(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "backups")
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &storagev1alpha1.BackupStorageList{})

	for _, bs := range []*storagev1alpha1.BackupStorage{
		s3Storage("s3", s3.Endpoint, "backups"),
		s3Storage("no-bucket", s3.Endpoint, "absent"),
		s3Storage("unreachable", "http://127.0.0.1:1", "backups"),
	} {
		if err := kube.Create(ctx, bs); err != nil {
			t.Fatal(err)
		}
	}
	waitStorageReason(t, kube, "s3", string(storagev1alpha1.TypeBackendSecretFound), corev1.ConditionFalse, string(storagev1alpha1.ReasonBackendSecretNotFound))

	wrong := "wrong-" + s3.SecretKey[:8] + "-key"
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: "default"},
		Data: map[string][]byte{
			storagev1alpha1.SecretKeyAWSAccessKeyID:     []byte(s3.AccessKey),
			storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(wrong),
		},
	}
	if err := kube.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	waitStorageReason(t, kube, "s3", string(storagev1alpha1.TypeBackendInitialized), corev1.ConditionFalse, "PermissionDenied")
	if _, err := os.Stat(filepath.Join(s3.Dir, "backups", "stashplane", layout.MetadataKey)); err == nil {
		t.Errorf("metadata.yaml was written with wrong credentials")
	}

	secret.Data[storagev1alpha1.SecretKeyAWSSecretAccessKey] = []byte(s3.SecretKey)
	if err := kube.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	waitStorageReason(t, kube, "s3", string(storagev1alpha1.TypeBackendInitialized), corev1.ConditionTrue, string(storagev1alpha1.ReasonBackendInitializationSucceeded))
	if _, err := os.Stat(filepath.Join(s3.Dir, "backups", "stashplane", layout.MetadataKey)); err != nil {
		t.Errorf("metadata.yaml is not in the bucket after recovery: %v", err)
	}

	waitStorageReason(t, kube, "unreachable", string(storagev1alpha1.TypeBackendInitialized), corev1.ConditionFalse, "Unreachable")
	waitStorageReason(t, kube, "no-bucket", string(storagev1alpha1.TypeBackendInitialized), corev1.ConditionFalse, "BucketNotFound")
	if _, err := os.Stat(filepath.Join(s3.Dir, "absent")); err == nil {
		t.Errorf("a missing bucket was created")
	}
	s3.CreateBucket(t, "absent")
	waitStorageReason(t, kube, "no-bucket", string(storagev1alpha1.TypeBackendInitialized), corev1.ConditionTrue, string(storagev1alpha1.ReasonBackendInitializationSucceeded))

	// Nothing secret in any status or event.
	list := &storagev1alpha1.BackupStorageList{}
	if err := kube.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	events := &corev1.EventList{}
	if err := kube.List(ctx, events); err != nil {
		t.Fatal(err)
	}
	for _, o := range []any{list, events} {
		b, _ := yaml.Marshal(o)
		for _, s := range []string{s3.SecretKey, wrong} {
			if strings.Contains(string(b), s) {
				t.Errorf("a secret key appears in %T", o)
			}
		}
	}
}
