package hookrun

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/hook"
)

// jobs plays the Job side of Function hooks: each started Job answers
// Check with its outcomes in order (the last repeats); a Job never started
// is not found.
type jobs struct {
	outcomes map[string][]JobOutcome
	started  []string
	params   []map[string]any
	vars     []map[string]string
	invalid  string
}

func (j *jobs) Start(_ context.Context, a Attempt) error {
	if j.invalid != "" {
		return &Invalid{Reason: j.invalid}
	}
	j.started = append(j.started, a.Job)
	j.params = append(j.params, a.Params)
	j.vars = append(j.vars, a.Vars)
	return nil
}

func (j *jobs) Check(_ context.Context, _, name string, _ time.Duration, _ []string) (JobOutcome, error) {
	found := false
	for _, s := range j.started {
		found = found || s == name
	}
	if !found {
		return JobOutcome{}, nil
	}
	out := j.outcomes[name]
	if len(out) == 0 {
		return JobOutcome{Found: true}, nil
	}
	if len(out) > 1 {
		j.outcomes[name] = out[1:]
	}
	return out[0], nil
}

func ended(ok bool, out string) JobOutcome {
	r := hook.Result{Succeeded: ok, Output: out, Pods: []string{"p"}, Duration: time.Second}
	if !ok {
		r.Reason = hook.ReasonFailed
	}
	return JobOutcome{Found: true, Done: true, Result: r}
}

func TestFunctionHooks(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1alpha1.AddToScheme, corev1.AddToScheme, addonsv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	dump := &corev1alpha1.HookTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "dump"},
		Spec: corev1alpha1.HookTemplateSpec{
			Params: []addonsv1alpha1.ParameterDefinition{{Name: "count", Default: "1"}, {Name: "who", Default: "all"}},
			Executor: corev1alpha1.HookExecutor{Type: corev1alpha1.HookExecutorFunction,
				Function: &corev1alpha1.FunctionHookExecutorSpec{Name: "dump-fn", Env: []corev1.EnvVar{{Name: "TO", Value: "${who}"}}}},
		},
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithRuntimeObjects(dump, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}).Build()
	owner := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "run-1"}}
	type phase struct {
		Name, Phase, Reason, Output, Job string
		Attempts                         int32
	}
	cases := map[string]struct {
		reason      string
		hooks       []corev1alpha1.HookInfo
		status      []corev1alpha1.HookExecutionStatus
		outcomes    map[string][]JobOutcome
		invalid     string
		saveErr     error
		wantStarted []string
		wantState   State
		wantCalls   int
		want        []phase
	}{
		"StartedFollowedSucceeded": {
			reason:      "An attempt is a Job: started on one call, followed on the next until it ends.",
			hooks:       []corev1alpha1.HookInfo{info("dump", "dump")},
			outcomes:    map[string][]JobOutcome{"run-1-pre-dump-1": {{Found: true}, ended(true, "dumped 3 tables")}},
			wantStarted: []string{"run-1-pre-dump-1"}, wantState: Succeeded, wantCalls: 3,
			want: []phase{{"dump", "Succeeded", "", "dumped 3 tables", "run-1-pre-dump-1", 1}},
		},
		"FailedJobRetriedAsNewJob": {
			reason:   "A failed Job with retries left makes a new attempt under a new Job name.",
			hooks:    []corev1alpha1.HookInfo{info("dump", "dump", retry(1))},
			outcomes: map[string][]JobOutcome{"run-1-pre-dump-1": {ended(false, "exit 3")}, "run-1-pre-dump-2": {ended(true, "ok")}},
			// start 1, fail 1, start 2, succeed 2
			wantStarted: []string{"run-1-pre-dump-1", "run-1-pre-dump-2"}, wantState: Succeeded, wantCalls: 4,
			want: []phase{{"dump", "Succeeded", "", "ok", "run-1-pre-dump-2", 2}},
		},
		"FailedJobNoRetries": {
			reason:      "Without retries the hook fails with the Job's last line.",
			hooks:       []corev1alpha1.HookInfo{info("dump", "dump")},
			outcomes:    map[string][]JobOutcome{"run-1-pre-dump-1": {ended(false, "exit 3")}},
			wantStarted: []string{"run-1-pre-dump-1"}, wantState: Failed, wantCalls: 2,
			want: []phase{{"dump", "Failed", "HookFailed", "exit 3", "run-1-pre-dump-1", 1}},
		},
		"ClaimedNeverStarted": {
			reason:      "A claimed attempt whose Job was never created (the provider stopped in between) is started under the claimed name.",
			hooks:       []corev1alpha1.HookInfo{info("dump", "dump")},
			status:      []corev1alpha1.HookExecutionStatus{{Name: "dump", Phase: corev1alpha1.HookRunning, Attempts: 1, Job: "run-1-pre-dump-1"}},
			outcomes:    map[string][]JobOutcome{"run-1-pre-dump-1": {ended(true, "ok")}},
			wantStarted: []string{"run-1-pre-dump-1"}, wantState: Succeeded, wantCalls: 2,
			want: []phase{{"dump", "Succeeded", "", "ok", "run-1-pre-dump-1", 1}},
		},
		"StaleCopyStartsNothing": {
			reason:    "A copy of the session that cannot be written back never starts a Job.",
			hooks:     []corev1alpha1.HookInfo{info("dump", "dump")},
			status:    []corev1alpha1.HookExecutionStatus{{Name: "dump", Phase: corev1alpha1.HookRunning, Attempts: 1, Job: "run-1-pre-dump-1"}},
			saveErr:   errors.New("conflict"),
			wantState: Running, wantCalls: 1,
			want: []phase{{"dump", "Running", "", "", "run-1-pre-dump-1", 1}},
		},
		"VanishedAfterStart": {
			reason:    "A Job that was started and then vanished is an interrupted attempt.",
			hooks:     []corev1alpha1.HookInfo{info("dump", "dump")},
			status:    []corev1alpha1.HookExecutionStatus{{Name: "dump", Phase: corev1alpha1.HookRunning, Attempts: 1, Job: "run-1-pre-dump-1", Output: jobStarted}},
			wantState: Failed, wantCalls: 1,
			want: []phase{{"dump", "Failed", ReasonInterrupted, `job "run-1-pre-dump-1" vanished before it finished`, "run-1-pre-dump-1", 1}},
		},
		"InvalidFunction": {
			reason:    "A Function that cannot render fails the hook at once, whatever its retries.",
			hooks:     []corev1alpha1.HookInfo{info("dump", "dump", retry(3))},
			invalid:   `function "dump-fn" does not exist`,
			wantState: Failed, wantCalls: 1,
			want: []phase{{"dump", "Failed", "HookInvalid", `function "dump-fn" does not exist`, "run-1-pre-dump-1", 1}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			j := &jobs{outcomes: tc.outcomes, invalid: tc.invalid}
			e := &Executor{Kube: kube, Hooks: &script{}, Jobs: j}
			status := append([]corev1alpha1.HookExecutionStatus(nil), tc.status...)
			st := Stage{Namespace: "app", Hooks: tc.hooks, Status: &status, Owner: owner,
				Vars: Run{Kind: "BackupSession", Namespace: "app", Session: "run-1", Phase: "Running"}.Vars(),
				Save: func(context.Context) error { return tc.saveErr }}
			var rep Report
			calls := 0
			for calls < 10 {
				calls++
				var err error
				rep, err = e.Advance(context.Background(), st)
				if err != nil {
					if tc.saveErr == nil {
						t.Fatal(err)
					}
					break
				}
				if rep.State != Running {
					break
				}
			}
			var got []phase
			for _, h := range status {
				got = append(got, phase{h.Name, string(h.Phase), h.Reason, h.Output, h.Job, h.Attempts})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nstatus (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantStarted, j.started); diff != "" {
				t.Errorf("%s\njobs started (-want +got):\n%s", tc.reason, diff)
			}
			if rep.State != tc.wantState || calls != tc.wantCalls {
				t.Errorf("%s\nreport %v after %d calls, want %v after %d", tc.reason, rep.State, calls, tc.wantState, tc.wantCalls)
			}
		})
	}
}

