package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// The seed flow on an S3 server: the backup Job reaches the bucket with the
// credentials mounted from the storage's Secret, and plain restic, pointed
// at the bucket's directory on the server, restores identical bytes.
func TestBackupEndToEndS3(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "backups")
	data := t.TempDir()
	generate(t, data, 120, 11)
	app := deployment("app")
	app.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/app"}}
	app.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: data}}}}
	bs := s3Storage("shared", s3.Endpoint, "backups")
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: "default"}, Data: map[string][]byte{
			storagev1alpha1.SecretKeyAWSAccessKeyID: []byte(s3.AccessKey), storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(s3.SecretKey),
		}},
		bs,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		app,
		configuration(`{"paths": ["/var/lib/app"]}`),
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var first string
	poll(t, 3*time.Minute, "the first backup to S3 did not succeed", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		first = list.Items[0].Name
		return list.Items[0].Status.Phase == corev1alpha1.BackupSessionSucceeded, nil
	})
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-" + first}, snap); err != nil {
		t.Fatal(err)
	}
	comp := snap.Status.Components[storagev1alpha1.ComponentDump]
	if len(comp.ResticStats) == 0 || comp.ResticStats[0].Summary == nil {
		t.Fatalf("the component has no restic summary: %+v", comp)
	}
	// versitygw keeps a bucket as a directory: restic reads it as a local
	// repository, the layout being restic's own.
	repoDir := filepath.Join(s3.Dir, "backups", "stashplane", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	restored := t.TempDir()
	hostRestic(t, repoDir, "restore", comp.ResticStats[0].Summary.ID, "--target", restored)
	if diff := cmp.Diff(digest(t, data), digest(t, filepath.Join(restored, "var/lib/app"))); diff != "" {
		t.Errorf("restic restore from the S3 bucket: -backed up +restored:\n%s", diff)
	}
}
