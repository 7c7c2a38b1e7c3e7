package sessionrun

import (
	"context"
	"errors"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

func TestSetCondition(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
	SetCondition(clk, rs, corev1alpha1.TypeRestoreExecutorEnsured, false, corev1alpha1.ReasonRestoreExecutorNotEnsured, "cannot create job")
	want := xpv2.Condition{Type: corev1alpha1.TypeRestoreExecutorEnsured, Status: corev1.ConditionFalse,
		Reason: corev1alpha1.ReasonRestoreExecutorNotEnsured, Message: "cannot create job", LastTransitionTime: metav1.NewTime(t0), ObservedGeneration: 3}
	if diff := cmp.Diff(want, rs.GetCondition(corev1alpha1.TypeRestoreExecutorEnsured)); diff != "" {
		t.Errorf("SetCondition records the clock's time and the generation: -want +got:\n%s", diff)
	}
	clk.Step(time.Minute)
	SetCondition(clk, rs, corev1alpha1.TypeRestoreExecutorEnsured, false, corev1alpha1.ReasonRestoreExecutorNotEnsured, "cannot create job")
	if got := rs.GetCondition(corev1alpha1.TypeRestoreExecutorEnsured).LastTransitionTime; !got.Time.Equal(t0) {
		t.Errorf("an unchanged condition moved its transition time to %s", got)
	}
}

func TestDeadline(t *testing.T) {
	hour := &metav1.Duration{Duration: time.Hour}
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	cases := map[string]struct {
		reason  string
		timeout *metav1.Duration
		started bool
		want    *time.Time
	}{
		"Timeout":         {reason: "A session's own timeout counts from its creation.", timeout: hour, started: true, want: at(time.Hour)},
		"TimeoutStarting": {reason: "It also bounds a run that cannot create its Jobs.", timeout: hour, want: at(time.Hour)},
		"NoTimeoutStarting": {reason: "Without one, a run that cannot create its Jobs fails after StartTimeout.",
			want: at(StartTimeout)},
		"NoTimeoutStarted": {reason: "Without one, a run whose Jobs exist has no deadline.", started: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Deadline(t0, tc.timeout, tc.started)); diff != "" {
				t.Errorf("\n%s\nDeadline(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRetryAt(t *testing.T) {
	now := t0.Add(time.Hour)
	cases := map[string]struct {
		reason   string
		duration string
		want     time.Time
	}{
		"FromTheEnd": {reason: "The delay counts from the end of the run: creation plus its duration.", duration: "10m0s", want: t0.Add(15 * time.Minute)},
		"NoDuration": {reason: "A run whose duration is not recorded yet ends now.", want: now.Add(5 * time.Minute)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, RetryAt(t0, tc.duration, 5*time.Minute, now)); diff != "" {
				t.Errorf("\n%s\nRetryAt(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestBeyondHistory(t *testing.T) {
	run := func(name string, age time.Duration, skipped, keep bool) Run {
		return Run{Name: name, Created: t0.Add(age), Skipped: skipped, Keep: keep}
	}
	cases := map[string]struct {
		reason string
		runs   []Run
		limit  int
		want   []string
	}{
		"NewestKept": {reason: "The newest runs within the limit stay; the older go, newest first.",
			runs: []Run{run("a", 0, false, false), run("b", 1, false, false), run("c", 2, false, false)}, limit: 1, want: []string{"b", "a"}},
		"SkippedApart": {reason: "Skipped runs are counted apart from runs that gave a result.",
			runs: []Run{run("a", 0, false, false), run("k1", 1, true, false), run("k2", 2, true, false)}, limit: 1, want: []string{"k1"}},
		"Keep": {reason: "A run marked Keep is never deleted.",
			runs: []Run{run("a", 0, false, true), run("b", 1, false, false)}, limit: 1},
		"Zero": {reason: "A limit of zero keeps only what is marked Keep.",
			runs: []Run{run("a", 0, false, false), run("b", 1, false, true)}, want: []string{"a"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, BeyondHistory(tc.runs, tc.limit)); diff != "" {
				t.Errorf("\n%s\nBeyondHistory(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRunSteps(t *testing.T) {
	step := func(name string, stop bool, err error) Step[*[]string] {
		return Step[*[]string]{Name: name, Run: func(_ context.Context, ran *[]string) (ctrl.Result, bool, error) {
			*ran = append(*ran, name)
			return ctrl.Result{RequeueAfter: time.Duration(len(*ran)) * time.Second}, stop, err
		}}
	}
	boom := errors.New("boom")
	cases := map[string]struct {
		reason  string
		steps   []Step[*[]string]
		want    []string
		wantRes ctrl.Result
		wantErr error
	}{
		"All":   {reason: "Steps run in order; the soonest requeue any asked for is returned.", steps: []Step[*[]string]{step("a", false, nil), step("b", false, nil)}, want: []string{"a", "b"}, wantRes: ctrl.Result{RequeueAfter: time.Second}},
		"Stops": {reason: "A step that stops ends the run with its result.", steps: []Step[*[]string]{step("a", true, nil), step("b", false, nil)}, want: []string{"a"}, wantRes: ctrl.Result{RequeueAfter: time.Second}},
		"Fails": {reason: "A step that fails ends the run with its error.", steps: []Step[*[]string]{step("a", false, boom), step("b", false, nil)}, want: []string{"a"}, wantRes: ctrl.Result{RequeueAfter: time.Second}, wantErr: boom},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var ran []string
			res, err := RunSteps(context.Background(), &ran, tc.steps)
			if diff := cmp.Diff(tc.want, ran); diff != "" {
				t.Errorf("\n%s\nsteps run: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantRes, res); diff != "" {
				t.Errorf("\n%s\nresult: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantErr, err, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("\n%s\nerror: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// RunAll runs every step, though one stops or fails, and joins the errors.
func TestRunAll(t *testing.T) {
	boom := errors.New("boom")
	var ran []string
	step := func(name string, wait time.Duration, err error) Step[*[]string] {
		return Step[*[]string]{Name: name, Run: func(_ context.Context, ran *[]string) (ctrl.Result, bool, error) {
			*ran = append(*ran, name)
			return ctrl.Result{RequeueAfter: wait}, true, err
		}}
	}
	res, err := RunAll(context.Background(), &ran, []Step[*[]string]{step("scratch", 0, boom), step("lock", 0, nil), step("retry", time.Minute, nil)})
	if diff := cmp.Diff([]string{"scratch", "lock", "retry"}, ran); diff != "" {
		t.Errorf("RunAll ran: -want +got:\n%s", diff)
	}
	if !errors.Is(err, boom) || res.RequeueAfter != time.Minute {
		t.Errorf("RunAll() = %v, %v; want the retry's requeue and the scratch step's error", res, err)
	}
}

func TestGet(t *testing.T) {
	made := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "made"}}
	cases := map[string]struct {
		reason   string
		cache    []client.Object
		api      []client.Object
		noAPI    bool
		wantName string
		wantErr  bool
	}{
		"Cached":    {reason: "An object the cache holds is read from it.", cache: []client.Object{made}, wantName: "made"},
		"NotCached": {reason: "An object made a moment ago, not in the cache yet, is read from the API server.", api: []client.Object{made}, wantName: "made"},
		"Missing":   {reason: "An object neither holds does not exist.", wantErr: true},
		"NoAPI":     {reason: "Without an API reader the cache decides.", api: []client.Object{made}, noAPI: true, wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cache := fake.NewClientBuilder().WithObjects(tc.cache...).Build()
			var api client.Reader = fake.NewClientBuilder().WithObjects(tc.api...).Build()
			if tc.noAPI {
				api = nil
			}
			got := &corev1.Secret{}
			err := Get(context.Background(), cache, api, client.ObjectKey{Namespace: "ns", Name: "made"}, got)
			if (err != nil) != tc.wantErr || (err != nil && !kerrors.IsNotFound(err)) {
				t.Fatalf("%s\nGet(...): error %v, want an error: %t (NotFound)", tc.reason, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantName, got.Name); !tc.wantErr && diff != "" {
				t.Errorf("%s\nGet(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
