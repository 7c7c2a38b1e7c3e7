package restoresession

import (
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func snap(name, repo string, p storagev1alpha1.SnapshotPhase, at int64) storagev1alpha1.Snapshot {
	s := storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: name}}
	s.Spec.Repository = repo
	s.Status.Phase = p
	s.Status.SnapshotTime = ptr.To(metav1.Unix(at, 0))
	return s
}

func TestResolveSnapshot(t *testing.T) {
	snaps := []storagev1alpha1.Snapshot{
		snap("app-1", "app", storagev1alpha1.SnapshotSucceeded, 100),
		snap("app-2", "app", storagev1alpha1.SnapshotSucceeded, 200),
		snap("app-3", "app", storagev1alpha1.SnapshotFailed, 300),
		snap("other-1", "other", storagev1alpha1.SnapshotSucceeded, 400),
	}
	cases := map[string]struct {
		reason     string
		name, repo string
		want       string
		wantReason xpv2.ConditionReason
		wantMsg    string
	}{
		"Latest": {
			reason: "latest is the newest Succeeded Snapshot of the repository, not a newer Failed one nor another repository's.",
			name:   "latest", repo: "app", want: "app-2",
		},
		"Named": {
			reason: "A named Succeeded Snapshot of the repository is restored.",
			name:   "app-1", repo: "app", want: "app-1",
		},
		"LatestNone": {
			reason: "A repository without a Succeeded Snapshot has no latest.",
			name:   "latest", repo: "empty", wantReason: corev1alpha1.ReasonRestoreSnapshotNotFound,
			wantMsg: `repository "empty" has no Succeeded snapshot`,
		},
		"Missing": {
			reason: "A Snapshot that does not exist is refused.",
			name:   "app-9", repo: "app", wantReason: corev1alpha1.ReasonRestoreSnapshotNotFound,
			wantMsg: `snapshot "app-9" does not exist`,
		},
		"OtherRepository": {
			reason: "A Snapshot of another repository is refused.",
			name:   "other-1", repo: "app", wantReason: corev1alpha1.ReasonRestoreSnapshotNotFound,
			wantMsg: `snapshot "other-1" belongs to repository "other", not "app"`,
		},
		"NotSucceeded": {
			reason: "A Failed Snapshot is not restored.",
			name:   "app-3", repo: "app", wantReason: corev1alpha1.ReasonRestoreSnapshotNotSucceeded,
			wantMsg: `snapshot "app-3" is Failed, not Succeeded`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, reason, msg := resolveSnapshot(tc.name, tc.repo, snaps)
			got := ""
			if s != nil {
				got = s.Name
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nresolveSnapshot(): -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantReason, reason); diff != "" {
				t.Errorf("%s\nreason: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantMsg, msg); diff != "" {
				t.Errorf("%s\nmessage: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func cond(t xpv2.ConditionType, ok bool, r xpv2.ConditionReason) xpv2.Condition {
	c := xpv2.Condition{Type: t, Status: corev1.ConditionTrue, Reason: r}
	if !ok {
		c.Status = corev1.ConditionFalse
	}
	return c
}

func TestPhase(t *testing.T) {
	ensured := cond(corev1alpha1.TypeRestoreExecutorEnsured, true, corev1alpha1.ReasonRestoreExecutorEnsured)
	comps := func(phases ...corev1alpha1.RestorePhase) map[string]corev1alpha1.ComponentRestoreStatus {
		out := map[string]corev1alpha1.ComponentRestoreStatus{}
		for i, p := range phases {
			out[string(rune('a'+i))] = corev1alpha1.ComponentRestoreStatus{Phase: p}
		}
		return out
	}
	cases := map[string]struct {
		reason string
		conds  []xpv2.Condition
		comps  map[string]corev1alpha1.ComponentRestoreStatus
		total  int32
		want   corev1alpha1.RestorePhase
	}{
		"New": {reason: "A session with no condition is Pending.", want: corev1alpha1.RestorePending},
		"NotCreated": {reason: "A Job that could not be created yet leaves the session Pending.",
			conds: []xpv2.Condition{cond(corev1alpha1.TypeRestoreExecutorEnsured, false, corev1alpha1.ReasonRestoreExecutorNotEnsured)},
			want:  corev1alpha1.RestorePending},
		"Invalid": {reason: "A session that cannot run as written is Invalid.",
			conds: []xpv2.Condition{cond(corev1alpha1.TypeRestoreExecutorEnsured, false, corev1alpha1.ReasonRestoreSpecInvalid)},
			want:  corev1alpha1.RestoreInvalid},
		"TargetNotFound": {reason: "A missing target fails the session.",
			conds: []xpv2.Condition{cond(corev1alpha1.TypeRestoreTargetFound, false, corev1alpha1.ReasonRestoreTargetNotFound)},
			want:  corev1alpha1.RestoreFailed},
		"SnapshotNotSucceeded": {reason: "A refused snapshot fails the session.",
			conds: []xpv2.Condition{cond(corev1alpha1.TypeRestoreExecutorEnsured, false, corev1alpha1.ReasonRestoreSnapshotNotSucceeded)},
			want:  corev1alpha1.RestoreFailed},
		"Running": {reason: "Ensured Jobs with components still going are Running.",
			conds: []xpv2.Condition{ensured}, comps: comps(corev1alpha1.RestoreSucceeded, corev1alpha1.RestoreRunning), total: 2,
			want: corev1alpha1.RestoreRunning},
		"Succeeded": {reason: "Every component succeeded.",
			conds: []xpv2.Condition{ensured}, comps: comps(corev1alpha1.RestoreSucceeded, corev1alpha1.RestoreSucceeded), total: 2,
			want: corev1alpha1.RestoreSucceeded},
		"ComponentFailed": {reason: "One failed component fails the session.",
			conds: []xpv2.Condition{ensured}, comps: comps(corev1alpha1.RestoreSucceeded, corev1alpha1.RestoreFailed), total: 2,
			want: corev1alpha1.RestoreFailed},
		"ComponentFailedOthersRunning": {reason: "A failed component waits for the others to end: stopping them would leave their data half restored.",
			conds: []xpv2.Condition{ensured}, comps: comps(corev1alpha1.RestoreRunning, corev1alpha1.RestoreFailed), total: 2,
			want: corev1alpha1.RestoreRunning},
		"TimedOut": {reason: "An incomplete restore is Failed.",
			conds: []xpv2.Condition{ensured, cond(corev1alpha1.TypeRestoreIncomplete, true, corev1alpha1.ReasonRestoreTimedOut)},
			comps: comps(corev1alpha1.RestoreRunning), total: 1, want: corev1alpha1.RestoreFailed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rs := &corev1alpha1.RestoreSession{}
			rs.SetConditions(tc.conds...)
			rs.Status.Components, rs.Status.TotalComponents = tc.comps, tc.total
			if diff := cmp.Diff(tc.want, phase(rs)); diff != "" {
				t.Errorf("%s\nphase(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func job(component string, active int32, ct batchv1.JobConditionType) batchv1.Job {
	j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "r-" + component, Labels: map[string]string{corev1alpha1.LabelComponent: component}}}
	j.Status.Active = active
	if ct != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: ct, Status: corev1.ConditionTrue, Message: "backoff limit"}}
	}
	return j
}

func TestObserve(t *testing.T) {
	pending := map[string]corev1alpha1.ComponentRestoreStatus{"dump": {Phase: corev1alpha1.RestorePending}}
	type c = corev1alpha1.ComponentRestoreStatus
	cases := map[string]struct {
		reason     string
		prev       map[string]c
		jobs       []batchv1.Job
		settled    bool
		stuck      map[string]string
		want       map[string]c
		wantReason xpv2.ConditionReason
	}{
		"Active": {reason: "A Job that runs makes its component Running.",
			prev: pending, jobs: []batchv1.Job{job("dump", 1, "")},
			want: map[string]c{"dump": {Phase: corev1alpha1.RestoreRunning}}},
		"JobComplete": {reason: "Without a report, a complete Job makes its component Succeeded.",
			prev: pending, jobs: []batchv1.Job{job("dump", 0, batchv1.JobComplete)},
			want: map[string]c{"dump": {Phase: corev1alpha1.RestoreSucceeded}}},
		"JobFailed": {reason: "Without a report, a failed Job fails its component and the restore.",
			prev: pending, jobs: []batchv1.Job{job("dump", 0, batchv1.JobFailed)},
			want:       map[string]c{"dump": {Phase: corev1alpha1.RestoreFailed, Error: `restore job "r-dump" failed: backoff limit`}},
			wantReason: corev1alpha1.ReasonRestoreExecutorFailed},
		"Reported": {reason: "What the agent reported wins over the Job's outcome.",
			prev:       map[string]c{"dump": {Phase: corev1alpha1.RestoreFailed, Error: "WrongPassword: wrong password"}},
			jobs:       []batchv1.Job{job("dump", 0, batchv1.JobFailed)},
			want:       map[string]c{"dump": {Phase: corev1alpha1.RestoreFailed, Error: "WrongPassword: wrong password"}},
			wantReason: corev1alpha1.ReasonRestoreExecutorFailed},
		"Unstartable": {reason: "A Job whose pod cannot start fails its component and the restore.",
			prev: pending, jobs: []batchv1.Job{job("dump", 1, "")}, stuck: map[string]string{"r-dump": "pod p cannot start"},
			want:       map[string]c{"dump": {Phase: corev1alpha1.RestoreFailed, Error: `restore job "r-dump": pod p cannot start`}},
			wantReason: corev1alpha1.ReasonRestoreExecutorFailed},
		"FailedWhileOthersRun": {reason: "A reported failure makes the restore incomplete only once the other components ended.",
			prev: map[string]c{"dump-pod-0": {Phase: corev1alpha1.RestorePending}, "dump-pod-1": {Phase: corev1alpha1.RestoreFailed, Error: "DamagedPack"}},
			jobs: []batchv1.Job{job("dump-pod-0", 1, ""), job("dump-pod-1", 0, batchv1.JobFailed)},
			want: map[string]c{"dump-pod-0": {Phase: corev1alpha1.RestoreRunning}, "dump-pod-1": {Phase: corev1alpha1.RestoreFailed, Error: "DamagedPack"}}},
		"FailedOthersEnded": {reason: "Once the others ended, the failure makes the restore incomplete.",
			prev:       map[string]c{"dump-pod-0": {Phase: corev1alpha1.RestoreSucceeded}, "dump-pod-1": {Phase: corev1alpha1.RestoreFailed, Error: "DamagedPack"}},
			jobs:       []batchv1.Job{job("dump-pod-0", 0, batchv1.JobComplete), job("dump-pod-1", 0, batchv1.JobFailed)},
			want:       map[string]c{"dump-pod-0": {Phase: corev1alpha1.RestoreSucceeded}, "dump-pod-1": {Phase: corev1alpha1.RestoreFailed, Error: "DamagedPack"}},
			wantReason: corev1alpha1.ReasonRestoreExecutorFailed},
		"JustCreated": {reason: "A Job not yet seen right after it was made is not gone.",
			prev: pending, want: pending},
		"Gone": {reason: "A Job that vanished fails its component.",
			prev: pending, settled: true,
			want:       map[string]c{"dump": {Phase: corev1alpha1.RestoreFailed, Error: "the restore job is gone"}},
			wantReason: corev1alpha1.ReasonRestoreExecutorFailed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, reason, _ := observe(tc.prev, tc.jobs, tc.settled, tc.stuck)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nobserve(): -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantReason, reason); diff != "" {
				t.Errorf("%s\nreason: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestEnsuredLongAgo(t *testing.T) {
	rs := &corev1alpha1.RestoreSession{}
	now := time.Now()
	rs.SetConditions(xpv2.Condition{Type: corev1alpha1.TypeRestoreExecutorEnsured, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Second))})
	if ensuredLongAgo(rs, now) {
		t.Errorf("Jobs made a second ago count as settled")
	}
	if !ensuredLongAgo(rs, now.Add(time.Minute)) {
		t.Errorf("Jobs made a minute ago do not count as settled")
	}
}

func TestWithReadDataSubset(t *testing.T) {
	env := []corev1.EnvVar{{Name: "KEEP", Value: "1"}}
	cases := map[string]struct {
		reason string
		subset string
		want   [][]corev1.EnvVar
	}{
		"None": {reason: "Without a subset the containers are left alone.",
			want: [][]corev1.EnvVar{env, nil}},
		"Subset": {reason: "A subset reaches every container's agent through its environment.", subset: "10%",
			want: [][]corev1.EnvVar{
				{{Name: "KEEP", Value: "1"}, {Name: "STASHPLANE_READ_DATA_SUBSET", Value: "10%"}},
				{{Name: "STASHPLANE_READ_DATA_SUBSET", Value: "10%"}},
			}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "restore", Env: append([]corev1.EnvVar(nil), env...)}, {Name: "other"}}}
			withReadDataSubset(spec, tc.subset)
			got := [][]corev1.EnvVar{spec.Containers[0].Env, spec.Containers[1].Env}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nwithReadDataSubset(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
