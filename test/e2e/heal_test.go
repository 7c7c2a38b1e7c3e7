package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/verify"
)

// A lost pack is found, named and healed. Two runs each add a file whose
// data lands in a pack of its own; both Snapshots are Verified; storage
// then loses both packs, and one of the two files leaves the source. The
// next backup succeeds (before, every backup failed on the repository's
// check from then on): it names the lost packs, stores again the file the
// source still holds, so the Snapshot that held only that file is Healed,
// loses its verdict and passes a new verification, while the other is
// Lost, VerificationFailed, naming the file whose data is gone. The run
// after that succeeds too.
func TestLostPackHealed(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defaultKeepLast(t, kube, 10)
	storageDir := storageDir(t)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Sessions[0].Repositories[0].BackupVerifier = &storagev1alpha1.ObjectReference{Name: "app-verifier"}
	verifier := verifierWith("app-verifier", `{"mountPath": "/var/lib/app"}`)
	verifier.Spec.SessionHistoryLimit = 5
	startRetention(t, kube, bc, localStorage("shared", "default", storageDir, nil), verifier)
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	start := time.Now()

	// bigPacks lists the data packs over 1 MiB the repository gained since
	// before: the packs of one new file each.
	bigPacks := func(before map[string]int64) []string {
		var out []string
		for p, n := range packs(t, repoDir) {
			if _, old := before[p]; !old && n > 1<<20 {
				out = append(out, p)
			}
		}
		return out
	}
	data := appData(t, kube)
	before := packs(t, repoDir)
	writeRandom(t, filepath.Join(data, "kept.bin"), 3<<20)
	healed := retentionRun(t, kube, bc, start.Add(time.Second))
	writeRandom(t, filepath.Join(data, "gone.bin"), 3<<20)
	lost := retentionRun(t, kube, bc, start.Add(2*time.Second))
	markVerified(t, kube, healed)
	markVerified(t, kube, lost)
	dropped := bigPacks(before)
	if len(dropped) != 2 {
		t.Fatalf("the two runs wrote data packs %v, want one each", dropped)
	}
	var names []string
	for _, p := range dropped {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(p))
	}
	slices.Sort(names)
	t.Logf("storage lost packs %v", names)
	if err := os.Remove(filepath.Join(data, "gone.bin")); err != nil {
		t.Fatal(err)
	}

	finder := retentionRun(t, kube, bc, start.Add(3*time.Second))
	ids := resticIDsOf(t, kube, []string{healed})
	lostIDs := resticIDsOf(t, kube, []string{lost})
	s := vtSnapshot(t, kube, finder)
	h := s.Status.Components[storagev1alpha1.ComponentDump].Healing
	if h == nil {
		t.Fatalf("snapshot %s reports no healing: %+v", finder, s.Status.Components)
	}
	got := slices.Clone(h.MissingPacks)
	slices.Sort(got)
	if !slices.Equal(got, names) || !slices.Equal(h.HealedSnapshots, ids) || len(h.LostSnapshots) != 1 || h.LostSnapshots[0].ID != lostIDs[0] ||
		!slices.ContainsFunc(h.LostSnapshots[0].Files, func(f string) bool { return strings.HasSuffix(f, "gone.bin") }) {
		t.Errorf("snapshot %s healing %+v; want missing packs %v, healed %v, lost %v naming gone.bin", finder, h, names, ids, lostIDs)
	}
	if ptr := s.Status.Integrity; ptr == nil || !*ptr {
		t.Errorf("snapshot %s: integrity %v, want true (its own data is whole)", finder, s.Status.Integrity)
	}

	poll(t, time.Minute, "the damage was not recorded on the Snapshots it concerns", func(ctx context.Context) (bool, error) {
		hs, ls := vtSnapshot(t, kube, healed), vtSnapshot(t, kube, lost)
		return hs.Status.Damage != nil && ls.Status.Damage != nil, nil
	})
	hs, ls := vtSnapshot(t, kube, healed), vtSnapshot(t, kube, lost)
	if d := hs.Status.Damage; d.State != storagev1alpha1.DamageHealed || d.FoundBy != finder || hs.Status.VerificationStatus != storagev1alpha1.SnapshotNotVerified {
		t.Errorf("snapshot %s: damage %+v, verdict %s; want Healed, found by %s, NotVerified", healed, d, hs.Status.VerificationStatus, finder)
	}
	if d := ls.Status.Damage; d.State != storagev1alpha1.DamageLost || ls.Status.VerificationStatus != storagev1alpha1.SnapshotVerificationFailed ||
		!strings.HasSuffix(fmt.Sprint(d.Files[storagev1alpha1.ComponentDump]), "gone.bin]") {
		t.Errorf("snapshot %s: damage %+v, verdict %s; want Lost naming gone.bin, VerificationFailed", lost, d, ls.Status.VerificationStatus)
	}

	// The healed Snapshot's data is all there again: a new verification
	// restores and compares every file.
	vt := &verificationTest{t: t, kube: kube}
	v := verify.Session("default", verifier.Name, hs, start.Add(time.Hour))
	if err := kube.Create(ctx, v); err != nil {
		t.Fatal(err)
	}
	if done := vt.finished(v.Name); done.Status.Phase != corev1alpha1.VerificationSessionSucceeded {
		t.Errorf("the verification of healed snapshot %s ended %s: %+v", healed, done.Status.Phase, done.Status.Conditions)
	}
	if got := vtSnapshot(t, kube, healed); got.Status.VerificationStatus != storagev1alpha1.SnapshotVerified {
		t.Errorf("healed snapshot %s: verdict %s after its verification, want Verified", healed, got.Status.VerificationStatus)
	}

	// Backups go on while the Lost Snapshot stays in the repository.
	next := retentionRun(t, kube, bc, start.Add(4*time.Second))
	if got := vtSnapshot(t, kube, next); got.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Errorf("the run after the healing: snapshot %s is %s", next, got.Status.Phase)
	}
}

func vtSnapshot(t *testing.T, kube client.Client, name string) *storagev1alpha1.Snapshot {
	t.Helper()
	s := &storagev1alpha1.Snapshot{}
	if err := kube.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, s); err != nil {
		t.Fatal(err)
	}
	return s
}
