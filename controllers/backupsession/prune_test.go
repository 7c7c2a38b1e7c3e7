package backupsession

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
	"github.com/stashplane/stashplane/functions/plan"
)

func TestWaitForPrune(t *testing.T) {
	now := time.Date(2026, 3, 18, 2, 0, 0, 0, time.UTC)
	pruneJob := func(label string, cond batchv1.JobConditionType) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "db-prune", Namespace: "demo", Labels: map[string]string{plan.LabelPruneOf: label}}}
		if cond != "" {
			j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}
		}
		return j
	}
	type want struct {
		Stop     bool
		Requeue  time.Duration
		Reason   xpv2.ConditionReason
		Deadline *metav1.Time
	}
	cases := map[string]struct {
		reason string
		objs   []client.Object
		waited bool
		want   want
	}{
		"PruneRunning": {
			reason: "A run whose Repository is being pruned waits, Pending, naming the prune Job.",
			objs:   []client.Object{pruneJob("db", "")},
			want:   want{Stop: true, Requeue: pruneRecheck, Reason: corev1alpha1.ReasonWaitingForPrune},
		},
		"PruneFinished": {
			reason: "A finished prune holds nothing back.",
			objs:   []client.Object{pruneJob("db", batchv1.JobComplete)},
		},
		"NoPrune": {
			reason: "Without a prune Job the run goes on.",
		},
		"NotAPruneJob": {
			reason: "A Job that merely has the name, without the prune label, holds nothing back.",
			objs:   []client.Object{pruneJob("", "")},
		},
		"WaitEnded": {
			reason: "Once the wait ends, backupTimeout counts from then.",
			objs:   []client.Object{pruneJob("db", batchv1.JobFailed)},
			waited: true,
			want:   want{Reason: corev1alpha1.ReasonWaitingForPrune, Deadline: &metav1.Time{Time: now.Add(time.Hour)}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := testScheme(t)
			kube := fake.NewClientBuilder().WithScheme(s).WithObjects(tc.objs...).Build()
			clk := clocktesting.NewFakeClock(now)
			r := &reconciler{kube: kube, api: kube, clock: clk}
			bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "db-backup", Namespace: "demo"}}
			bc.Spec.Sessions = []corev1alpha1.Session{{Name: "nightly", Repositories: []corev1alpha1.RepositoryInfo{{Name: "db"}}}}
			bs := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: "db-backup-nightly-1", Namespace: "demo"}}
			bs.Spec.Session, bs.Spec.BackupTimeout = "nightly", &metav1.Duration{Duration: time.Hour}
			if tc.waited {
				bs.SetConditions(xpv2.Condition{Type: corev1alpha1.TypeSnapshotsEnsured, Status: corev1.ConditionFalse, Reason: corev1alpha1.ReasonWaitingForPrune})
			}
			res, stop, err := r.waitForPrune(context.Background(), &run{bs: bs, bc: bc})
			if err != nil {
				t.Fatal(err)
			}
			got := want{Stop: stop, Requeue: res.RequeueAfter, Reason: bs.GetCondition(corev1alpha1.TypeSnapshotsEnsured).Reason, Deadline: bs.Status.BackupDeadline}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nwaitForPrune: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
