package backupverificationsession

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// snapshotWith is a Snapshot that recorded the given components.
func snapshotWith(names ...string) *storagev1alpha1.Snapshot {
	s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-1"}}
	s.Status.Components = map[string]storagev1alpha1.Component{}
	for _, n := range names {
		s.Status.Components[n] = storagev1alpha1.Component{Phase: storagev1alpha1.ComponentSucceeded}
	}
	return s
}

// restored is a RestoreSession of the given phase whose components
// reported the given phases, 10 files and 100 bytes each.
func restored(phase corev1alpha1.RestorePhase, components map[string]corev1alpha1.RestorePhase) *corev1alpha1.RestoreSession {
	rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "v-1"}}
	rs.Status.Phase = phase
	rs.Status.Components = map[string]corev1alpha1.ComponentRestoreStatus{}
	for n, p := range components {
		rs.Status.Components[n] = corev1alpha1.ComponentRestoreStatus{Phase: p, FilesChecked: 10, BytesRestored: 100}
	}
	return rs
}

// sized sets the recorded size of a Snapshot's component.
func sized(s *storagev1alpha1.Snapshot, name, size string) *storagev1alpha1.Snapshot {
	c := s.Status.Components[name]
	c.Size = size
	s.Status.Components[name] = c
	return s
}

// uncompared makes a component of rs report no file compared and the
// given bytes restored.
func uncompared(rs *corev1alpha1.RestoreSession, name string, bytes int64) *corev1alpha1.RestoreSession {
	c := rs.Status.Components[name]
	c.FilesChecked, c.BytesRestored = 0, bytes
	rs.Status.Components[name] = c
	return rs
}

func TestEveryComponent(t *testing.T) {
	ok := verdict{final: true, runnable: true, verified: true}
	failed := verdict{final: true, runnable: true, message: `restoresession "v-1": component "dump-pod-1" failed: DamagedPack: pack 6cd7e454 is damaged`}
	cases := map[string]struct {
		reason string
		v      verdict
		snap   *storagev1alpha1.Snapshot
		rs     *corev1alpha1.RestoreSession
		want   verdict
	}{
		"AllPodsChecked": {
			reason: "A StatefulSet's Snapshot whose every pod's component was restored and checked is verified.",
			v:      ok, snap: snapshotWith("dump-pod-0", "dump-pod-1"),
			rs:   restored(corev1alpha1.RestoreSucceeded, map[string]corev1alpha1.RestorePhase{"dump-pod-0": corev1alpha1.RestoreSucceeded, "dump-pod-1": corev1alpha1.RestoreSucceeded}),
			want: ok,
		},
		"OnePodNotRestored": {
			reason: "A restore that succeeded without one of the Snapshot's components does not verify the Snapshot, and names the component.",
			v:      ok, snap: snapshotWith("dump-pod-0", "dump-pod-1", "dump-pod-2"),
			rs: restored(corev1alpha1.RestoreSucceeded, map[string]corev1alpha1.RestorePhase{"dump-pod-0": corev1alpha1.RestoreSucceeded, "dump-pod-1": corev1alpha1.RestoreRunning}),
			want: verdict{final: true, runnable: true,
				message: `restoresession "v-1" did not restore and check component(s) "dump-pod-1", "dump-pod-2" of snapshot "app-1"`},
		},
		"FailureKept": {
			reason: "A failed verdict keeps the restore's own message naming the failed component.",
			v:      failed, snap: snapshotWith("dump-pod-0", "dump-pod-1"),
			rs:   restored(corev1alpha1.RestoreFailed, map[string]corev1alpha1.RestorePhase{"dump-pod-0": corev1alpha1.RestoreSucceeded, "dump-pod-1": corev1alpha1.RestoreFailed}),
			want: failed,
		},
		"NotFinal": {
			reason: "A restore still going has no verdict, whatever its components say.",
			v:      verdict{}, snap: snapshotWith("dump-pod-0", "dump-pod-1"),
			rs:   restored(corev1alpha1.RestoreRunning, nil),
			want: verdict{},
		},
		"OneComponent": {
			reason: "A Snapshot of one component is verified by its one restored component.",
			v:      ok, snap: snapshotWith("dump"),
			rs:   restored(corev1alpha1.RestoreSucceeded, map[string]corev1alpha1.RestorePhase{"dump": corev1alpha1.RestoreSucceeded}),
			want: ok,
		},
		"ContentNotCompared": {
			reason: "A component whose backup holds data but that compared no file (no manifest, or one of another restic snapshot) gives no verdict, and is named.",
			v:      ok, snap: sized(snapshotWith("dump-pod-0", "dump-pod-1"), "dump-pod-1", "12 MiB"),
			rs: uncompared(restored(corev1alpha1.RestoreSucceeded, map[string]corev1alpha1.RestorePhase{"dump-pod-0": corev1alpha1.RestoreSucceeded, "dump-pod-1": corev1alpha1.RestoreSucceeded}), "dump-pod-1", 0),
			want: verdict{final: true, runnable: true, noVerdict: corev1alpha1.ReasonContentNotChecked,
				message: `component(s) "dump-pod-1" of snapshot "app-1" were restored but no file was compared with a content manifest: ` +
					`the manifest is missing from the repository or belongs to another restic snapshot, so the snapshot is not verified`},
		},
		"RestoredButNotCompared": {
			reason: "A component that restored bytes but compared no file gives no verdict even when the Snapshot recorded no size.",
			v:      ok, snap: snapshotWith("dump"),
			rs: uncompared(restored(corev1alpha1.RestoreSucceeded, map[string]corev1alpha1.RestorePhase{"dump": corev1alpha1.RestoreSucceeded}), "dump", 100),
			want: verdict{final: true, runnable: true, noVerdict: corev1alpha1.ReasonContentNotChecked,
				message: `component(s) "dump" of snapshot "app-1" were restored but no file was compared with a content manifest: ` +
					`the manifest is missing from the repository or belongs to another restic snapshot, so the snapshot is not verified`},
		},
		"EmptyComponent": {
			reason: "A component that backed up no data has no file to compare and is verified.",
			v:      ok, snap: sized(snapshotWith("dump"), "dump", "0 B"),
			rs:   uncompared(restored(corev1alpha1.RestoreSucceeded, map[string]corev1alpha1.RestorePhase{"dump": corev1alpha1.RestoreSucceeded}), "dump", 0),
			want: ok,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, everyComponent(tc.v, tc.snap, tc.rs), cmp.AllowUnexported(verdict{})); diff != "" {
				t.Errorf("%s\neveryComponent(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestComponentsChecked(t *testing.T) {
	cases := map[string]struct {
		reason string
		rs     *corev1alpha1.RestoreSession
		want   string
	}{
		"Pods": {
			reason: "Each component's files and bytes are listed in name order.",
			rs:     restored(corev1alpha1.RestoreSucceeded, map[string]corev1alpha1.RestorePhase{"dump-pod-1": corev1alpha1.RestoreSucceeded, "dump-pod-0": corev1alpha1.RestoreSucceeded}),
			want:   `"dump-pod-0": 10 files, 100 bytes; "dump-pod-1": 10 files, 100 bytes`,
		},
		"One": {
			reason: "One component's numbers are the session's own and are not repeated.",
			rs:     restored(corev1alpha1.RestoreSucceeded, map[string]corev1alpha1.RestorePhase{"dump": corev1alpha1.RestoreSucceeded}),
			want:   "",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, componentsChecked(tc.rs)); diff != "" {
				t.Errorf("%s\ncomponentsChecked(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
