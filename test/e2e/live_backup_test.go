package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/verify"
)

// TestVerifyLiveBackup backs up a source that gains files all through the
// backup, as a database writing new segments does, and verifies the
// Snapshot by restoring it into an empty claim: the content manifest
// lists what restic stored, files created during the run included, so
// the restore has no Extra file and the Snapshot is Verified.
func TestVerifyLiveBackup(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	storageDir, data := storageDir(t), t.TempDir()
	const initial = 40
	generate(t, data, initial, 29)

	// The writer adds a file every few milliseconds until the backup ends.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		dir := filepath.Join(data, "live")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Error(err)
			return
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			content := []byte(fmt.Sprintf("segment %d written during the backup\n", i))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("segment-%06d", i)), content, 0o644); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	stopWriter := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriter()

	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	for _, o := range []client.Object{
		localStorage("shared", "default", storageDir, nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		appWithHostDir("app", data),
		restoreOnlyVerifier(),
		bc,
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var session string
	poll(t, 3*time.Minute, "the backup of the live source did not succeed", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		session = list.Items[0].Name
		return list.Items[0].Status.Phase == corev1alpha1.BackupSessionSucceeded, nil
	})
	stopWriter()

	vt := &verificationTest{t: t, kube: kube}
	snap := "app-" + session
	s := verify.Session("default", "app-verifier", vt.snapshot(snap), time.Now())
	if err := kube.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	got := vt.finished(s.Name)
	c := got.GetCondition(corev1alpha1.TypeBackupVerified)
	if got.Status.Phase != corev1alpha1.VerificationSessionSucceeded || len(got.Status.Differences) != 0 {
		t.Fatalf("session %s: phase %s, BackupVerified %s %s (%s), differences %+v; want Succeeded without differences",
			s.Name, got.Status.Phase, c.Status, c.Reason, c.Message, got.Status.Differences)
	}
	// Files the backup's agent found before restic ran are not enough: some
	// written while it ran are in the manifest and were compared.
	if got.Status.FilesChecked <= initial {
		t.Errorf("session %s checked %d files, want more than the %d the source held before the writer started", s.Name, got.Status.FilesChecked, initial)
	}
	t.Logf("session %s verified %d files", s.Name, got.Status.FilesChecked)
	if v := vt.snapshot(snap).Status.VerificationStatus; v != storagev1alpha1.SnapshotVerified {
		t.Errorf("snapshot %s: verification %s, want Verified", snap, v)
	}
}
