package snapshot

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// snapshotOf is a Snapshot whose components hold the restic snapshots ids
// (component name → id).
func snapshotOf(ids map[string]string) *storagev1alpha1.Snapshot {
	s := &storagev1alpha1.Snapshot{}
	s.Status.Components = map[string]storagev1alpha1.Component{}
	for c, id := range ids {
		s.Status.Components[c] = storagev1alpha1.Component{ResticStats: []storagev1alpha1.ResticStats{{Summary: &storagev1alpha1.ResticSummary{ID: id}}}}
	}
	return s
}

func TestDamageOf(t *testing.T) {
	finder := snapshotOf(map[string]string{"dump-pod-0": "new0", "dump-pod-1": "new1"})
	c0 := finder.Status.Components["dump-pod-0"]
	c0.Healing = &storagev1alpha1.ComponentHealing{MissingPacks: []string{"p1"}, HealedSnapshots: []string{"a0"},
		LostSnapshots: []storagev1alpha1.LostResticSnapshot{{ID: "b0", Files: []string{"data/gone"}}}}
	finder.Status.Components["dump-pod-0"] = c0
	c1 := finder.Status.Components["dump-pod-1"]
	c1.Healing = &storagev1alpha1.ComponentHealing{MissingPacks: []string{"p2"}, HealedSnapshots: []string{"b1"}}
	finder.Status.Components["dump-pod-1"] = c1
	found := foundDamage(finder)

	cases := map[string]struct {
		reason string
		other  *storagev1alpha1.Snapshot
		want   *storagev1alpha1.SnapshotDamage
	}{
		"Untouched": {
			reason: "A Snapshot none of whose restic snapshots was named is left alone.",
			other:  snapshotOf(map[string]string{"dump-pod-0": "c0", "dump-pod-1": "c1"}),
		},
		"Healed": {
			reason: "A Snapshot whose restic snapshot was healed is Healed, naming every lost pack found.",
			other:  snapshotOf(map[string]string{"dump-pod-0": "a0", "dump-pod-1": "a1"}),
			want:   &storagev1alpha1.SnapshotDamage{State: storagev1alpha1.DamageHealed, FoundBy: "finder", MissingPacks: []string{"p1", "p2"}},
		},
		"LostWinsOverHealed": {
			reason: "One lost component makes the Snapshot Lost, naming that component's files, though another healed.",
			other:  snapshotOf(map[string]string{"dump-pod-0": "b0", "dump-pod-1": "b1"}),
			want: &storagev1alpha1.SnapshotDamage{State: storagev1alpha1.DamageLost, FoundBy: "finder", MissingPacks: []string{"p1", "p2"},
				Files: map[string][]string{"dump-pod-0": {"data/gone"}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, damageOf(found, "finder", tc.other)); diff != "" {
				t.Errorf("%s\ndamageOf(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
	if foundDamage(snapshotOf(map[string]string{"dump": "x"})) != nil {
		t.Errorf("A Snapshot whose components found nothing reports no damage")
	}
}

func TestSameDamage(t *testing.T) {
	lost := &storagev1alpha1.SnapshotDamage{State: storagev1alpha1.DamageLost, FoundBy: "a", MissingPacks: []string{"p2", "p1"}}
	healed := &storagev1alpha1.SnapshotDamage{State: storagev1alpha1.DamageHealed, FoundBy: "b", MissingPacks: []string{"p1", "p2"}}
	cases := map[string]struct {
		reason   string
		recorded *storagev1alpha1.SnapshotDamage
		d        *storagev1alpha1.SnapshotDamage
		want     bool
	}{
		"NothingRecorded": {"A first finding is written.", nil, healed, false},
		"SameByAnotherRun": {"The same finding by a later run is not written again.",
			&storagev1alpha1.SnapshotDamage{State: storagev1alpha1.DamageHealed, FoundBy: "a", MissingPacks: []string{"p2", "p1"}}, healed, true},
		"LostStaysLost":  {"A Lost Snapshot is not called Healed.", lost, healed, true},
		"HealedThenLost": {"A Healed Snapshot found Lost is written Lost.", healed, lost, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := sameDamage(tc.recorded, tc.d); got != tc.want {
				t.Errorf("%s\nsameDamage() = %t, want %t", tc.reason, got, tc.want)
			}
		})
	}
}