// A Function hook's Job gets the params typed as the hook wrote them (the
// renderer fills the declared defaults) and the run's and hook's
// variables, not the params again.
func TestFunctionHookValues(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1alpha1.AddToScheme, corev1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := &corev1alpha1.HookTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "dump"},
		Spec: corev1alpha1.HookTemplateSpec{
			Params:   []addonsv1alpha1.ParameterDefinition{{Name: "count", Default: "1"}, {Name: "who", Default: "all"}},
			Executor: corev1alpha1.HookExecutor{Type: corev1alpha1.HookExecutorFunction, Function: &corev1alpha1.FunctionHookExecutorSpec{Name: "f"}},
		},
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithRuntimeObjects(tmpl).Build()
	j := &jobs{}
	e := &Executor{Kube: kube, Jobs: j}
	h := info("dump", "dump", func(h *corev1alpha1.HookInfo) {
		h.Params = &runtime.RawExtension{Raw: []byte(`{"count":3}`)}
		h.Variables = []corev1.EnvVar{{Name: "MODE", Value: "fast"}}
	})
	var status []corev1alpha1.HookExecutionStatus
	st := Stage{Namespace: "app", Hooks: []corev1alpha1.HookInfo{h}, Status: &status, Post: true, Succeeded: true,
		Owner: &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "rs"}},
		Vars:  Run{Kind: "RestoreSession", Namespace: "app", Session: "rs", Phase: "Succeeded"}.Vars()}
	if _, err := e.Advance(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"rs-post-dump-1"}, j.started); diff != "" {
		t.Fatalf("jobs started (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"count": float64(3)}, j.params[0]); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	wantVars := map[string]string{"MODE": "fast", VarNamespace: "app", VarSessionKind: "RestoreSession", VarSession: "rs", VarPhase: "Succeeded", VarSnapshots: ""}
	if diff := cmp.Diff(wantVars, j.vars[0]); diff != "" {
		t.Errorf("vars (-want +got):\n%s", diff)
	}
}
