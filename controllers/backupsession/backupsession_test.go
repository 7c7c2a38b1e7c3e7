package backupsession

import (
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

func TestPhase(t *testing.T) {
	ensured := xpv2.Condition{Type: corev1alpha1.TypeSnapshotsEnsured, Status: corev1.ConditionTrue}
	skipped := xpv2.Condition{Type: corev1alpha1.TypeBackupSkipped, Status: corev1.ConditionTrue}
	snaps := func(phases ...storagev1alpha1.SnapshotPhase) []corev1alpha1.SnapshotStatus {
		var out []corev1alpha1.SnapshotStatus
		for _, p := range phases {
			out = append(out, corev1alpha1.SnapshotStatus{Phase: p})
		}
		return out
	}
	cases := map[string]struct {
		reason     string
		conditions []xpv2.Condition
		snapshots  []corev1alpha1.SnapshotStatus
		want       corev1alpha1.BackupSessionPhase
	}{
		"New":       {reason: "Nothing ensured yet.", want: corev1alpha1.BackupSessionPending},
		"Skipped":   {reason: "A skipped session stays skipped.", conditions: []xpv2.Condition{skipped}, want: corev1alpha1.BackupSessionSkipped},
		"Running":   {reason: "Snapshots still pending.", conditions: []xpv2.Condition{ensured}, snapshots: snaps(storagev1alpha1.SnapshotSucceeded, storagev1alpha1.SnapshotRunning), want: corev1alpha1.BackupSessionRunning},
		"Succeeded": {reason: "Every Snapshot succeeded.", conditions: []xpv2.Condition{ensured}, snapshots: snaps(storagev1alpha1.SnapshotSucceeded, storagev1alpha1.SnapshotSucceeded), want: corev1alpha1.BackupSessionSucceeded},
		"Failed":    {reason: "One failed Snapshot fails the session.", conditions: []xpv2.Condition{ensured}, snapshots: snaps(storagev1alpha1.SnapshotSucceeded, storagev1alpha1.SnapshotFailed), want: corev1alpha1.BackupSessionFailed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bs := &corev1alpha1.BackupSession{}
			bs.SetConditions(tc.conditions...)
			bs.Status.Snapshots = tc.snapshots
			if diff := cmp.Diff(tc.want, phase(bs)); diff != "" {
				t.Errorf("%s\nphase(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestExecutionProblem(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	job := func(t batchv1.JobConditionType, ago time.Duration) batchv1.Job {
		j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "backup", Labels: map[string]string{
			storagev1alpha1.LabelRepository: "app", corev1alpha1.LabelComponent: "dump-pod-0",
		}}}
		if t != "" {
			j.Status.Conditions = []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue, Message: "BackoffLimitExceeded",
				LastTransitionTime: metav1.NewTime(now.Add(-ago))}}
		}
		return j
	}
	snapshot := func(repo, component string, p storagev1alpha1.ComponentPhase) *storagev1alpha1.Snapshot {
		s := &storagev1alpha1.Snapshot{Spec: storagev1alpha1.SnapshotSpec{Repository: repo}}
		s.Status.Components = map[string]storagev1alpha1.Component{component: {Phase: p}}
		return s
	}
	reported := func(repo, component string) *storagev1alpha1.Snapshot {
		return snapshot(repo, component, storagev1alpha1.ComponentSucceeded)
	}
	running := func(repo, component string) *storagev1alpha1.Snapshot {
		return snapshot(repo, component, storagev1alpha1.ComponentRunning)
	}
	cases := map[string]struct {
		reason string
		jobs   []batchv1.Job
		snaps  []*storagev1alpha1.Snapshot
		want   bool
	}{
		"Gone":           {reason: "A session whose Job vanished must not wait.", want: true},
		"Running":        {reason: "A running Job is no problem.", jobs: []batchv1.Job{job("", 0)}, want: false},
		"Failed":         {reason: "A failed Job fails the run.", jobs: []batchv1.Job{job(batchv1.JobFailed, 0)}, want: true},
		"JustCompleted":  {reason: "A Job that just completed gets time to report.", jobs: []batchv1.Job{job(batchv1.JobComplete, 10*time.Second)}, want: false},
		"SilentComplete": {reason: "A Job that completed long ago without a report is a problem.", jobs: []batchv1.Job{job(batchv1.JobComplete, 2*time.Minute)}, want: true},
		"ReportedWhileSiblingRuns": {reason: "A pod's Job that completed and reported long ago waits for its sibling's.",
			jobs: []batchv1.Job{job(batchv1.JobComplete, 2*time.Minute), job("", 0)}, snaps: []*storagev1alpha1.Snapshot{reported("app", "dump-pod-0")}, want: false},
		"OtherRepository": {reason: "A report in another repository's Snapshot is not the Job's.",
			jobs: []batchv1.Job{job(batchv1.JobComplete, 2*time.Minute)}, snaps: []*storagev1alpha1.Snapshot{reported("other", "dump-pod-0")}, want: true},
		"OnlyRunningReport": {reason: "A component still reported running long after its Job completed is a problem.",
			jobs: []batchv1.Job{job(batchv1.JobComplete, 2*time.Minute)}, snaps: []*storagev1alpha1.Snapshot{running("app", "dump-pod-0")}, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, executionProblem(tc.jobs, reportedIn(tc.snaps), now) != ""); diff != "" {
				t.Errorf("%s\nexecutionProblem(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestComponentCounts(t *testing.T) {
	input := func(repo, component string) render.Input {
		return render.Input{Context: render.Context{Repository: render.Repository{Name: repo}, Component: component}}
	}
	cases := map[string]struct {
		reason string
		inputs []render.Input
		want   map[string]int
	}{
		"Workload": {reason: "One component per repository for a Deployment.",
			inputs: []render.Input{input("app", "dump"), input("offsite", "dump")}, want: map[string]int{"app": 1, "offsite": 1}},
		"StatefulSet": {reason: "Each pod of a StatefulSet is a component of every repository.",
			inputs: []render.Input{input("app", "dump-pod-0"), input("app", "dump-pod-1"), input("offsite", "dump-pod-0"), input("offsite", "dump-pod-1")},
			want:   map[string]int{"app": 2, "offsite": 2}},
		"TwoTasks": {reason: "Two tasks writing the same component count it once.",
			inputs: []render.Input{input("app", "dump"), input("app", "dump")}, want: map[string]int{"app": 1}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, componentCounts(tc.inputs)); diff != "" {
				t.Errorf("%s\ncomponentCounts(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
