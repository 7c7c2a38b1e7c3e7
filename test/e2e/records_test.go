package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
)

// Content manifests are sealed with the repository's password: storage
// holds no file name in the clear, and a manifest moved from one Snapshot
// to another fails the restore that reads it (ManifestInvalid), while the
// Snapshot whose manifest is its own restores and compares as before.
func TestSealedManifests(t *testing.T) {
	t.Parallel()
	kube, _ := withProviderCluster(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	storageDir := storageDir(t)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	startRetention(t, kube, bc, localStorage("shared", "default", storageDir, nil))
	first := appSnapshots(t, kube)
	if len(first) != 1 {
		t.Fatalf("after the first backup the Snapshots are %v, want one", first)
	}
	second := retentionRun(t, kube, bc, time.Now())
	key := func(snapshot string) string {
		return filepath.Join(storageDir, "backups", layout.ManifestKey("default/app", snapshot, storagev1alpha1.ComponentDump))
	}
	sealedFirst, err := os.ReadFile(key(first[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sealedFirst, []byte("age-encryption.org/v1\n")) || bytes.Contains(sealedFirst, []byte("/var/lib/app")) {
		t.Fatalf("the manifest of %s is not sealed: %q", first[0], sealedFirst[:min(len(sealedFirst), 80)])
	}
	// The first Snapshot's manifest, moved onto the second's.
	if err := os.WriteFile(key(second), sealedFirst, 0o644); err != nil {
		t.Fatal(err)
	}
	restore := func(name, snapshot string) *corev1alpha1.RestoreSession {
		t.Helper()
		if err := kube.Create(ctx, appWithHostDir(name, t.TempDir())); err != nil {
			t.Fatal(err)
		}
		rs := restoreSession(name, name, snapshot, "")
		if err := kube.Create(ctx, rs); err != nil {
			t.Fatal(err)
		}
		poll(t, 3*time.Minute, "restore "+name+" did not finish", func(ctx context.Context) (bool, error) {
			err := kube.Get(ctx, client.ObjectKeyFromObject(rs), rs)
			return err == nil && (rs.Status.Phase == corev1alpha1.RestoreSucceeded || rs.Status.Phase == corev1alpha1.RestoreFailed), nil
		})
		return rs
	}
	moved := restore("moved-manifest", second)
	comp := moved.Status.Components[storagev1alpha1.ComponentDump]
	if moved.Status.Phase != corev1alpha1.RestoreFailed || !strings.Contains(comp.Error, "ManifestInvalid") || !strings.Contains(comp.Error, first[0]) {
		t.Errorf("the restore of %s with %s's manifest ended %s, component %+v; want Failed with ManifestInvalid naming %s", second, first[0], moved.Status.Phase, comp, first[0])
	}
	t.Logf("checked: a manifest moved onto another Snapshot fails its restore: %s", comp.Error)
	own := restore("own-manifest", first[0])
	if own.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Errorf("the restore of %s with its own manifest ended %s: %+v", first[0], own.Status.Phase, own.Status.Components)
	}
	t.Logf("checked: the Snapshot with its own sealed manifest restores (%s)", own.Status.Phase)
}
