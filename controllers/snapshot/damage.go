package snapshot

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// damageFound is what one Snapshot's backup found of other Snapshots'
// restic snapshots: the lost packs, and which snapshots are healed or lost
// (with their files), across its components.
type damageFound struct {
	packs  []string
	healed map[string]bool
	lost   map[string][]string
}

// foundDamage gathers the healing the components of s report; nil when
// none does.
func foundDamage(s *storagev1alpha1.Snapshot) *damageFound {
	var d *damageFound
	for _, n := range componentNames(s) {
		h := s.Status.Components[n].Healing
		if h == nil {
			continue
		}
		if d == nil {
			d = &damageFound{healed: map[string]bool{}, lost: map[string][]string{}}
		}
		for _, p := range h.MissingPacks {
			if !slices.Contains(d.packs, p) {
				d.packs = append(d.packs, p)
			}
		}
		for _, id := range h.HealedSnapshots {
			d.healed[id] = true
		}
		for _, l := range h.LostSnapshots {
			d.lost[l.ID] = l.Files
		}
	}
	return d
}

// damageOf is the damage found for other, a Snapshot of the same
// Repository: Lost when a component's restic snapshot is lost, Healed when
// one was healed and none lost, nil when the finding does not concern it.
func damageOf(found *damageFound, by string, other *storagev1alpha1.Snapshot) *storagev1alpha1.SnapshotDamage {
	var healed bool
	files := map[string][]string{}
	for _, n := range componentNames(other) {
		for _, st := range other.Status.Components[n].ResticStats {
			if st.Summary == nil || st.Summary.ID == "" {
				continue
			}
			if f, ok := found.lost[st.Summary.ID]; ok {
				files[n] = f
			}
			healed = healed || found.healed[st.Summary.ID]
		}
	}
	switch {
	case len(files) > 0:
		return &storagev1alpha1.SnapshotDamage{State: storagev1alpha1.DamageLost, FoundBy: by, MissingPacks: found.packs, Files: files}
	case healed:
		return &storagev1alpha1.SnapshotDamage{State: storagev1alpha1.DamageHealed, FoundBy: by, MissingPacks: found.packs}
	}
	return nil
}

// sameDamage says whether a recorded damage already says what d says.
// A Snapshot found Lost stays Lost: only the lost data coming back into
// the source, which no check reports, would heal it.
func sameDamage(recorded, d *storagev1alpha1.SnapshotDamage) bool {
	if recorded == nil {
		return false
	}
	if recorded.State == storagev1alpha1.DamageLost && d.State == storagev1alpha1.DamageHealed {
		return true
	}
	r, n := *recorded, *d
	r.Time, n.Time = nil, nil
	r.FoundBy, n.FoundBy = "", ""
	sort.Strings(r.MissingPacks)
	sort.Strings(n.MissingPacks)
	return fmt.Sprint(r) == fmt.Sprint(n)
}

// recordDamage writes what the backup of s found lost from storage into
// the Snapshots it concerns, in s's Repository: a Lost Snapshot's verdict
// becomes VerificationFailed (its data is not all there); a Healed one
// loses its verdict (NotVerified), so that it is verified again.
func recordDamage(ctx context.Context, kube client.Client, s *storagev1alpha1.Snapshot, now time.Time) error {
	found := foundDamage(s)
	if found == nil {
		return nil
	}
	list := &storagev1alpha1.SnapshotList{}
	if err := kube.List(ctx, list, client.InNamespace(s.Namespace), client.MatchingLabels{storagev1alpha1.LabelRepository: s.Spec.Repository}); err != nil {
		return fmt.Errorf("cannot list the snapshots of repository %q: %w", s.Spec.Repository, err)
	}
	for i := range list.Items {
		other := &list.Items[i]
		if other.Name == s.Name || other.Spec.Repository != s.Spec.Repository {
			continue
		}
		d := damageOf(found, s.Name, other)
		if d == nil || sameDamage(other.Status.Damage, d) {
			continue
		}
		patch := client.MergeFrom(other.DeepCopy())
		d.Time = &metav1.Time{Time: now}
		other.Status.Damage = d
		switch {
		case d.State == storagev1alpha1.DamageLost:
			other.Status.VerificationStatus = storagev1alpha1.SnapshotVerificationFailed
			other.Status.VerificationTime = d.Time
			other.Status.VerificationSession = ""
		case other.Status.VerificationStatus == storagev1alpha1.SnapshotVerified:
			other.Status.VerificationStatus = storagev1alpha1.SnapshotNotVerified
		}
		if err := kube.Status().Patch(ctx, other, patch); err != nil {
			return fmt.Errorf("cannot record the damage of snapshot %q: %w", other.Name, err)
		}
	}
	return nil
}
