package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/trigger"
)

// sessionPhase returns a BackupSession's phase.
func sessionPhase(ctx context.Context, kube client.Client, name string) corev1alpha1.BackupSessionPhase {
	bs := &corev1alpha1.BackupSession{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, bs); err != nil {
		return ""
	}
	return bs.Status.Phase
}

// seedAppBackup installs the built-in addons and creates what the seed flow
// backs up: a local BackupStorage, the repository password, a Deployment
// "app" whose volume holds files generated from seed, and its
// BackupConfiguration, whose first backup starts at once. mods change the
// Deployment and the configuration before they are created. It returns the
// storage's and the data's host directories.
func seedAppBackup(t *testing.T, kube client.Client, files int, seed uint64, mods ...func(*appsv1.Deployment, *corev1alpha1.BackupConfiguration)) (string, string) {
	t.Helper()
	return seedAppBackupWith(t, kube, files, seed, configuration(`{"paths": ["/var/lib/app"]}`), mods...)
}

// firstSnapshot waits for the seed's first backup to succeed and names
// its Snapshot, the only one in namespace default.
func firstSnapshot(t *testing.T, kube client.Client) string {
	t.Helper()
	var snap string
	poll(t, 3*time.Minute, "the first backup did not succeed", func(ctx context.Context) (bool, error) {
		list := &storagev1alpha1.SnapshotList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) != 1 {
			return false, nil
		}
		snap = list.Items[0].Name
		return list.Items[0].Status.Phase == storagev1alpha1.SnapshotSucceeded, nil
	})
	return snap
}

// seedAppBackupWith is seedAppBackup with the BackupConfiguration bc.
func seedAppBackupWith(t *testing.T, kube client.Client, files int, seed uint64, bc *corev1alpha1.BackupConfiguration, mods ...func(*appsv1.Deployment, *corev1alpha1.BackupConfiguration)) (string, string) {
	t.Helper()
	return seedAppBackupIn(t, kube, storageDir(t), files, seed, bc, mods...)
}

// seedAppBackupIn is seedAppBackupWith on the storage directory storageDir,
// which the test may have prepared.
func seedAppBackupIn(t *testing.T, kube client.Client, storageDir string, files int, seed uint64, bc *corev1alpha1.BackupConfiguration, mods ...func(*appsv1.Deployment, *corev1alpha1.BackupConfiguration)) (string, string) {
	t.Helper()
	ctx := context.Background()
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	generate(t, data, files, seed)
	app := deployment("app")
	app.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/app"}}
	app.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: data}}}}
	for _, m := range mods {
		m(app, bc)
	}
	for _, o := range []client.Object{
		localStorage("shared", "default", storageDir, nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		app,
		bc,
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return storageDir, data
}

// The seed flow, as a user runs it: a local BackupStorage writes
// metadata.yaml; a BackupConfiguration for a Deployment composes its
// Repository (repository.yaml) and CronJob and starts a first backup; the
// BackupSession composes a Snapshot and a Job rendered from the built-in
// workload-addon; the Job runs the agent on the process node, which backs
// the Deployment's volume up with restic and reports its component; the
// Snapshot and the session succeed. Plain restic restores identical bytes,
// and a second run is incremental.
func TestBackupEndToEnd(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	storageDir, data := seedAppBackup(t, kube, 200, 7)
	var first string
	poll(t, 3*time.Minute, "the first backup did not succeed", func(ctx context.Context) (bool, error) {
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
	if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded || comp.Phase != storagev1alpha1.ComponentSucceeded || len(comp.ResticStats) == 0 {
		t.Fatalf("snapshot %s: phase %s, component %+v", snap.Name, snap.Status.Phase, comp)
	}
	for _, key := range []string{layout.MetadataKey, layout.RepositoryKey("default/app"), layout.SnapshotKey("default/app", snap.Name)} {
		if _, err := os.Stat(filepath.Join(storageDir, "backups", key)); err != nil {
			t.Errorf("%s is not in the storage: %v", key, err)
		}
	}

	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	restored := t.TempDir()
	hostRestic(t, repoDir, "restore", comp.ResticStats[0].Summary.ID, "--target", restored)
	if diff := cmp.Diff(digest(t, data), digest(t, filepath.Join(restored, "var/lib/app"))); diff != "" {
		t.Errorf("restic restore: -backed up +restored:\n%s", diff)
	}

	// The run's Jobs could write its Snapshot's status while it ran; once
	// it ended, nothing running as the configuration's account can.
	agentCfg := rest.CopyConfig(cluster.Config())
	agentCfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:default:" + naming.ConfigurationServiceAccount("app-backup")}
	agent, err := client.New(agentCfg, client.Options{Scheme: kube.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the ended run's report grant was not revoked", func(ctx context.Context) (bool, error) {
		own := snap.DeepCopy()
		own.Status.Size = "1 TiB"
		err := agent.Status().Update(ctx, own)
		if err == nil {
			return false, fmt.Errorf("the configuration's account changed the status of snapshot %s after its run ended", snap.Name)
		}
		return kerrors.IsForbidden(err), nil
	})
	if err := agent.Get(ctx, client.ObjectKeyFromObject(snap), &storagev1alpha1.Snapshot{}); err != nil {
		t.Errorf("the configuration's account cannot read snapshot %s: %v", snap.Name, err)
	}
	t.Logf("checked: after run %s ended, its account may read but not write snapshot %s", first, snap.Name)

	// A second run, after a small change, adds little.
	if err := os.WriteFile(filepath.Join(data, "new.txt"), []byte("a small change\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bc := &corev1alpha1.BackupConfiguration{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-backup"}, bc); err != nil {
		t.Fatal(err)
	}
	second, err := trigger.Create(ctx, kube, bc, "nightly", time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 3*time.Minute, "the second backup did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, second.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	var snaps []resticSnapshot
	if err := json.Unmarshal(hostRestic(t, repoDir, "snapshots", "--json"), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 {
		t.Fatalf("restic lists %d snapshots, want 2", len(snaps))
	}
	if s := snaps[1].Summary; s.FilesNew != 1 || s.DataAdded > 64<<10 {
		t.Errorf("the second backup is not incremental: %+v", s)
	}
	repo := &storagev1alpha1.Repository{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app"}, repo); err != nil {
		t.Fatal(err)
	}
	if got := ptr.Deref(repo.Status.SnapshotCount, 0); got != 2 {
		t.Errorf("repository counts %d snapshots, want 2", got)
	}

	// A paused repository takes no new backup: the run is skipped.
	update(t, kube, repo, func() { repo.Spec.Paused = true })
	third, err := trigger.Create(ctx, kube, bc, "nightly", time.Now().Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the run of a paused repository was not skipped", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, third.Name) == corev1alpha1.BackupSessionSkipped, nil
	})
}
