package snapshot

import (
	"testing"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func comp(phase storagev1alpha1.ComponentPhase, size string, integrity bool) storagev1alpha1.Component {
	return storagev1alpha1.Component{Phase: phase, Size: size, Integrity: ptr.To(integrity)}
}

func TestSummarize(t *testing.T) {
	cases := map[string]struct {
		reason     string
		total      int32
		components map[string]storagev1alpha1.Component
		conditions []xpv2.Condition
		want       summary
	}{
		"Pending": {
			reason: "No component has reported.",
			want:   summary{phase: storagev1alpha1.SnapshotPending, size: "0 B"},
		},
		"Running": {
			reason:     "One of two expected components is done.",
			total:      2,
			components: map[string]storagev1alpha1.Component{"dump-pod-0": comp(storagev1alpha1.ComponentSucceeded, "1 MiB", true)},
			want:       summary{phase: storagev1alpha1.SnapshotRunning, size: "1 MiB", integrity: ptr.To(true)},
		},
		"Succeeded": {
			reason: "Every component succeeded: sizes add up, integrity holds.",
			total:  2,
			components: map[string]storagev1alpha1.Component{
				"dump-pod-0": comp(storagev1alpha1.ComponentSucceeded, "1 MiB", true),
				"dump-pod-1": comp(storagev1alpha1.ComponentSucceeded, "1 MiB", true),
			},
			want: summary{phase: storagev1alpha1.SnapshotSucceeded, size: "2 MiB", integrity: ptr.To(true)},
		},
		"OneFailed": {
			reason: "A failed component fails the snapshot and its integrity.",
			components: map[string]storagev1alpha1.Component{
				"dump-pod-0": comp(storagev1alpha1.ComponentSucceeded, "1 MiB", true),
				"dump-pod-1": comp(storagev1alpha1.ComponentFailed, "", false),
			},
			want: summary{phase: storagev1alpha1.SnapshotFailed, size: "1 MiB", integrity: ptr.To(false)},
		},
		"Incomplete": {
			reason:     "BackupIncomplete fails the snapshot whatever its components say.",
			components: map[string]storagev1alpha1.Component{"dump": comp(storagev1alpha1.ComponentSucceeded, "1 MiB", true)},
			conditions: []xpv2.Condition{{Type: storagev1alpha1.TypeBackupIncomplete, Status: corev1.ConditionTrue, Reason: storagev1alpha1.ReasonBackupExecutorFailed}},
			want:       summary{phase: storagev1alpha1.SnapshotFailed, size: "1 MiB", integrity: ptr.To(true)},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &storagev1alpha1.Snapshot{}
			s.Status.TotalComponents = tc.total
			s.Status.Components = tc.components
			s.SetConditions(tc.conditions...)
			if diff := cmp.Diff(tc.want, summarize(s), cmp.AllowUnexported(summary{})); diff != "" {
				t.Errorf("%s\nsummarize(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
