package restoresession

import (
	"context"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
)

// TestWaitForPrune shows when a restore that has not started waits for a
// prune of the Repository it reads from.
func TestWaitForPrune(t *testing.T) {
	pruneJob := func(ns, label string, cond batchv1.JobConditionType) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "db-prune", Namespace: ns, Labels: map[string]string{plan.LabelPruneOf: label}}}
		if cond != "" {
			j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}
		}
		return j
	}
	type want struct {
		Stop      bool
		Requeue   time.Duration
		Condition xpv2.Condition
		Phase     corev1alpha1.RestorePhase
	}
	waiting := func(ns string) want {
		return want{Stop: true, Requeue: pruneRecheck, Phase: corev1alpha1.RestorePending,
			Condition: xpv2.Condition{Type: corev1alpha1.TypeRestoreExecutorEnsured, Status: corev1.ConditionFalse, Reason: corev1alpha1.ReasonWaitingForPrune,
				Message: `waiting for prune job "db-prune" of repository ` + ns + `/db to finish`}}
	}
	goesOn := want{Phase: corev1alpha1.RestorePending, Condition: xpv2.Condition{Type: corev1alpha1.TypeRestoreExecutorEnsured, Status: corev1.ConditionUnknown}}
	cases := map[string]struct {
		reason string
		repoNS string
		objs   []client.Object
		want   want
	}{
		"PruneRunning": {
			reason: "A restore of a Repository being pruned waits, Pending, naming the prune Job.",
			repoNS: "demo",
			objs:   []client.Object{pruneJob("demo", "db", "")},
			want:   waiting("demo"),
		},
		"PruneElsewhere": {
			reason: "A restore from a Repository of another namespace waits for that namespace's prune.",
			repoNS: "team",
			objs:   []client.Object{pruneJob("team", "db", "")},
			want:   waiting("team"),
		},
		"OtherNamespacesPrune": {
			reason: "A prune Job of the same name in the restore's namespace is not the Repository's.",
			repoNS: "team",
			objs:   []client.Object{pruneJob("demo", "db", "")},
			want:   goesOn,
		},
		"PruneCompleted": {
			reason: "A finished prune holds nothing back.",
			repoNS: "demo",
			objs:   []client.Object{pruneJob("demo", "db", batchv1.JobComplete)},
			want:   goesOn,
		},
		"PruneFailed": {
			reason: "A prune that failed (killed) holds nothing back; the agent removes the lock it left.",
			repoNS: "demo",
			objs:   []client.Object{pruneJob("demo", "db", batchv1.JobFailed)},
			want:   goesOn,
		},
		"NoPrune": {
			reason: "Without a prune Job the restore goes on.",
			repoNS: "demo",
			want:   goesOn,
		},
		"NotAPruneJob": {
			reason: "A Job that merely has the name, without the prune label, holds nothing back.",
			repoNS: "demo",
			objs:   []client.Object{pruneJob("demo", "", "")},
			want:   goesOn,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kube := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(tc.objs...).Build()
			r := &reconciler{kube: kube, reader: kube, clock: clocktesting.NewFakeClock(time.Unix(0, 0))}
			rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "demo"}}
			rn := &run{rs: rs, in: plan.Inputs{Repository: &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: tc.repoNS}}}}
			res, stop, err := r.waitForPrune(context.Background(), rn)
			if err != nil {
				t.Fatal(err)
			}
			c := rs.GetCondition(corev1alpha1.TypeRestoreExecutorEnsured)
			c.LastTransitionTime = metav1.Time{}
			got := want{Stop: stop, Requeue: res.RequeueAfter, Condition: c, Phase: phase(rs)}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nwaitForPrune(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
