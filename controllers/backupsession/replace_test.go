package backupsession

import (
	"context"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// newReplaceReconciler is newReconciler with status subresources for the
// sessions too, as the API server has them.
func newReplaceReconciler(t *testing.T, objs ...client.Object) (*reconciler, client.Client) {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, corev1alpha1.AddToScheme, storagev1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	kube := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithIndex(&storagev1alpha1.Snapshot{}, storagev1alpha1.SnapshotBackupSessionField, storagev1alpha1.SnapshotBackupSession).
		WithStatusSubresource(&storagev1alpha1.Snapshot{}, &corev1alpha1.BackupSession{}).Build()
	return &reconciler{kube: kube, api: kube, clock: clocktesting.NewFakeClock(t0.Add(time.Hour)), log: logr.Discard()}, kube
}

// replacing is configuration "app" whose session "hourly" has
// concurrencyPolicy p.
func replacing(p corev1alpha1.ConcurrencyPolicy) *corev1alpha1.BackupConfiguration {
	bc := configuration(0, 0, 1)
	bc.Spec.Sessions[0].Scheduler = &corev1alpha1.SchedulerSpec{Schedule: "0 * * * *", ConcurrencyPolicy: p}
	bc.Status.Phase = corev1alpha1.BackupInvokerReady
	return bc
}

// replacedRun is finished(...) marked replaced by newer.
func replacedRun(name string, age time.Duration, p corev1alpha1.BackupSessionPhase, newer string) *corev1alpha1.BackupSession {
	bs := finished(name, age, p, 0)
	bs.SetConditions(xpv2.Condition{Type: corev1alpha1.TypeBackupReplaced, Status: corev1.ConditionTrue, Reason: corev1alpha1.ReasonReplacedByNewerRun, Message: replacedBy(newer)})
	return &bs
}

// snapshotOf is the Snapshot of repository app that run took, holding the
// ended pods given.
func snapshotOf(run string, phase storagev1alpha1.SnapshotPhase, ended ...string) *storagev1alpha1.Snapshot {
	s := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "app-" + run, Namespace: "demo"},
		Spec:       storagev1alpha1.SnapshotSpec{Repository: "app", BackupSession: run},
		Status:     storagev1alpha1.SnapshotStatus{Phase: phase},
	}
	setPods(s, storagev1alpha1.AnnotationEndedPods, ended)
	return s
}

func podIn(name string, phase corev1.PodPhase, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", Labels: labels}, Status: corev1.PodStatus{Phase: phase}}
}

