package restic_test

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// dataPacks lists the repository's packs larger than 1 MiB: the ones
// that hold file contents rather than trees.
func dataPacks(t *testing.T, repo string) []string {
	t.Helper()
	var packs []string
	matches, err := filepath.Glob(filepath.Join(repo, "data", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Size() > 1<<20 {
			packs = append(packs, filepath.Base(m))
		}
	}
	slices.Sort(packs)
	return packs
}

func writeRandom(t *testing.T, path string, size int) {
	t.Helper()
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRepairLostPacks loses the packs of two backups from storage, one of
// whose files is still in the source, and follows the repair: the check
// names the packs, the index names the snapshots that used them, a backup
// after the index's repair stores the file still present again, which
// heals the snapshot that held only it, and the other snapshot is found
// damaged, naming the file whose data is gone.
func TestRepairLostPacks(t *testing.T) {
	repo, src := t.TempDir(), t.TempDir()
	r, err := restic.New(restic.Options{Binary: servers.Binary(t, "restic"), Repository: repo, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Init(ctx(t)); err != nil {
		t.Fatal(err)
	}
	backup := func() *restic.BackupSummary {
		t.Helper()
		sum, err := r.Backup(ctx(t), restic.BackupOptions{Paths: []string{src}, Host: "node-a"}, nil)
		if err != nil {
			t.Fatalf("cannot back up: %v", err)
		}
		return sum
	}
	writeRandom(t, filepath.Join(src, "kept"), 3<<20)
	first := backup()
	packsFirst := dataPacks(t, repo)
	writeRandom(t, filepath.Join(src, "gone"), 3<<20)
	second := backup()
	lost := dataPacks(t, repo)
	if len(packsFirst) != 1 || len(lost) != 2 {
		t.Fatalf("Each backup writes one data pack: %v, then %v", packsFirst, lost)
	}

	sum, err := r.Check(ctx(t), restic.CheckOptions{NoLock: true})
	if err != nil || len(sum.MissingPacks) != 0 {
		t.Fatalf("A whole repository passes its check: %+v, %v", sum, err)
	}
	for _, p := range lost {
		if err := os.Remove(filepath.Join(repo, "data", p[:2], p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(src, "gone")); err != nil {
		t.Fatal(err)
	}

	sum, err = r.Check(ctx(t), restic.CheckOptions{NoLock: true})
	var e *restic.Error
	if !errors.As(err, &e) {
		t.Fatalf("The check of a repository that lost packs fails: %v", err)
	}
	if diff := cmp.Diff(lost, sum.MissingPacks); diff != "" {
		t.Errorf("The check names the lost packs: -want +got:\n%s", diff)
	}
	using, err := r.SnapshotsUsingPacks(ctx(t), sum.MissingPacks)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{first.SnapshotID, second.SnapshotID}
	slices.Sort(want)
	if diff := cmp.Diff(want, using); diff != "" {
		t.Errorf("Both snapshots used the lost packs: -want +got:\n%s", diff)
	}

	if err := r.RepairIndex(ctx(t)); err != nil {
		t.Fatalf("cannot repair the index: %v", err)
	}
	third, err := r.Backup(ctx(t), restic.BackupOptions{Paths: []string{src}, Host: "node-a"}, nil)
	if err != nil {
		t.Fatalf("A backup that stores lost files again succeeds: %v", err)
	}
	if third.StoredAgain != 1 || len(third.Errors) != 0 {
		t.Errorf("The backup stored the one file still in the source again: stored again %d, errors %v", third.StoredAgain, third.Errors)
	}

	damaged, err := r.DamagedSnapshots(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]restic.DamagedSnapshot{{ID: second.SnapshotID, Files: []string{filepath.Join(src, "gone")[1:]}}}, damaged,
		cmp.Transformer("rel", func(d restic.DamagedSnapshot) restic.DamagedSnapshot {
			for i, f := range d.Files {
				d.Files[i] = filepath.Base(f)
			}
			return d
		})); diff != "" {
		t.Errorf("Only the snapshot whose file left the source stays damaged, naming it: -want +got:\n%s", diff)
	}
}
