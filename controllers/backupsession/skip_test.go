package backupsession

import (
	"context"
	"testing"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// TestCheckSkip shows which sessions end Skipped before anything runs, and
// with which reason.
func TestCheckSkip(t *testing.T) {
	type want struct {
		stop      bool
		condition xpv2.Condition
	}
	skipped := func(reason xpv2.ConditionReason, msg string) want {
		return want{stop: true, condition: xpv2.Condition{Type: corev1alpha1.TypeBackupSkipped, Status: "True", Reason: reason, Message: msg}}
	}
	running := finished("app-hourly-0", 0, corev1alpha1.BackupSessionRunning, 0)
	cases := map[string]struct {
		reason string
		paused bool
		// stale hands checkSkip a copy of the configuration read before
		// it was paused, as a cache may.
		stale  bool
		policy corev1alpha1.ConcurrencyPolicy
		phase  corev1alpha1.BackupInvokerPhase
		others []client.Object
		want   want
	}{
		"Runs": {
			reason: "A session of a Ready configuration with no other run going runs.",
			phase:  corev1alpha1.BackupInvokerReady,
			want:   want{condition: xpv2.Condition{Type: corev1alpha1.TypeBackupSkipped, Status: "Unknown"}},
		},
		"Paused": {
			reason: "A session of a paused configuration, even one made by hand, is skipped and says why.",
			paused: true,
			phase:  corev1alpha1.BackupInvokerReady,
			want:   skipped(corev1alpha1.ReasonSkippedInvokerPaused, `backupconfiguration "app" is paused`),
		},
		"PausedJustNow": {
			reason: "A configuration paused just before a session by hand skips it as paused, though the copy at hand is not paused yet and another run is going.",
			paused: true,
			stale:  true,
			phase:  corev1alpha1.BackupInvokerReady,
			others: []client.Object{&running},
			want:   skipped(corev1alpha1.ReasonSkippedInvokerPaused, `backupconfiguration "app" is paused`),
		},
		"NotReady": {
			reason: "A session of a configuration that is not Ready is skipped.",
			phase:  corev1alpha1.BackupInvokerNotReady,
			want:   skipped(corev1alpha1.ReasonSkippedInvokerNotReady, `backupconfiguration "app" is NotReady`),
		},
		"Concurrent": {
			reason: "A session due while another run of the same session is going is skipped.",
			phase:  corev1alpha1.BackupInvokerReady,
			others: []client.Object{&running},
			want:   skipped(corev1alpha1.ReasonSkippedConcurrentSession, `backupsession "app-hourly-0" of the same session is still running`),
		},
		"ConcurrentForbid": {
			reason: "Forbid, said outright, skips the same way.",
			policy: corev1alpha1.ConcurrencyForbid,
			phase:  corev1alpha1.BackupInvokerReady,
			others: []client.Object{&running},
			want:   skipped(corev1alpha1.ReasonSkippedConcurrentSession, `backupsession "app-hourly-0" of the same session is still running`),
		},
		"ConcurrentAllow": {
			reason: "With concurrencyPolicy Allow a session runs while another run of its session is going.",
			policy: corev1alpha1.ConcurrencyAllow,
			phase:  corev1alpha1.BackupInvokerReady,
			others: []client.Object{&running},
			want:   want{condition: xpv2.Condition{Type: corev1alpha1.TypeBackupSkipped, Status: "Unknown"}},
		},
		"ConcurrentReplace": {
			reason: "With concurrencyPolicy Replace a session is not skipped: it ends the run that is going (replace.go).",
			policy: corev1alpha1.ConcurrencyReplace,
			phase:  corev1alpha1.BackupInvokerReady,
			others: []client.Object{&running},
			want:   want{condition: xpv2.Condition{Type: corev1alpha1.TypeBackupSkipped, Status: "Unknown"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bc := configuration(0, 0, 1)
			bc.Spec.Paused = tc.paused
			bc.Spec.Sessions[0].Scheduler = &corev1alpha1.SchedulerSpec{Schedule: "0 * * * *", ConcurrencyPolicy: tc.policy}
			bc.Status.Phase = tc.phase
			bs := finished("app-hourly-1", 0, "", 0)
			bs.Status.Conditions = nil
			r, _, _ := newReconciler(t, t0, append(tc.others, bc, &bs)...)
			held := bc.DeepCopy()
			if tc.stale {
				held.Spec.Paused = false
			}
			_, stop, err := r.checkSkip(context.Background(), &run{bs: &bs, bc: held})
			if err != nil {
				t.Fatal(err)
			}
			got := want{stop: stop, condition: bs.GetCondition(corev1alpha1.TypeBackupSkipped)}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{}), cmpopts.IgnoreFields(xpv2.Condition{}, "LastTransitionTime", "ObservedGeneration")); diff != "" {
				t.Errorf("%s\ncheckSkip(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
