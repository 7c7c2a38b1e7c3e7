package hookrun

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/hook"
)

// script answers each run of a hook by the first word of its command: the
// outcomes are consumed in order, and the commands run are recorded.
type script struct {
	outcomes map[string][]hook.Result
	ran      []string
}

func (s *script) Run(_ context.Context, t *corev1alpha1.HookTemplateSpec, _ hook.Target, _ time.Duration) hook.Result {
	cmd := strings.Join(t.Action.Exec.Command, " ")
	s.ran = append(s.ran, cmd)
	name := t.Action.Exec.Command[0]
	out := s.outcomes[name]
	if len(out) == 0 {
		return hook.Result{Succeeded: true, Output: "ok"}
	}
	s.outcomes[name] = out[1:]
	return out[0]
}

func template(ns, name string, cmd ...string) *corev1alpha1.HookTemplate {
	return &corev1alpha1.HookTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1alpha1.HookTemplateSpec{
			Action:   &corev1alpha1.HookAction{Exec: &corev1.ExecAction{Command: cmd}},
			Executor: corev1alpha1.HookExecutor{Type: corev1alpha1.HookExecutorPod},
		},
	}
}

func info(name, tmpl string, mod ...func(*corev1alpha1.HookInfo)) corev1alpha1.HookInfo {
	h := corev1alpha1.HookInfo{Name: name, HookTemplate: storagev1alpha1.ObjectReference{Name: tmpl}}
	for _, m := range mod {
		m(&h)
	}
	return h
}

func failed(out string) hook.Result { return hook.Result{Reason: hook.ReasonFailed, Output: out} }