// TestReplaceOlder shows what a run of a Replace session does with the
// older runs of its session before it makes its Snapshots.
func TestReplaceOlder(t *testing.T) {
	type want struct {
		Stop     bool
		Reason   xpv2.ConditionReason
		Message  string
		Marked   []string
		Pods     map[string][]string
		Deadline bool
	}
	running := func(name string, age time.Duration) *corev1alpha1.BackupSession {
		bs := finished(name, age, corev1alpha1.BackupSessionRunning, 0)
		return &bs
	}
	otherConfig := running("db-hourly-0", 0)
	otherConfig.Spec.Invoker.Name = "db"
	cases := map[string]struct {
		reason  string
		policy  corev1alpha1.ConcurrencyPolicy
		waited  bool
		timeout bool
		objs    []client.Object
		want    want
	}{
		"MarksAndWaits": {
			reason: "An older run still going is marked replaced, naming the new run, and the new run waits for it.",
			policy: corev1alpha1.ConcurrencyReplace,
			objs:   []client.Object{running("app-hourly-0", 0)},
			want: want{Stop: true, Reason: corev1alpha1.ReasonWaitingForReplacedRun, Marked: []string{"app-hourly-0"},
				Message: `waiting for backupsession "app-hourly-0", which this run replaces, to end`},
		},
		"PendingOlderMarked": {
			reason: "An older run that has not started (waiting for a prune, say) is replaced too.",
			policy: corev1alpha1.ConcurrencyReplace,
			objs:   []client.Object{func() *corev1alpha1.BackupSession { b := running("app-hourly-0", 0); b.Status.Phase = ""; return b }()},
			want: want{Stop: true, Reason: corev1alpha1.ReasonWaitingForReplacedRun, Marked: []string{"app-hourly-0"},
				Message: `waiting for backupsession "app-hourly-0", which this run replaces, to end`},
		},
		"ForbidLeavesOthers": {
			reason: "Without Replace, nothing is marked and nothing waits (checkSkip handles Forbid).",
			policy: corev1alpha1.ConcurrencyForbid,
			objs:   []client.Object{running("app-hourly-0", 0)},
		},
		"AllowLeavesOthers": {
			reason: "Allow runs both.",
			policy: corev1alpha1.ConcurrencyAllow,
			objs:   []client.Object{running("app-hourly-0", 0)},
		},
		"NewerUntouched": {
			reason: "A newer run is never replaced by an older one.",
			policy: corev1alpha1.ConcurrencyReplace,
			objs:   []client.Object{running("app-hourly-9", 2*time.Minute)},
			want:   want{Pods: map[string][]string{}},
		},
		"OtherConfigurationUntouched": {
			reason: "Runs of another configuration are not this run's to replace.",
			policy: corev1alpha1.ConcurrencyReplace,
			objs:   []client.Object{otherConfig},
			want:   want{Pods: map[string][]string{}},
		},
		"EndedPodsGone": {
			reason: "Once the replaced run ended and its pods are gone, the run goes on with their names for its Snapshots.",
			policy: corev1alpha1.ConcurrencyReplace,
			objs: []client.Object{replacedRun("app-hourly-0", 0, corev1alpha1.BackupSessionFailed, "app-hourly-1"),
				snapshotOf("app-hourly-0", storagev1alpha1.SnapshotFailed, "app-hourly-0-backup-x7k2q")},
			want: want{Pods: map[string][]string{"app": {"app-hourly-0-backup-x7k2q"}}},
		},
		"EndedPodFinished": {
			reason: "A pod that Failed runs nothing any more.",
			policy: corev1alpha1.ConcurrencyReplace,
			objs: []client.Object{replacedRun("app-hourly-0", 0, corev1alpha1.BackupSessionFailed, "app-hourly-1"),
				snapshotOf("app-hourly-0", storagev1alpha1.SnapshotFailed, "app-hourly-0-backup-x7k2q"),
				podIn("app-hourly-0-backup-x7k2q", corev1.PodFailed, nil)},
			want: want{Pods: map[string][]string{"app": {"app-hourly-0-backup-x7k2q"}}},
		},
		"EndedPodStillRuns": {
			reason: "A pod of the replaced run that still runs (being deleted) may hold a live lock: the run waits.",
			policy: corev1alpha1.ConcurrencyReplace,
			objs: []client.Object{replacedRun("app-hourly-0", 0, corev1alpha1.BackupSessionFailed, "app-hourly-1"),
				snapshotOf("app-hourly-0", storagev1alpha1.SnapshotFailed, "app-hourly-0-backup-x7k2q"),
				podIn("app-hourly-0-backup-x7k2q", corev1.PodRunning, nil)},
			want: want{Stop: true, Reason: corev1alpha1.ReasonWaitingForReplacedRun,
				Message: `waiting for pod "app-hourly-0-backup-x7k2q" of backupsession "app-hourly-0", which this run replaced, to end`},
		},
		"ReplacedByAnother": {
			reason: "The pods of a run another run replaced are that run's to hand on.",
			policy: corev1alpha1.ConcurrencyReplace,
			objs: []client.Object{replacedRun("app-hourly-0", 0, corev1alpha1.BackupSessionFailed, "app-hourly-x"),
				snapshotOf("app-hourly-0", storagev1alpha1.SnapshotFailed, "app-hourly-0-backup-x7k2q")},
			want: want{Pods: map[string][]string{}},
		},
		"DeadlineAfterWait": {
			reason:  "A run that waited counts its backupTimeout from the end of the wait.",
			policy:  corev1alpha1.ConcurrencyReplace,
			waited:  true,
			timeout: true,
			want:    want{Pods: map[string][]string{}, Deadline: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bc := replacing(tc.policy)
			bs := finished("app-hourly-1", time.Minute, "", 0)
			bs.Status.Conditions = nil
			if tc.waited {
				bs.SetConditions(xpv2.Condition{Type: corev1alpha1.TypeSnapshotsEnsured, Status: corev1.ConditionFalse, Reason: corev1alpha1.ReasonWaitingForReplacedRun})
			}
			if tc.timeout {
				bs.Spec.BackupTimeout = &metav1.Duration{Duration: time.Hour}
			}
			r, kube := newReplaceReconciler(t, append(tc.objs, bc, &bs)...)
			rn := &run{bs: &bs, bc: bc}
			_, stop, err := r.replaceOlder(context.Background(), rn)
			if err != nil {
				t.Fatal(err)
			}
			c := bs.GetCondition(corev1alpha1.TypeSnapshotsEnsured)
			got := want{Stop: stop, Pods: rn.replacedPods, Deadline: bs.Status.BackupDeadline != nil}
			if stop {
				got.Reason, got.Message = c.Reason, c.Message
			}
			list := &corev1alpha1.BackupSessionList{}
			if err := kube.List(context.Background(), list); err != nil {
				t.Fatal(err)
			}
			for _, o := range list.Items {
				if c := o.GetCondition(corev1alpha1.TypeBackupReplaced); c.Status == corev1.ConditionTrue && c.Message == replacedBy(bs.Name) && o.Status.Phase != corev1alpha1.BackupSessionFailed {
					got.Marked = append(got.Marked, o.Name)
				}
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nreplaceOlder(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestEndIfReplaced shows how a run a newer one replaced ends.
func TestEndIfReplaced(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "app-hourly-0-backup", Namespace: "demo", UID: "job-uid",
		Labels: map[string]string{corev1alpha1.LabelBackupSession: "app-hourly-0", storagev1alpha1.LabelRepository: "app"}}}
	otherJob := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "app-hourly-1-backup", Namespace: "demo", UID: "other-uid",
		Labels: map[string]string{corev1alpha1.LabelBackupSession: "app-hourly-1", storagev1alpha1.LabelRepository: "app"}}}
	type want struct {
		Stop    bool
		Skipped xpv2.Condition
		Ended   string
		Pods    []string
		Jobs    []string
	}
	running := func(replaced bool, ensured bool) *corev1alpha1.BackupSession {
		bs := finished("app-hourly-0", 0, corev1alpha1.BackupSessionRunning, 0)
		bs.Status.Snapshots[0].Phase = storagev1alpha1.SnapshotRunning
		if !ensured {
			bs.Status.Conditions = nil
			bs.Status.Snapshots = nil
		}
		if replaced {
			bs.SetConditions(xpv2.Condition{Type: corev1alpha1.TypeBackupReplaced, Status: corev1.ConditionTrue, Reason: corev1alpha1.ReasonReplacedByNewerRun, Message: replacedBy("app-hourly-1")})
		}
		return &bs
	}
	cases := map[string]struct {
		reason string
		bs     *corev1alpha1.BackupSession
		want   want
	}{
		"NotReplaced": {
			reason: "A run no newer run replaced goes on; its Jobs stay.",
			bs:     running(false, true),
			want:   want{Jobs: []string{"app-hourly-0-backup", "app-hourly-1-backup"}},
		},
		"NotStarted": {
			reason: "A replaced run that made no Snapshot yet is Skipped, saying by which run.",
			bs:     running(true, false),
			want: want{Stop: true, Jobs: []string{"app-hourly-0-backup", "app-hourly-1-backup"},
				Skipped: xpv2.Condition{Type: corev1alpha1.TypeBackupSkipped, Status: corev1.ConditionTrue, Reason: corev1alpha1.ReasonReplacedByNewerRun, Message: replacedBy("app-hourly-1")}},
		},
		"Running": {
			reason: "A replaced run that is backing up records its Jobs' pods on its unfinished Snapshot, deletes its own Jobs (not the new run's) and ends.",
			bs:     running(true, true),
			want: want{Ended: "the run was ended: " + replacedBy("app-hourly-1"), Pods: []string{"app-hourly-0-backup-x7k2q"},
				Jobs: []string{"app-hourly-1-backup"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bc := replacing(corev1alpha1.ConcurrencyReplace)
			pod := podIn("app-hourly-0-backup-x7k2q", corev1.PodRunning, map[string]string{batchv1.ControllerUidLabel: "job-uid"})
			other := podIn("app-hourly-1-backup-bcdfg", corev1.PodRunning, map[string]string{batchv1.ControllerUidLabel: "other-uid"})
			r, kube := newReplaceReconciler(t, bc, tc.bs, snapshotOf("app-hourly-0", storagev1alpha1.SnapshotRunning),
				job.DeepCopy(), otherJob.DeepCopy(), pod, other)
			rn := &run{bs: tc.bs, bc: bc}
			_, stop, err := r.endIfReplaced(context.Background(), rn)
			if err != nil {
				t.Fatal(err)
			}
			got := want{Stop: stop, Ended: rn.ended}
			if c := tc.bs.GetCondition(corev1alpha1.TypeBackupSkipped); c.Status == corev1.ConditionTrue {
				got.Skipped = c
			}
			snap := &storagev1alpha1.Snapshot{}
			if err := kube.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "app-app-hourly-0"}, snap); err != nil {
				t.Fatal(err)
			}
			got.Pods = podsOf(snap, storagev1alpha1.AnnotationEndedPods)
			for _, j := range []*batchv1.Job{job, otherJob} {
				if err := kube.Get(context.Background(), client.ObjectKeyFromObject(j), &batchv1.Job{}); err == nil {
					got.Jobs = append(got.Jobs, j.Name)
				} else if !kerrors.IsNotFound(err) {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(xpv2.Condition{}, "LastTransitionTime", "ObservedGeneration")); diff != "" {
				t.Errorf("%s\nendIfReplaced(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestReplacedRunFails shows that the unfinished Snapshots of a replaced
// run fail with ReplacedByNewerRun, the run fails, and it is not retried.
func TestReplacedRunFails(t *testing.T) {
	bc := replacing(corev1alpha1.ConcurrencyReplace)
	bs := replacedRun("app-hourly-0", 0, corev1alpha1.BackupSessionRunning, "app-hourly-1")
	bs.Spec.RetryLeft = 2
	snap := snapshotOf("app-hourly-0", storagev1alpha1.SnapshotRunning)
	r, kube := newReplaceReconciler(t, bc, bs, snap)
	rn := &run{bs: bs, bc: bc, ended: "the run was ended: " + replacedBy("app-hourly-1"), snaps: []*storagev1alpha1.Snapshot{snap}}
	if _, _, err := r.outcome(context.Background(), rn); err != nil {
		t.Fatal(err)
	}
	got := &storagev1alpha1.Snapshot{}
	if err := kube.Get(context.Background(), client.ObjectKeyFromObject(snap), got); err != nil {
		t.Fatal(err)
	}
	type result struct {
		Snapshot  storagev1alpha1.SnapshotPhase
		Condition xpv2.Condition
		Session   corev1alpha1.BackupSessionPhase
		Retry     bool
	}
	want := result{
		Snapshot: storagev1alpha1.SnapshotFailed,
		Condition: xpv2.Condition{Type: storagev1alpha1.TypeBackupIncomplete, Status: corev1.ConditionTrue, Reason: storagev1alpha1.ReasonReplacedByNewerRun,
			Message: "the run was ended: " + replacedBy("app-hourly-1")},
		Session: corev1alpha1.BackupSessionFailed,
	}
	gotResult := result{Snapshot: got.Status.Phase, Condition: got.GetCondition(storagev1alpha1.TypeBackupIncomplete), Session: phase(bs), Retry: owesRetry(bs)}
	if diff := cmp.Diff(want, gotResult, cmpopts.IgnoreFields(xpv2.Condition{}, "LastTransitionTime", "ObservedGeneration")); diff != "" {
		t.Errorf("a replaced run's outcome: -want +got:\n%s", diff)
	}
}
