package backupsession

import (
	"context"
	"errors"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

// finished is a session of configuration "app", session "hourly", created
// at t0 plus age, that ended in phase after running for ran.
func finished(name string, age time.Duration, p corev1alpha1.BackupSessionPhase, ran time.Duration) corev1alpha1.BackupSession {
	bs := corev1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", CreationTimestamp: metav1.NewTime(t0.Add(age))},
		Spec:       corev1alpha1.BackupSessionSpec{Invoker: storagev1alpha1.TypedObjectReference{Kind: "BackupConfiguration", Name: "app"}, Session: "hourly"},
	}
	switch p {
	case corev1alpha1.BackupSessionSkipped:
		bs.SetConditions(xpv2.Condition{Type: corev1alpha1.TypeBackupSkipped, Status: corev1.ConditionTrue})
	default:
		bs.SetConditions(xpv2.Condition{Type: corev1alpha1.TypeSnapshotsEnsured, Status: corev1.ConditionTrue})
		snap := storagev1alpha1.SnapshotSucceeded
		if p == corev1alpha1.BackupSessionFailed {
			snap = storagev1alpha1.SnapshotFailed
		}
		bs.Status.Snapshots = []corev1alpha1.SnapshotStatus{{Name: "app-" + name, Phase: snap}}
	}
	bs.Status.Phase = p
	bs.Status.Duration = ran.String()
	return bs
}

func configuration(maxRetry int32, delay time.Duration, history int32) *corev1alpha1.BackupConfiguration {
	bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "demo"}}
	bc.Spec.Sessions = []corev1alpha1.Session{{Name: "hourly", SessionHistoryLimit: history,
		RetryConfig: &corev1alpha1.RetryConfig{MaxRetry: maxRetry, Delay: metav1.Duration{Duration: delay}}}}
	return bc
}

func newReconciler(t *testing.T, now time.Time, objs ...client.Object) (*reconciler, client.Client, *clocktesting.FakeClock) {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, corev1alpha1.AddToScheme, storagev1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	kube := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithIndex(&storagev1alpha1.Snapshot{}, storagev1alpha1.SnapshotBackupSessionField, storagev1alpha1.SnapshotBackupSession).WithStatusSubresource(&storagev1alpha1.Snapshot{}).Build()
	clk := clocktesting.NewFakeClock(now)
	return &reconciler{kube: kube, api: kube, clock: clk, log: logr.Discard()}, kube, clk
}

// A failed backup is retried the configured delay after it ended, not
// after it was created, as verification sessions are; and only once.
func TestRetry(t *testing.T) {
	ctx := context.Background()
	bc := configuration(2, 5*time.Minute, 3)
	failed := finished("app-hourly-1", 0, corev1alpha1.BackupSessionFailed, 10*time.Minute)
	failed.Spec.RetryLeft = 2
	r, kube, clk := newReconciler(t, t0.Add(12*time.Minute), bc, &failed)

	res, err := r.afterwards(ctx, &failed, bc)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Minute; res.RequeueAfter != want || failed.Status.NextRetry == nil || !failed.Status.NextRetry.Time.Equal(t0.Add(15*time.Minute)) {
		t.Errorf("12 minutes after creation, 2 after the end: got requeue %s and next retry %v, want %s and %s",
			res.RequeueAfter, failed.Status.NextRetry, want, t0.Add(15*time.Minute))
	}
	list := &corev1alpha1.BackupSessionList{}
	if err := kube.List(ctx, list); err != nil || len(list.Items) != 1 {
		t.Fatalf("a retry was made before its delay passed: %d sessions, %v", len(list.Items), err)
	}

	clk.SetTime(t0.Add(15*time.Minute + time.Second))
	for range 2 {
		if _, err := r.afterwards(ctx, &failed, bc); err != nil {
			t.Fatal(err)
		}
	}
	if err := kube.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	var retries []string
	for _, o := range list.Items {
		if o.Name != failed.Name {
			retries = append(retries, o.Name)
			if o.Spec.RetryLeft != 1 {
				t.Errorf("retry %q has retryLeft %d, want 1", o.Name, o.Spec.RetryLeft)
			}
		}
	}
	if len(retries) != 1 || !ptr.Deref(failed.Status.Retried, false) {
		t.Errorf("once the delay passed: retries %v, retried %v; want one retry and the session marked retried", retries, failed.Status.Retried)
	}
}

