package v1alpha1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestVerdictBeforePrune(t *testing.T) {
	pruned := time.Date(2026, 3, 18, 3, 0, 0, 0, time.UTC)
	repo := func(freed string, at *time.Time) *Repository {
		r := &Repository{}
		r.Status.LastPruneFreed = freed
		if at != nil {
			r.Status.LastPruneTime = &metav1.Time{Time: *at}
		}
		return r
	}
	snap := func(v VerificationStatus, at time.Time) *Snapshot {
		s := &Snapshot{}
		s.Status.VerificationStatus, s.Status.VerificationTime = v, &metav1.Time{Time: at}
		return s
	}
	cases := map[string]struct {
		reason string
		repo   *Repository
		snap   *Snapshot
		want   bool
	}{
		"VerifiedBeforeAPruneThatFreed": {"A verdict older than a prune that removed data is stale.", repo("12 MiB", &pruned), snap(SnapshotVerified, pruned.Add(-time.Hour)), true},
		"VerifiedAfterThePrune":         {"A verdict given since the prune holds.", repo("12 MiB", &pruned), snap(SnapshotVerified, pruned.Add(time.Hour)), false},
		"PruneFreedNothing":             {"A prune that removed nothing rewrote no pack.", repo("0 B", &pruned), snap(SnapshotVerified, pruned.Add(-time.Hour)), false},
		"NeverPruned":                   {"Without a prune every verdict holds.", repo("", nil), snap(SnapshotVerified, pruned), false},
		"NoVerdict":                     {"A Snapshot never verified has no verdict to be stale.", repo("12 MiB", &pruned), snap(SnapshotNotVerified, pruned.Add(-time.Hour)), false},
		"FailedBeforeThePrune":          {"A failed verdict given before a prune is stale too.", repo("1 KiB", &pruned), snap(SnapshotVerificationFailed, pruned.Add(-time.Minute)), true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := VerdictBeforePrune(tc.repo, tc.snap); got != tc.want {
				t.Errorf("%s\nVerdictBeforePrune: got %t, want %t", tc.reason, got, tc.want)
			}
		})
	}
}

// TestChangedForUsers shows which BackupStorage updates wake its users.
func TestChangedForUsers(t *testing.T) {
	base := func() *BackupStorage {
		bs := &BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "s", Generation: 1}}
		bs.Status.Phase = BackupStorageReady
		bs.Status.TotalSize = "1 GiB"
		return bs
	}
	cases := map[string]struct {
		reason string
		change func(*BackupStorage)
		want   bool
	}{
		"Size":         {"A new total size wakes no one.", func(bs *BackupStorage) { bs.Status.TotalSize = "2 GiB" }, false},
		"Repositories": {"Nor does a new Repository listed.", func(bs *BackupStorage) { bs.Status.Repositories = []RepositoryInfo{{Name: "r"}} }, false},
		"Spec":         {"A changed spec does.", func(bs *BackupStorage) { bs.Generation = 2 }, true},
		"Phase":        {"So does its phase.", func(bs *BackupStorage) { bs.Status.Phase = BackupStorageNotReady }, true},
		"Labels":       {"And its labels.", func(bs *BackupStorage) { bs.Labels = map[string]string{"a": "b"} }, true},
		"Deletion":     {"And its deletion.", func(bs *BackupStorage) { bs.DeletionTimestamp = &metav1.Time{} }, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			n := base()
			tc.change(n)
			if got := n.ChangedForUsers(base()); got != tc.want {
				t.Errorf("%s\nChangedForUsers = %t, want %t", tc.reason, got, tc.want)
			}
		})
	}
}
