package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
)

// A WipeOut Snapshot deleted while a restore reads the same restic
// repository with restic check --read-data-subset (as every verification
// with readDataSubset does, taking no restic lock) keeps its restic
// snapshot until the restore has ended, saying so in its Synced
// condition: the check never finds a snapshot it listed gone, and the
// restore succeeds. Then the restic snapshot is forgotten and restic's
// check passes.
func TestForgetWaitsForVerification(t *testing.T) {
	t.Parallel()
	kube, _ := withProviderCluster(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	storageDir := storageDir(t)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Sessions[0].Repositories[0].DeletionPolicy = corev1alpha1.RepositoryDeletionPolicyWipeOut
	// No RetentionPolicy: every Snapshot stays until deleted.
	startRetention(t, kube, bc, localStorage("shared", "default", storageDir, nil))
	first := appSnapshots(t, kube)
	if len(first) != 1 {
		t.Fatalf("after the first backup the Snapshots are %v, want one", first)
	}
	// 48 MiB of random data make the restore's check and restore last
	// seconds.
	writeRandom(t, filepath.Join(appData(t, kube), "big.bin"), 48<<20)
	second := retentionRun(t, kube, bc, time.Now())
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	forgotten := resticIDsOf(t, kube, first)
	defer func() {
		// A restic lock left in the repository holds the forget back.
		if locks, err := os.ReadDir(filepath.Join(repoDir, "locks")); t.Failed() && err == nil {
			for _, l := range locks {
				if fi, err := l.Info(); err == nil {
					t.Logf("restic lock %s written %s", l.Name(), fi.ModTime().Format(time.RFC3339Nano))
				}
			}
		}
	}()

	if err := kube.Create(ctx, appWithHostDir("app-restored", t.TempDir())); err != nil {
		t.Fatal(err)
	}
	rs := restoreSession("verify-second", "app-restored", second, "")
	rs.Spec.ReadDataSubset = "100%"
	if err := kube.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the restore did not start", func(ctx context.Context) (bool, error) {
		err := kube.Get(ctx, client.ObjectKeyFromObject(rs), rs)
		return err == nil && rs.Status.Phase == corev1alpha1.RestoreRunning, nil
	})
	old := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: first[0]}, old); err != nil {
		t.Fatal(err)
	}
	if err := kube.Delete(ctx, old); err != nil {
		t.Fatal(err)
	}
	// Until the restore has ended the Snapshot stays, and says why.
	var said string
	poll(t, 3*time.Minute, "the restore did not finish", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(rs), rs); err != nil {
			return false, nil
		}
		finished := rs.Status.Phase == corev1alpha1.RestoreSucceeded || rs.Status.Phase == corev1alpha1.RestoreFailed
		err := kube.Get(ctx, client.ObjectKeyFromObject(old), old)
		switch {
		case kerrors.IsNotFound(err) && !finished:
			t.Fatalf("snapshot %s was removed while restore %s (phase %s) read the restic repository", old.Name, rs.Name, rs.Status.Phase)
		case err == nil:
			if m := old.GetCondition(xpv2.TypeSynced).Message; strings.Contains(m, "restoresession default/"+rs.Name) {
				said = m
			}
		}
		return finished, nil
	})
	if rs.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("the restore that read the data while a Snapshot was deleted ended %s: %+v", rs.Status.Phase, rs.Status.Conditions)
	}
	if said == "" {
		t.Errorf("snapshot %s never said it waits for restoresession %s", old.Name, rs.Name)
	}
	t.Logf("while the restore ran the Snapshot said: %s", said)
	poll(t, 3*time.Minute, "the Snapshot was not removed once the restore ended", func(ctx context.Context) (bool, error) {
		return kerrors.IsNotFound(kube.Get(ctx, client.ObjectKeyFromObject(old), old)), nil
	})
	if left := resticIDs(t, repoDir); slices.Contains(left, forgotten[0]) {
		t.Errorf("restic snapshot %s of the removed Snapshot is still in the repository: %v", forgotten[0], left)
	}
	if diff := cmp.Diff(resticIDsOf(t, kube, []string{second}), resticIDs(t, repoDir)); diff != "" {
		t.Errorf("restic snapshots: -of the kept Snapshot +in the repository:\n%s", diff)
	}
	hostRestic(t, repoDir, "check")
}