func TestBeyondHistory(t *testing.T) {
	owes := finished("owes", time.Minute, corev1alpha1.BackupSessionFailed, time.Minute)
	owes.Spec.RetryLeft = 1
	other := finished("other", 0, corev1alpha1.BackupSessionSucceeded, time.Minute)
	other.Spec.Session = "daily"
	cases := map[string]struct {
		reason  string
		cleaner string
		all     []corev1alpha1.BackupSession
		limit   int
		want    []string
	}{
		"NewestKept": {
			reason:  "The newest finished sessions of the same session stay; other sessions are left alone.",
			cleaner: "s3", limit: 2,
			all: []corev1alpha1.BackupSession{
				finished("s1", time.Minute, corev1alpha1.BackupSessionSucceeded, time.Minute),
				finished("s2", 2*time.Minute, corev1alpha1.BackupSessionFailed, time.Minute),
				finished("s3", 3*time.Minute, corev1alpha1.BackupSessionSucceeded, time.Minute),
				other,
			},
			want: []string{"s1"},
		},
		"SkippedApart": {
			reason:  "Skipped sessions are counted apart: a run of them never pushes out the session that last gave a result.",
			cleaner: "k3", limit: 1,
			all: []corev1alpha1.BackupSession{
				finished("ok", 0, corev1alpha1.BackupSessionSucceeded, time.Minute),
				finished("k1", time.Minute, corev1alpha1.BackupSessionSkipped, 0),
				finished("k2", 2*time.Minute, corev1alpha1.BackupSessionSkipped, 0),
				finished("k3", 3*time.Minute, corev1alpha1.BackupSessionSkipped, 0),
			},
			want: []string{"k2", "k1"},
		},
		"KeepsItselfAndOwedRetries": {
			reason:  "The cleaning session and a failed session still owed a retry stay.",
			cleaner: "old", limit: 1,
			all: []corev1alpha1.BackupSession{
				finished("old", 0, corev1alpha1.BackupSessionSucceeded, time.Minute), owes,
				finished("new", 2*time.Minute, corev1alpha1.BackupSessionSucceeded, time.Minute),
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var cleaner *corev1alpha1.BackupSession
			for i := range tc.all {
				if tc.all[i].Name == tc.cleaner {
					cleaner = &tc.all[i]
				}
			}
			var got []string
			for _, o := range beyondHistory(cleaner, tc.all, tc.limit) {
				got = append(got, o.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\nbeyondHistory(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// A run whose Snapshots exist but whose Jobs cannot be created keeps
// trying until its deadline, then fails with its Snapshots incomplete, so
// that it no longer holds back the runs after it.
func TestCannotStart(t *testing.T) {
	cases := map[string]struct {
		reason  string
		timeout *metav1.Duration
		started bool
		at      time.Duration
		want    corev1alpha1.BackupSessionPhase
	}{
		"BeforeTheDeadline": {reason: "Before the deadline the run is retried.", at: 10 * time.Minute, want: corev1alpha1.BackupSessionRunning},
		"PastStartTimeout":  {reason: "A session without a timeout fails once StartTimeout passed.", at: 31 * time.Minute, want: corev1alpha1.BackupSessionFailed},
		"PastOwnTimeout": {reason: "A session's own timeout also bounds creating its Jobs.",
			timeout: &metav1.Duration{Duration: 5 * time.Minute}, at: 6 * time.Minute, want: corev1alpha1.BackupSessionFailed},
		"StartedWithoutTimeout": {reason: "A run whose Jobs were made once, without a timeout, is not failed for a later error.",
			started: true, at: time.Hour, want: corev1alpha1.BackupSessionRunning},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			bs := finished("app-hourly-1", 0, corev1alpha1.BackupSessionRunning, 0)
			bs.Spec.BackupTimeout = tc.timeout
			bs.Status.Snapshots = nil
			snap := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-app-hourly-1", Namespace: "demo"},
				Spec: storagev1alpha1.SnapshotSpec{BackupSession: bs.Name, Repository: "app"}, Status: storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotRunning}}
			r, kube, _ := newReconciler(t, t0.Add(tc.at), &bs, snap)
			cause := errors.New(`cannot create job "app-dump": forbidden`)
			_, err := r.cannotStart(ctx, &bs, tc.started, cause)
			if tc.want == corev1alpha1.BackupSessionRunning {
				if !errors.Is(err, cause) {
					t.Errorf("\n%s\ncannotStart(): got error %v, want the cause to retry", tc.reason, err)
				}
			} else if err != nil {
				t.Fatalf("cannotStart(): %v", err)
			}
			if bs.Status.Snapshots == nil {
				bs.Status.Snapshots = []corev1alpha1.SnapshotStatus{{Name: snap.Name, Phase: storagev1alpha1.SnapshotRunning}}
			}
			if diff := cmp.Diff(tc.want, phase(&bs)); diff != "" {
				t.Errorf("\n%s\nphase: -want +got:\n%s", tc.reason, diff)
			}
			if c := bs.GetCondition(corev1alpha1.TypeBackupExecutorEnsured); c.Status != corev1.ConditionFalse || c.Message != cause.Error() {
				t.Errorf("\n%s\nBackupExecutorEnsured does not name the cause: %+v", tc.reason, c)
			}
			got := &storagev1alpha1.Snapshot{}
			if err := kube.Get(ctx, client.ObjectKeyFromObject(snap), got); err != nil {
				t.Fatal(err)
			}
			incomplete := got.GetCondition(storagev1alpha1.TypeBackupIncomplete).Status == corev1.ConditionTrue
			if incomplete != (tc.want == corev1alpha1.BackupSessionFailed) {
				t.Errorf("\n%s\nSnapshot marked incomplete: %v", tc.reason, incomplete)
			}
		})
	}
}

// TestJobsMadeOnce: a run whose Jobs were made once never makes them
// again, even when one is gone (the outcome stopped it, or someone
// deleted it), so a Job the outcome stopped does not come back while the
// status that says so is not written yet.
func TestJobsMadeOnce(t *testing.T) {
	cases := map[string]struct {
		reason   string
		started  bool
		repo     string
		want     int
		wantStop bool
	}{
		"Started":    {reason: "A started run makes no Job and goes on to its outcome.", started: true, repo: "app", want: 0},
		"NotStarted": {reason: "A run not started yet makes its Jobs and stops there: the Jobs' creation wakes it.", started: false, repo: "app", want: 1, wantStop: true},
		"NoSnapshot": {reason: "A task whose repository got no Snapshot in the run (it was paused first) gets no Job.", started: false, repo: "other", want: 0, wantStop: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bs := finished("app-hourly-1", 0, corev1alpha1.BackupSessionRunning, 0)
			r, kube, _ := newReconciler(t, t0, &bs)
			r.renderer = render.New(render.Options{})
			snap := &storagev1alpha1.Snapshot{Spec: storagev1alpha1.SnapshotSpec{Repository: tc.repo}}
			rn := &run{bs: &bs, bc: configuration(0, 0, 1), started: tc.started, inputs: []render.Input{jobInput(t)}, snaps: []*storagev1alpha1.Snapshot{snap}}
			_, stop, err := r.jobs(context.Background(), rn)
			if err != nil {
				t.Fatalf("jobs(): %v", err)
			}
			if diff := cmp.Diff(tc.wantStop, stop); diff != "" {
				t.Errorf("\n%s\njobs() stops the steps: -want +got:\n%s", tc.reason, diff)
			}
			jobs := &batchv1.JobList{}
			if err := kube.List(context.Background(), jobs); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, len(jobs.Items)); diff != "" {
				t.Errorf("\n%s\nJobs made: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// jobInput is a task whose Function makes one Job.
func jobInput(t *testing.T) render.Input {
	t.Helper()
	addon := &addonsv1alpha1.Addon{ObjectMeta: metav1.ObjectMeta{Name: "a"},
		Spec: addonsv1alpha1.AddonSpec{BackupTasks: []addonsv1alpha1.Task{{Name: "t", Function: "f"}}}}
	fn := &addonsv1alpha1.Function{ObjectMeta: metav1.ObjectMeta{Name: "f"}, Spec: addonsv1alpha1.FunctionSpec{Template: `
#Params: {}
objects: [{
	apiVersion: "batch/v1"
	kind:       "Job"
	metadata: name: "app-hourly-1-t"
	spec: template: spec: {
		restartPolicy: "Never"
		containers: [{name: "c", image: "busybox", resources: requests: memory: "1Mi"}]
	}
}]
`}}
	return render.Input{Addon: addon, TaskKind: render.TaskBackup, Task: "t", Function: fn,
		Context: render.Context{Namespace: "demo", Component: "dump", Repository: render.Repository{Name: "app"}}}
}

// TestPlannedOnce: a run whose Jobs were made plans nothing again, so a
// target deleted while its Jobs run neither fails each pass nor turns the
// run back into one without Jobs; a run not started yet is planned, and
// the missing target is why it cannot start.
func TestPlannedOnce(t *testing.T) {
	cases := map[string]struct {
		reason   string
		started  bool
		wantErr  bool
		wantJobs corev1.ConditionStatus
	}{
		"Started": {reason: "A started run is not planned again; its Jobs stay recorded.",
			started: true, wantJobs: corev1.ConditionTrue},
		"NotStarted": {reason: "A run not started yet is planned, and its missing target stops it.",
			wantErr: true, wantJobs: corev1.ConditionFalse},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bs := finished("app-hourly-1", 0, corev1alpha1.BackupSessionRunning, 0)
			if tc.started {
				bs.SetConditions(xpv2.Condition{Type: corev1alpha1.TypeBackupExecutorEnsured, Status: corev1.ConditionTrue, Reason: corev1alpha1.ReasonBackupExecutorEnsured})
			}
			bc := configuration(0, 0, 1)
			bc.Spec.Target = &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "gone"}
			r, _, _ := newReconciler(t, t0, &bs, bc)
			rn := &run{bs: &bs, bc: bc}
			_, stop, err := r.planRun(context.Background(), rn)
			if diff := cmp.Diff(tc.wantErr, err != nil); diff != "" {
				t.Errorf("\n%s\nplanRun() error %v: -want +got:\n%s", tc.reason, err, diff)
			}
			if diff := cmp.Diff(tc.wantErr, stop); diff != "" {
				t.Errorf("\n%s\nplanRun() stops the steps: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.started, rn.started); diff != "" {
				t.Errorf("\n%s\nrun.started: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantJobs, bs.GetCondition(corev1alpha1.TypeBackupExecutorEnsured).Status); diff != "" {
				t.Errorf("\n%s\nBackupExecutorEnsured: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
