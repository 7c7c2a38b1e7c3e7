package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestWriteSnapshots(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	snap := func(name string, age time.Duration, st storagev1alpha1.SnapshotStatus) storagev1alpha1.Snapshot {
		return storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(now.Add(-age))}, Status: st}
	}
	cases := map[string]struct {
		reason string
		snaps  []storagev1alpha1.Snapshot
		want   string
	}{
		"Empty": {reason: "No snapshot prints only the header.",
			want: "NAME   PHASE   VERIFICATION   SIZE   RESTORE-TIME   BYTES-RESTORED   AGE\n"},
		"Verified": {reason: "Newest first; a verified snapshot shows its restore time and bytes, an unverified one <none>.",
			snaps: []storagev1alpha1.Snapshot{
				snap("app-nightly-1", 26*time.Hour, storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotSucceeded,
					VerificationStatus: storagev1alpha1.SnapshotVerified, Size: "1.5 MiB", RestoreDuration: "12s", BytesRestored: 1572864}),
				snap("app-nightly-2", 90*time.Minute, storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotRunning}),
			},
			want: "NAME            PHASE       VERIFICATION   SIZE      RESTORE-TIME   BYTES-RESTORED   AGE\n" +
				"app-nightly-2   Running     <none>         <none>    <none>         <none>           90m\n" +
				"app-nightly-1   Succeeded   Verified       1.5 MiB   12s            1.5 MiB          26h\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeSnapshots(&b, tc.snaps, now); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("%s\nwriteSnapshots(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