func TestAdvance(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := corev1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	withParams := template("app", "greet", "echo", "${who}", "${STASHPLANE_SESSION}", "${HOME}")
	withParams.Spec.Params = []addonsv1alpha1.ParameterDefinition{{Name: "who", Default: "world"}, {Name: "mode", Required: true}}
	shared := template("platform", "shared", "freeze")
	shared.Spec.UsagePolicy = &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptrTo(storagev1alpha1.NamespacesFromAll)}}
	objs := []runtime.Object{
		template("app", "freeze", "freeze"), template("app", "thaw", "thaw"), template("app", "notify", "notify"),
		template("platform", "private", "freeze"), shared, withParams,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "platform"}},
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithRuntimeObjects(objs...).Build()
	params := func(raw string) func(*corev1alpha1.HookInfo) {
		return func(h *corev1alpha1.HookInfo) { h.Params = &runtime.RawExtension{Raw: []byte(raw)} }
	}
	policy := func(p corev1alpha1.HookExecutionPolicy) func(*corev1alpha1.HookInfo) {
		return func(h *corev1alpha1.HookInfo) { h.ExecutionPolicy = p }
	}
	from := func(ns string) func(*corev1alpha1.HookInfo) {
		return func(h *corev1alpha1.HookInfo) { h.HookTemplate.Namespace = ns }
	}

	type phase struct{ Name, Phase, Reason, Output string }
	cases := map[string]struct {
		hooks     []corev1alpha1.HookInfo
		post      bool
		succeeded bool
		outcomes  map[string][]hook.Result
		wantState State
		wantMsg   string
		wantRan   []string
		want      []phase
		// wantCalls is how many calls of Advance it took: one per attempt,
		// the last one also reporting the outcome.
		wantCalls int
	}{
		"pre hooks run in order, one attempt per call": {
			hooks:     []corev1alpha1.HookInfo{info("freeze", "freeze"), info("notify", "notify")},
			wantState: Succeeded, wantRan: []string{"freeze", "notify"}, wantCalls: 2,
			want: []phase{{"freeze", "Succeeded", "", "ok"}, {"notify", "Succeeded", "", "ok"}},
		},
		"a failed pre hook is retried, then fails and skips the rest": {
			hooks:     []corev1alpha1.HookInfo{info("freeze", "freeze", retry(1)), info("notify", "notify")},
			outcomes:  map[string][]hook.Result{"freeze": {failed("locked"), failed("still locked")}},
			wantState: Failed, wantMsg: `hook "freeze" failed (HookFailed): still locked`,
			wantRan: []string{"freeze", "freeze"}, wantCalls: 2,
			want: []phase{{"freeze", "Failed", "HookFailed", "still locked"}, {"notify", "Skipped", "", "not run: a hook before it failed"}},
		},
		"a retried pre hook that then succeeds lets the next run": {
			hooks:     []corev1alpha1.HookInfo{info("freeze", "freeze", retry(2)), info("notify", "notify")},
			outcomes:  map[string][]hook.Result{"freeze": {failed("locked")}},
			wantState: Succeeded, wantRan: []string{"freeze", "freeze", "notify"}, wantCalls: 3,
			want: []phase{{"freeze", "Succeeded", "", "ok"}, {"notify", "Succeeded", "", "ok"}},
		},
		"post hooks after a failure: Always and OnFailure run, OnSuccess is skipped": {
			hooks:     []corev1alpha1.HookInfo{info("notify", "notify", policy("OnSuccess")), info("thaw", "thaw", policy("Always")), info("alert", "notify", policy("OnFailure"))},
			post:      true,
			wantState: Succeeded, wantRan: []string{"thaw", "notify"}, wantCalls: 2,
			want: []phase{{"notify", "Skipped", "", "not run: executionPolicy OnSuccess"}, {"thaw", "Succeeded", "", "ok"}, {"alert", "Succeeded", "", "ok"}},
		},
		"a failed post hook does not keep the next from running": {
			hooks: []corev1alpha1.HookInfo{info("notify", "notify"), info("thaw", "thaw")},
			post:  true, succeeded: true,
			outcomes:  map[string][]hook.Result{"notify": {failed("503")}},
			wantState: Failed, wantMsg: `hook "notify" failed (HookFailed): 503`, wantRan: []string{"notify", "thaw"}, wantCalls: 2,
			want: []phase{{"notify", "Failed", "HookFailed", "503"}, {"thaw", "Succeeded", "", "ok"}},
		},
		"a missing template fails the hook without running anything": {
			hooks:     []corev1alpha1.HookInfo{info("freeze", "nope", retry(3))},
			wantState: Failed, wantMsg: `hook "freeze" failed (HookTemplateNotFound): hooktemplate "nope" not found in namespace "app"`, wantCalls: 1,
			want: []phase{{"freeze", "Failed", "HookTemplateNotFound", `hooktemplate "nope" not found in namespace "app"`}},
		},
		"a template of another namespace its policy does not admit": {
			hooks:     []corev1alpha1.HookInfo{info("freeze", "private", from("platform"))},
			wantState: Failed, wantCalls: 1,
			wantMsg: `hook "freeze" failed (HookTemplateNotAllowed): hooktemplate platform/private may not be used from namespace "app": its usagePolicy allows only namespace "platform"`,
			want:    []phase{{"freeze", "Failed", "HookTemplateNotAllowed", `hooktemplate platform/private may not be used from namespace "app": its usagePolicy allows only namespace "platform"`}},
		},
		"a template of another namespace that admits all": {
			hooks:     []corev1alpha1.HookInfo{info("freeze", "shared", from("platform"))},
			wantState: Succeeded, wantRan: []string{"freeze"}, wantCalls: 1,
			want: []phase{{"freeze", "Succeeded", "", "ok"}},
		},
		"params and the run's variables are written in; other references are left": {
			hooks:     []corev1alpha1.HookInfo{info("greet", "greet", params(`{"mode":"fast"}`))},
			wantState: Succeeded, wantRan: []string{"echo world run-1 ${HOME}"}, wantCalls: 1,
			want: []phase{{"greet", "Succeeded", "", "ok"}},
		},
		"a required param missing": {
			hooks:     []corev1alpha1.HookInfo{info("greet", "greet", params(`{"who":"me"}`))},
			wantState: Failed, wantCalls: 1, wantMsg: `hook "greet" failed (HookInvalid): hook "greet" does not give the required param "mode"`,
			want: []phase{{"greet", "Failed", "HookInvalid", `hook "greet" does not give the required param "mode"`}},
		},
		"a param the template does not declare": {
			hooks:     []corev1alpha1.HookInfo{info("greet", "greet", params(`{"mode":"x","colour":"red"}`))},
			wantState: Failed, wantCalls: 1, wantMsg: `hook "greet" failed (HookInvalid): hook "greet" gives params its template does not declare: [colour]`,
			want: []phase{{"greet", "Failed", "HookInvalid", `hook "greet" gives params its template does not declare: [colour]`}},
		},
		"a variable read from a Secret is refused": {
			hooks: []corev1alpha1.HookInfo{info("freeze", "freeze", func(h *corev1alpha1.HookInfo) {
				h.Variables = []corev1.EnvVar{{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "pw"}}}}
			})},
			wantState: Failed, wantCalls: 1,
			wantMsg: `hook "freeze" failed (HookInvalid): variable "PW" of hook "freeze": valueFrom is not carried out for hooks (a hook's values may reach process arguments and status); give a value, or read the Secret inside the hook's container`,
			want:    []phase{{"freeze", "Failed", "HookInvalid", `variable "PW" of hook "freeze": valueFrom is not carried out for hooks (a hook's values may reach process arguments and status); give a value, or read the Secret inside the hook's container`}},
		},
		"an invalid action is not retried": {
			hooks:     []corev1alpha1.HookInfo{info("freeze", "freeze", retry(3))},
			outcomes:  map[string][]hook.Result{"freeze": {{Reason: hook.ReasonInvalid, Output: "bad"}}},
			wantState: Failed, wantRan: []string{"freeze"}, wantCalls: 1, wantMsg: `hook "freeze" failed (HookInvalid): bad`,
			want: []phase{{"freeze", "Failed", "HookInvalid", "bad"}},
		},
		"no hooks": {wantState: Succeeded, wantCalls: 1},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := &script{outcomes: c.outcomes}
			e := &Executor{Kube: kube, Hooks: s}
			var status []corev1alpha1.HookExecutionStatus
			st := Stage{Namespace: "app", Hooks: c.hooks, Status: &status, Post: c.post, Succeeded: c.succeeded,
				Vars: Run{Kind: "BackupSession", Namespace: "app", Session: "run-1", Phase: "Running"}.Vars()}
			var rep Report
			calls := 0
			for calls < 10 {
				var err error
				calls++
				if rep, err = e.Advance(context.Background(), st); err != nil {
					t.Fatal(err)
				}
				if rep.State != Running {
					break
				}
			}
			var got []phase
			for _, h := range status {
				got = append(got, phase{h.Name, string(h.Phase), h.Reason, h.Output})
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.wantRan, s.ran); diff != "" {
				t.Errorf("commands run (-want +got):\n%s", diff)
			}
			if rep.State != c.wantState || rep.Message != c.wantMsg || calls != c.wantCalls {
				t.Errorf("report = %v %q after %d calls, want %v %q after %d", rep.State, rep.Message, calls, c.wantState, c.wantMsg, c.wantCalls)
			}
			if !Done(status) {
				t.Errorf("stage ended with hooks still pending: %+v", status)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestRemovedHookIsSkipped(t *testing.T) {
	status := []corev1alpha1.HookExecutionStatus{{Name: "gone", Phase: corev1alpha1.HookPending}}
	e := &Executor{Hooks: &script{}}
	rep, err := e.Advance(context.Background(), Stage{Namespace: "app", Status: &status, Post: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1alpha1.HookExecutionStatus{{Name: "gone", Phase: corev1alpha1.HookSkipped, Reason: ReasonRemoved, Output: "the hook was removed from the spec before it ran"}}
	if diff := cmp.Diff(want, status); diff != "" || rep.State != Succeeded {
		t.Errorf("state %v, status (-want +got):\n%s", rep.State, diff)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B_2": "two"}
	cases := map[string]string{
		"${A}-${B_2}":     "1-two",
		"$A ${C} ${A":     "$A ${C} ${A",
		"psql -c '${A}'":  "psql -c '1'",
		"${{A}} $${A}":    "${{A}} $1",
		"no references":   "no references",
		"${A}${A}${B_2}x": "11twox",
	}
	for in, want := range cases {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

// An attempt runs only once the status that claims it was written; a
// claimed attempt never recorded (the provider stopped) counts as failed.
func TestAttemptsAreClaimed(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := corev1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithRuntimeObjects(template("app", "freeze", "freeze")).Build()
	s := &script{}
	e := &Executor{Kube: kube, Hooks: s}
	var status []corev1alpha1.HookExecutionStatus
	var saved []corev1alpha1.HookPhase
	conflict := errors.New("the object has been modified")
	var saveErr error
	st := Stage{Namespace: "app", Hooks: []corev1alpha1.HookInfo{info("freeze", "freeze", retry(1))}, Status: &status,
		Save: func(context.Context) error {
			saved = append(saved, status[0].Phase)
			// As a client's write does, replace the lists with what was
			// stored.
			status = append([]corev1alpha1.HookExecutionStatus(nil), status...)
			return saveErr
		}}

	saveErr = conflict
	if _, err := e.Advance(context.Background(), st); !errors.Is(err, conflict) {
		t.Fatalf("Advance with a failing write: %v", err)
	}
	if len(s.ran) != 0 {
		t.Fatalf("a hook ran although its claim was not written: %v", s.ran)
	}

	// A copy of the session older than the one that recorded the claimed
	// attempt cannot be written back: the attempt is not judged on it.
	status = []corev1alpha1.HookExecutionStatus{{Name: "freeze", Phase: corev1alpha1.HookRunning, Attempts: 1}}
	if _, err := e.Advance(context.Background(), st); !errors.Is(err, conflict) || status[0].Phase != corev1alpha1.HookRunning {
		t.Fatalf("Advance on a stale copy: %v, status %+v", err, status[0])
	}

	// The provider stopped during the claimed attempt: one retry is left.
	saveErr = nil
	saved = nil
	status = []corev1alpha1.HookExecutionStatus{{Name: "freeze", Phase: corev1alpha1.HookRunning, Attempts: 1}}
	rep, err := e.Advance(context.Background(), st)
	if err != nil || rep.State != Succeeded {
		t.Fatalf("Advance after an interruption: %v %v", rep.State, err)
	}
	want := []corev1alpha1.HookExecutionStatus{{Name: "freeze", Phase: corev1alpha1.HookSucceeded, Output: "ok", Attempts: 2, Duration: "0s"}}
	if diff := cmp.Diff(want, status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	// Written twice: to confirm the unfinished attempt, then to claim the
	// retry.
	if diff := cmp.Diff([]corev1alpha1.HookPhase{corev1alpha1.HookRunning, corev1alpha1.HookRunning}, saved); diff != "" {
		t.Errorf("phases written before attempts (-want +got):\n%s", diff)
	}

	// With no retry left, an interrupted attempt fails the hook.
	status = []corev1alpha1.HookExecutionStatus{{Name: "freeze", Phase: corev1alpha1.HookRunning, Attempts: 2}}
	if rep, err = e.Advance(context.Background(), st); err != nil || rep.State != Failed {
		t.Fatalf("Advance after a last interrupted attempt: %v %v", rep.State, err)
	}
	if status[0].Reason != ReasonInterrupted || len(s.ran) != 1 {
		t.Errorf("status %+v after %d runs", status[0], len(s.ran))
	}
}

func retry(n int32) func(*corev1alpha1.HookInfo) {
	return func(h *corev1alpha1.HookInfo) { h.MaxRetry = n }
}
