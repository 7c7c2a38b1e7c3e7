package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/controllers/backupstorage"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
	"github.com/stashplane/stashplane/internal/storagekind"
)

// The BackupStorage controller, against a real API server and an S3
// server: a WipeOut BackupStorage deleted while a backup writes into one
// of its Repositories stays, with its data, and says why in its Synced
// condition and a warning event; once the backup has finished it is wiped
// out and goes.
func TestBackupStorageWipeOutWaitsForRuns(t *testing.T) {
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "wipe")
	runController(t, func(mgr ctrl.Manager) error {
		opener := &storagekind.Opener{Client: mgr.GetClient()}
		return backupstorage.Setup(mgr, backupstorage.Options{Log: mgr.GetLogger(), Opener: opener, Reason: storagekind.Classify, PollInterval: time.Second})
	})
	ctx := testContext(t)
	const ns = testNamespace
	bs, repo, snap := s3Chain(t, s3, "wipe", "wipe-while-busy", "wipe-app", storagev1alpha1.DeletionPolicyWipeOut)
	createAll(ctx, t, s3Secret(s3, "wipe-s3"), bs, repo, snap)
	snap.Status.Phase = storagev1alpha1.SnapshotRunning
	if err := kube.Status().Update(ctx, snap); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the storage did not become Ready", func(ctx context.Context) (bool, string) {
		err := kube.Get(ctx, client.ObjectKeyFromObject(bs), bs)
		return err == nil && bs.Status.Phase == storagev1alpha1.BackupStorageReady, string(bs.Status.Phase)
	})
	data := filepath.Join(s3.Dir, "wipe", "stash", "app", "repository", "v1", "nightly", "dump", "config")
	if err := os.MkdirAll(filepath.Dir(data), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(data, []byte("restic config"), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := kube.Delete(ctx, bs); err != nil {
		t.Fatal(err)
	}
	const why = `repository default/wipe-app: the backup of snapshot default/wipe-app-1 is Running`
	eventually(t, 30*time.Second, "the deleted storage does not say the backup holds it", func(ctx context.Context) (bool, string) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(bs), bs); err != nil {
			return false, err.Error()
		}
		c := bs.GetCondition(xpv2.TypeSynced)
		return c.Status == corev1.ConditionFalse && strings.Contains(c.Message, why), c.Message
	})
	eventually(t, 30*time.Second, "no warning event says why the storage waits", func(ctx context.Context) (bool, string) {
		events := &corev1.EventList{}
		if err := kube.List(ctx, events, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range events.Items {
			if e.InvolvedObject.Name == bs.Name && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, why) {
				return true, ""
			}
		}
		return false, "no event"
	})
	// A few more reconciles remove nothing.
	time.Sleep(3 * time.Second)
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("the storage's data went while a backup wrote into it: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s3.Dir, "wipe", "stash", layout.MetadataKey)); err != nil {
		t.Fatalf("the storage's metadata.yaml went while a backup wrote into it: %v", err)
	}

	snap.Status.Phase = storagev1alpha1.SnapshotSucceeded
	if err := kube.Status().Update(ctx, snap); err != nil {
		t.Fatal(err)
	}
	// The controller watches the runs: the data goes as soon as the backup
	// has finished, not at the next retry of a backoff grown while it
	// waited; the object goes at the managed reconciler's next pass.
	eventually(t, 15*time.Second, "the storage's data was not wiped out once the backup finished", func(context.Context) (bool, string) {
		_, err := os.Stat(data)
		return os.IsNotExist(err), fmt.Sprintf("%v", err)
	})
	eventually(t, 3*time.Minute, "the wiped out storage did not go", func(ctx context.Context) (bool, string) {
		got := &storagev1alpha1.BackupStorage{}
		err := kube.Get(ctx, client.ObjectKeyFromObject(bs), got)
		return kerrors.IsNotFound(err), fmt.Sprintf("still there: %+v", got.Status.Conditions)
	})
	if _, err := os.Stat(filepath.Join(s3.Dir, "wipe", "stash", layout.MetadataKey)); !os.IsNotExist(err) {
		t.Errorf("the storage's metadata.yaml is still there after its WipeOut: %v", err)
	}
}

// s3Chain is a BackupStorage in the S3 server's bucket (its Secret named
// <bucket>-s3), a Repository in it and a Snapshot of that Repository.
func s3Chain(t *testing.T, s3 *servers.S3, bucket, storage, repository string, policy storagev1alpha1.DeletionPolicy) (*storagev1alpha1.BackupStorage, *storagev1alpha1.Repository, *storagev1alpha1.Snapshot) {
	t.Helper()
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Name: storage, Namespace: testNamespace},
		Spec: storagev1alpha1.BackupStorageSpec{DeletionPolicy: policy, Storage: storagev1alpha1.Backend{
			Provider: storagev1alpha1.ProviderS3,
			S3:       &storagev1alpha1.S3Spec{Endpoint: s3.Endpoint, Bucket: bucket, Prefix: "stash", Region: "us-east-1", SecretName: bucket + "-s3"},
		}},
	}
	repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: repository, Namespace: testNamespace},
		Spec: storagev1alpha1.RepositorySpec{Path: "app", StorageRef: storagev1alpha1.ObjectReference{Name: bs.Name},
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"}}}
	snap := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: repository + "-1", Namespace: testNamespace, Labels: map[string]string{storagev1alpha1.LabelRepository: repo.Name}},
		Spec: storagev1alpha1.SnapshotSpec{Repository: repo.Name, Session: "nightly"}}
	return bs, repo, snap
}

// s3Secret holds the S3 server's credentials.
func s3Secret(s3 *servers.S3, name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace}, Data: map[string][]byte{
		storagev1alpha1.SecretKeyAWSAccessKeyID: []byte(s3.AccessKey), storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(s3.SecretKey)}}
}

// createAll creates the objects in order.
func createAll(ctx context.Context, t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}
