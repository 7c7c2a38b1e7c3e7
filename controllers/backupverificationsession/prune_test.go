package backupverificationsession

import (
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// TestShowPruneWait shows how a verification session shows that its
// restore waits for a prune, and that it went on.
func TestShowPruneWait(t *testing.T) {
	waitingRestore := xpv2.Condition{Type: corev1alpha1.TypeRestoreExecutorEnsured, Status: corev1.ConditionFalse, Reason: corev1alpha1.ReasonWaitingForPrune,
		Message: `waiting for prune job "app-prune" of repository demo/app to finish`}
	started := xpv2.Condition{Type: corev1alpha1.TypeRestoreExecutorEnsured, Status: corev1.ConditionTrue, Reason: corev1alpha1.ReasonRestoreExecutorEnsured}
	shownWait := xpv2.Condition{Type: corev1alpha1.TypeRestoreSucceeded, Status: corev1.ConditionUnknown, Reason: corev1alpha1.ReasonWaitingForPrune,
		Message: `restoresession "v-1" is waiting for prune job "app-prune" of repository demo/app to finish`}
	cases := map[string]struct {
		reason  string
		restore xpv2.Condition
		shown   *xpv2.Condition
		want    xpv2.Condition
		phase   corev1alpha1.BackupVerificationSessionPhase
	}{
		"Waiting": {
			reason:  "A restore waiting for a prune is shown on the session, which stays Running.",
			restore: waitingRestore,
			want:    shownWait,
			phase:   corev1alpha1.VerificationSessionRunning,
		},
		"WentOn": {
			reason:  "Once the prune ended and the restore runs, the session says so.",
			restore: started,
			shown:   &shownWait,
			want: xpv2.Condition{Type: corev1alpha1.TypeRestoreSucceeded, Status: corev1.ConditionUnknown, Reason: corev1alpha1.ReasonRestoreRunning,
				Message: `restoresession "v-1" runs: the prune it waited for ended`},
			phase: corev1alpha1.VerificationSessionRunning,
		},
		"NeverWaited": {
			reason:  "A restore that never waited leaves the session's conditions alone.",
			restore: started,
			want:    xpv2.Condition{Type: corev1alpha1.TypeRestoreSucceeded, Status: corev1.ConditionUnknown},
			phase:   corev1alpha1.VerificationSessionRunning,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r, _, _ := newReconciler(t, time.Unix(0, 0))
			s := &corev1alpha1.BackupVerificationSession{}
			if tc.shown != nil {
				s.SetConditions(*tc.shown)
			}
			rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "v-1"}}
			rs.SetConditions(tc.restore)
			r.showPruneWait(s, rs)
			if diff := cmp.Diff(tc.want, s.GetCondition(corev1alpha1.TypeRestoreSucceeded), cmpopts.IgnoreFields(xpv2.Condition{}, "LastTransitionTime")); diff != "" {
				t.Errorf("%s\nshowPruneWait(...): -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.phase, phase(s)); diff != "" {
				t.Errorf("%s\nphase: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
