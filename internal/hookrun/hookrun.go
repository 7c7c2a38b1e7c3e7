// Package hookrun runs a session's hooks as steps of its run: the hooks a
// BackupConfiguration's session or a RestoreSession lists before and after
// its work. It resolves each hook's HookTemplate (in the session's namespace
// or, under the template's usagePolicy, another), its params and variables,
// runs one attempt at a time through internal/hook, and records each hook's
// phase, attempts, duration and last output line in the session's status.
//
// One call of Advance runs at most one attempt, so the session controller
// writes the status between attempts: a provider that restarts in the middle
// of a stage repeats at most the attempt it was making. Pre hooks run in
// order and stop at the first that fails for good (those after it are
// Skipped); post hooks all run, each by its executionPolicy, whatever the
// others did, so that a hook that releases what a pre hook froze is never
// skipped for an earlier hook's failure.
package hookrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	"github.com/stashplane/stashplane/internal/hook"
	"github.com/stashplane/stashplane/internal/sessionrun"
	"github.com/stashplane/stashplane/internal/usage"
)

// Reasons a hook did not run, beside those of internal/hook.
const (
	// ReasonTemplateNotFound: the HookTemplate does not exist.
	ReasonTemplateNotFound = "HookTemplateNotFound"
	// ReasonTemplateNotAllowed: the HookTemplate's usagePolicy does not
	// admit the session's namespace.
	ReasonTemplateNotAllowed = "HookTemplateNotAllowed"
	// ReasonRemoved: the hook left the session's spec while it ran.
	ReasonRemoved = "HookRemoved"
	// ReasonInterrupted: the provider stopped during an attempt.
	ReasonInterrupted = "HookInterrupted"
)

// Runner carries out one attempt of a template's action; *hook.Runner is
// one.
type Runner interface {
	Run(ctx context.Context, tmpl *corev1alpha1.HookTemplateSpec, target hook.Target, timeout time.Duration) hook.Result
}

// JobRunner runs the attempts of hooks whose template has a Function
// executor as Jobs; *hookjob.Jobs (functions/hookjob) is one.
type JobRunner interface {
	// Start creates the attempt's Job; creating one that exists, owned by
	// the same session, is not an error. An *Invalid error says the hook
	// cannot run as written.
	Start(ctx context.Context, a Attempt) error
	// Check reads how the attempt's Job stands.
	Check(ctx context.Context, namespace, job string, timeout time.Duration, secrets []string) (JobOutcome, error)
}

// Attempt is one attempt of a Function executor's hook, to run as a Job.
type Attempt struct {
	// Job is the name of the attempt's Job (naming.HookJob).
	Job string
	// Owner is the session; the Job is created in its namespace.
	Owner client.Object
	// Hook is the hook's name.
	Hook string
	// Template is the hook's template with its values written in.
	Template *corev1alpha1.HookTemplateSpec
	// Params are the values the hook gives its template's params, as it
	// wrote them (a string, number or boolean).
	Params map[string]any
	// Vars are the hook's and the run's variables (Run.Vars), not the
	// params.
	Vars map[string]string
	// Timeout bounds the Job's run.
	Timeout time.Duration
}

// JobOutcome is where an attempt's Job stands.
type JobOutcome struct {
	// Found says the Job exists (and is not being deleted).
	Found bool
	// Done says it ended; Result then says how.
	Done   bool
	Result hook.Result
}

// Invalid is a hook that cannot be carried out as written: its Function is
// missing, does not render, or renders something other than one Job.
// Retrying does not change it.
type Invalid struct{ Reason string }

func (e *Invalid) Error() string { return e.Reason }

// Executor runs the hooks of sessions.
type Executor struct {
	// Kube reads HookTemplates, Functions and, for usage policies,
	// Namespaces.
	Kube client.Reader
	// Hooks carries out the actions of Pod and Operator executors.
	Hooks Runner
	// Jobs runs Function executors' attempts; nil refuses them.
	Jobs JobRunner
}

// Stage is the hooks of a session that run on one side of its work.
type Stage struct {
	// Namespace of the session.
	Namespace string
	// Hooks as the session's spec lists them now.
	Hooks []corev1alpha1.HookInfo
	// Status is the session's record of these hooks; Advance fills it.
	Status *[]corev1alpha1.HookExecutionStatus
	// Post says the hooks run after the work, whose outcome Succeeded
	// gives: a post hook runs by its executionPolicy.
	Post      bool
	Succeeded bool
	// Target picks the pods a Pod or Operator hook aims at when its
	// template names no selector.
	Target hook.Target
	// Vars are the run's variables (session, Snapshots, phase, target),
	// written ${NAME} in a template's action.
	Vars map[string]string
	// Save writes the session's status as it stands (with the optimistic
	// lock of the version it was read at); it is called before each
	// attempt, which runs only once the write succeeded.
	Save func(ctx context.Context) error
	// Owner is the session: it owns the Jobs of Function executors'
	// attempts, which are named after it.
	Owner client.Object
}

// side is "pre" or "post", for the names of the stage's Jobs.
func (st Stage) side() string {
	if st.Post {
		return "post"
	}
	return "pre"
}

// State is where a stage stands after a call of Advance.
type State int

// States of a stage.
const (
	// Running: an attempt was made or is due; call Advance again once the
	// status is written.
	Running State = iota
	// Succeeded: every hook that was due succeeded (or the stage has none).
	Succeeded
	// Failed: a hook failed for good; Message names it.
	Failed
)

// Report is what Advance says of a stage.
type Report struct {
	State State
	// Message names the hooks that failed and why, for the session's
	// condition.
	Message string
	// Retry says how long to wait before the next attempt of a hook that
	// failed and has retries left.
	Retry time.Duration
}

// retryDelay is the pause before retrying a failed attempt.
const retryDelay = 2 * time.Second

// jobPoll is how soon a hook's running Job is looked at again when no
// event about it comes first.
const jobPoll = 5 * time.Second

// Advance moves a stage on by at most one attempt.
func (e *Executor) Advance(ctx context.Context, st Stage) (Report, error) {
	if len(*st.Status) == 0 {
		for _, h := range st.Hooks {
			*st.Status = append(*st.Status, corev1alpha1.HookExecutionStatus{Name: h.Name, Phase: corev1alpha1.HookPending})
		}
	}
	status := *st.Status
	preFailed, attempted := false, false
	for i := range status {
		s := &status[i]
		if h, ok := find(st.Hooks, s.Name); ok && s.Phase == corev1alpha1.HookRunning && s.Job != "" && e.Jobs != nil {
			// An attempt running as a Job: follow it.
			done, err := e.follow(ctx, st, h, i)
			if err != nil {
				return Report{State: Running}, err
			}
			status = *st.Status
			s = &status[i]
			if !done {
				return Report{State: Running, Retry: jobPoll}, nil
			}
			attempted = true
			if s.Phase == corev1alpha1.HookPending {
				return Report{State: Running, Retry: retryDelay}, nil
			}
		}
		if s.Phase == corev1alpha1.HookRunning {
			// An attempt was claimed and never recorded: the provider
			// stopped in the middle of it, or this copy of the session
			// is older than the one that recorded it. Writing it back
			// tells: an older copy fails to write.
			if st.Save != nil {
				if err := st.Save(ctx); err != nil {
					return Report{State: Running}, fmt.Errorf("cannot confirm the unfinished attempt of hook %q: %w", s.Name, err)
				}
				status = *st.Status
				s = &status[i]
			}
			// Its outcome is unknown, so it counts as a failed attempt.
			h, _ := find(st.Hooks, s.Name)
			interrupted(s, h)
		}
		if s.Phase == corev1alpha1.HookFailed {
			preFailed = !st.Post
		}
		if s.Phase != corev1alpha1.HookPending && s.Phase != "" {
			continue
		}
		h, ok := find(st.Hooks, s.Name)
		switch {
		case !ok:
			s.Phase, s.Reason, s.Output = corev1alpha1.HookSkipped, ReasonRemoved, "the hook was removed from the spec before it ran"
			continue
		case preFailed:
			s.Phase, s.Output = corev1alpha1.HookSkipped, "not run: a hook before it failed"
			continue
		case st.Post && !due(h.ExecutionPolicy, st.Succeeded):
			s.Phase, s.Output = corev1alpha1.HookSkipped, fmt.Sprintf("not run: executionPolicy %s", h.ExecutionPolicy)
			continue
		case attempted:
			// One attempt per call: the status is written before the next.
			return Report{State: Running}, nil
		}
		if err := e.attempt(ctx, st, h, i); err != nil {
			return Report{State: Running}, err
		}
		// Writing the status may have replaced its lists.
		status = *st.Status
		s = &status[i]
		attempted = true
		switch s.Phase {
		case corev1alpha1.HookRunning:
			// Its Job runs: written now, followed on the next call.
			return Report{State: Running, Retry: jobPoll}, nil
		case corev1alpha1.HookPending:
			return Report{State: Running, Retry: retryDelay}, nil
		case corev1alpha1.HookFailed:
			preFailed = !st.Post
		}
	}
	return summary(status), nil
}

// Stages that never ran anything report Succeeded; a stage is Failed when a
// hook of it is.
func summary(status []corev1alpha1.HookExecutionStatus) Report {
	var failed []string
	for _, s := range status {
		if s.Phase == corev1alpha1.HookFailed {
			failed = append(failed, fmt.Sprintf("hook %q failed (%s): %s", s.Name, s.Reason, s.Output))
		}
	}
	if len(failed) == 0 {
		return Report{State: Succeeded}
	}
	msg := failed[0]
	if len(failed) > 1 {
		msg = fmt.Sprintf("%s; and %d more", msg, len(failed)-1)
	}
	return Report{State: Failed, Message: msg}
}

// Done says whether every hook recorded in status has ended.
func Done(status []corev1alpha1.HookExecutionStatus) bool {
	for _, s := range status {
		if s.Phase == corev1alpha1.HookPending || s.Phase == corev1alpha1.HookRunning || s.Phase == "" {
			return false
		}
	}
	return true
}

func due(p corev1alpha1.HookExecutionPolicy, succeeded bool) bool {
	switch p {
	case corev1alpha1.HookExecuteOnSuccess:
		return succeeded
	case corev1alpha1.HookExecuteOnFailure:
		return !succeeded
	default:
		return true
	}
}

func find(hooks []corev1alpha1.HookInfo, name string) (corev1alpha1.HookInfo, bool) {
	for _, h := range hooks {
		if h.Name == name {
			return h, true
		}
	}
	return corev1alpha1.HookInfo{}, false
}

// attempt makes one attempt of the i-th hook, h, and records it in the
// status. The attempt is claimed first (Running, written through st.Save),
// so that a session read from a stale cache never runs a hook a second
// time nor judges it: its write fails instead. A hook that cannot be
// carried out as written (no template, not admitted, bad params) fails at
// once: retrying would not change it. A Function executor's attempt is a
// Job, named in the claim and left Running: follow reads its outcome.
func (e *Executor) attempt(ctx context.Context, st Stage, h corev1alpha1.HookInfo, i int) error {
	rv, reason, msg, err := e.resolve(ctx, st, h)
	s := &(*st.Status)[i]
	s.Attempts++
	s.Job = ""
	job := rv != nil && rv.spec.Executor.Type == corev1alpha1.HookExecutorFunction && e.Jobs != nil
	if job {
		s.Job = naming.HookJob(st.Owner.GetName(), st.side(), h.Name, s.Attempts)
		s.Output, s.Pods, s.Duration = "", nil, ""
	}
	if st.Save != nil {
		s.Phase = corev1alpha1.HookRunning
		if err := st.Save(ctx); err != nil {
			return fmt.Errorf("cannot record the start of hook %q: %w", h.Name, err)
		}
		// The write decodes the stored object into the session, lists and
		// all: record the outcome in what it holds now.
		s = &(*st.Status)[i]
	}
	if err != nil || reason != "" {
		if err != nil {
			reason, msg = hook.ReasonFailed, err.Error()
		}
		s.Phase, s.Reason, s.Output, s.Duration, s.Pods = corev1alpha1.HookFailed, reason, msg, "", nil
		return nil
	}
	if job {
		s.Phase = corev1alpha1.HookRunning
		return e.start(ctx, st, h, rv, s)
	}
	res := e.Hooks.Run(ctx, rv.spec, st.Target, timeoutOf(h))
	settle(s, h, res)
	return nil
}

// settle records how an attempt ended: Succeeded; Pending for another
// attempt while the hook has retries left and retrying can help; else
// Failed.
func settle(s *corev1alpha1.HookExecutionStatus, h corev1alpha1.HookInfo, res hook.Result) {
	s.Output, s.Pods, s.Duration = res.Output, res.Pods, res.Duration.Round(time.Millisecond).String()
	switch {
	case res.Succeeded:
		s.Phase, s.Reason = corev1alpha1.HookSucceeded, ""
	case s.Attempts <= h.MaxRetry && res.Reason != hook.ReasonInvalid && res.Reason != hook.ReasonNotAllowed:
		s.Phase, s.Reason = corev1alpha1.HookPending, res.Reason
	default:
		s.Phase, s.Reason = corev1alpha1.HookFailed, res.Reason
	}
}

func timeoutOf(h corev1alpha1.HookInfo) time.Duration {
	if h.Timeout != nil {
		return h.Timeout.Duration
	}
	return 0
}

// jobStarted is the output of a hook whose Job was created and has not
// ended: it also tells follow that a missing Job was there once.
const jobStarted = "job started"

// start creates the Job of the attempt recorded in s. A hook that cannot
// run as written fails; an error leaves the attempt Running and unstarted,
// for follow to start again.
func (e *Executor) start(ctx context.Context, st Stage, h corev1alpha1.HookInfo, rv *resolved, s *corev1alpha1.HookExecutionStatus) error {
	params := map[string]bool{}
	for _, p := range rv.spec.Params {
		params[p.Name] = true
	}
	vars := map[string]string{}
	for k, v := range rv.vars {
		if !params[k] {
			vars[k] = v
		}
	}
	err := e.Jobs.Start(ctx, Attempt{
		Job: s.Job, Owner: st.Owner, Hook: h.Name, Template: rv.spec, Params: rv.params, Vars: vars, Timeout: timeoutOf(h),
	})
	var invalid *Invalid
	switch {
	case errors.As(err, &invalid):
		s.Phase, s.Reason, s.Output = corev1alpha1.HookFailed, hook.ReasonInvalid, invalid.Reason
		return nil
	case err != nil:
		return fmt.Errorf("cannot start the job of hook %q: %w", h.Name, err)
	}
	s.Output = jobStarted
	return nil
}

// follow reads the Job of the running attempt of the i-th hook, h, and
// says whether it ended, recording how. A Job that is missing and was never
// seen created (the provider stopped between claiming the attempt and
// creating it) is started, once the session's latest version confirms the
// claim; one that vanished after it started was interrupted.
func (e *Executor) follow(ctx context.Context, st Stage, h corev1alpha1.HookInfo, i int) (bool, error) {
	s := &(*st.Status)[i]
	out, err := e.Jobs.Check(ctx, st.Namespace, s.Job, timeoutOf(h), st.Target.Secrets)
	switch {
	case err != nil:
		return false, err
	case out.Done:
		settle(s, h, out.Result)
		return true, nil
	case out.Found:
		return false, nil
	case s.Output == jobStarted:
		s.Reason, s.Output = ReasonInterrupted, fmt.Sprintf("job %q vanished before it finished", s.Job)
		s.Phase = corev1alpha1.HookFailed
		if s.Attempts <= h.MaxRetry {
			s.Phase = corev1alpha1.HookPending
		}
		return true, nil
	}
	if st.Save != nil {
		if err := st.Save(ctx); err != nil {
			return false, fmt.Errorf("cannot confirm the unstarted attempt of hook %q: %w", h.Name, err)
		}
		s = &(*st.Status)[i]
	}
	rv, reason, msg, err := e.resolve(ctx, st, h)
	switch {
	case err != nil:
		return false, err
	case reason != "":
		s.Phase, s.Reason, s.Output = corev1alpha1.HookFailed, reason, msg
		return true, nil
	}
	if err := e.start(ctx, st, h, rv, s); err != nil {
		return false, err
	}
	return s.Phase == corev1alpha1.HookFailed, nil
}

// interrupted settles an attempt whose outcome was never recorded: retried
// while the hook has retries left, else failed.
func interrupted(s *corev1alpha1.HookExecutionStatus, h corev1alpha1.HookInfo) {
	s.Reason, s.Output = ReasonInterrupted, "the provider stopped while the hook ran; its outcome is unknown"
	s.Phase = corev1alpha1.HookFailed
	if s.Attempts <= h.MaxRetry {
		s.Phase = corev1alpha1.HookPending
	}
}

// resolved is a hook's template with its values written in, its params'
// values and every value it may name.
type resolved struct {
	spec   *corev1alpha1.HookTemplateSpec
	params map[string]any
	vars   map[string]string
}

// resolve finds the hook's template and returns a copy of it with the
// hook's params, variables and the run's variables written into its action.
func (e *Executor) resolve(ctx context.Context, st Stage, h corev1alpha1.HookInfo) (*resolved, string, string, error) {
	ns := h.HookTemplate.Namespace
	if ns == "" {
		ns = st.Namespace
	}
	t := &corev1alpha1.HookTemplate{}
	err := e.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: h.HookTemplate.Name}, t)
	if kerrors.IsNotFound(err) {
		return nil, ReasonTemplateNotFound, fmt.Sprintf("hooktemplate %q not found in namespace %q", h.HookTemplate.Name, ns), nil
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("cannot get hooktemplate %q: %w", h.HookTemplate.Name, err)
	}
	ok, why, err := usage.Allowed(ctx, e.Kube, t.Spec.UsagePolicy, ns, st.Namespace)
	if err != nil {
		return nil, "", "", fmt.Errorf("cannot check the usage policy of hooktemplate %q: %w", h.HookTemplate.Name, err)
	}
	if !ok {
		return nil, ReasonTemplateNotAllowed, fmt.Sprintf("hooktemplate %s/%s may not be used from namespace %q: %s", ns, t.Name, st.Namespace, why), nil
	}
	vars, err := Variables(t.Spec, h, st.Vars)
	if err != nil {
		return nil, hook.ReasonInvalid, err.Error(), nil
	}
	spec := t.Spec.DeepCopy()
	Expand(spec, vars)
	return &resolved{spec: spec, params: paramValues(t.Spec, h), vars: vars}, "", "", nil
}

// paramValues are the values the hook gives its template's params, typed
// as it wrote them (Variables checked each is declared).
func paramValues(t corev1alpha1.HookTemplateSpec, h corev1alpha1.HookInfo) map[string]any {
	given := map[string]any{}
	if h.Params != nil && len(h.Params.Raw) > 0 {
		_ = json.Unmarshal(h.Params.Raw, &given)
	}
	out := map[string]any{}
	for _, p := range t.Params {
		if v, ok := given[p.Name]; ok {
			out[p.Name] = v
		}
	}
	return out
}

// Variables are the values a hook's action may name as ${NAME}: the
// template's params (the hook's values, else their defaults), the hook's
// variables, and the run's variables, which neither may replace. A value
// the hook cannot give (an unknown or missing required param, a variable
// read from elsewhere) is an error that says which.
func Variables(t corev1alpha1.HookTemplateSpec, h corev1alpha1.HookInfo, run map[string]string) (map[string]string, error) {
	given := map[string]any{}
	if h.Params != nil && len(h.Params.Raw) > 0 {
		if err := json.Unmarshal(h.Params.Raw, &given); err != nil {
			return nil, fmt.Errorf("cannot read the params of hook %q: they must be an object of names to values", h.Name)
		}
	}
	out := map[string]string{}
	declared := map[string]bool{}
	for _, p := range t.Params {
		declared[p.Name] = true
		v, ok := given[p.Name]
		switch {
		case ok:
			s, err := scalar(v)
			if err != nil {
				return nil, fmt.Errorf("param %q of hook %q: %w", p.Name, h.Name, err)
			}
			out[p.Name] = s
		case p.Required:
			return nil, fmt.Errorf("hook %q does not give the required param %q", h.Name, p.Name)
		default:
			out[p.Name] = p.Default
		}
	}
	var unknown []string
	for k := range given {
		if !declared[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("hook %q gives params its template does not declare: %v", h.Name, unknown)
	}
	for _, v := range h.Variables {
		if v.ValueFrom != nil {
			return nil, fmt.Errorf("variable %q of hook %q: valueFrom is not carried out for hooks (a hook's values may reach process arguments and status); give a value, or read the Secret inside the hook's container", v.Name, h.Name)
		}
		if _, ok := run[v.Name]; ok {
			return nil, fmt.Errorf("variable %q of hook %q is set by Stashplane for every run and cannot be given", v.Name, h.Name)
		}
		out[v.Name] = v.Value
	}
	for k, v := range run {
		out[k] = v
	}
	return out, nil
}

func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	default:
		return "", fmt.Errorf("must be a string, number or boolean")
	}
}

var reference = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces each ${NAME} of s whose NAME vars holds; any other text,
// a shell's own $VAR or ${VAR} included, is left as written.
func expand(s string, vars map[string]string) string {
	return reference.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := vars[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// Expand writes vars into every string of the template's action that a
// user writes: the exec command, the HTTP path, host, headers, body and
// form, and the Function executor's env.
func Expand(t *corev1alpha1.HookTemplateSpec, vars map[string]string) {
	if a := t.Action; a != nil {
		if a.Exec != nil {
			for i := range a.Exec.Command {
				a.Exec.Command[i] = expand(a.Exec.Command[i], vars)
			}
		}
		if g := a.HTTPGet; g != nil {
			g.Path, g.Host = expand(g.Path, vars), expand(g.Host, vars)
			for i := range g.HTTPHeaders {
				g.HTTPHeaders[i].Value = expand(g.HTTPHeaders[i].Value, vars)
			}
		}
		if p := a.HTTPPost; p != nil {
			p.Path, p.Host, p.Body = expand(p.Path, vars), expand(p.Host, vars), expand(p.Body, vars)
			for i := range p.HTTPHeaders {
				p.HTTPHeaders[i].Value = expand(p.HTTPHeaders[i].Value, vars)
			}
			for i := range p.Form {
				for j := range p.Form[i].Values {
					p.Form[i].Values[j] = expand(p.Form[i].Values[j], vars)
				}
			}
		}
		if s := a.TCPSocket; s != nil {
			s.Host = expand(s.Host, vars)
		}
	}
	if f := t.Executor.Function; f != nil {
		for i := range f.Env {
			f.Env[i].Value = expand(f.Env[i].Value, vars)
		}
	}
}

// poll is how soon a stage with hooks left to run is looked at again when
// no event comes first.
const poll = time.Second

// Requeue is when the session should be reconciled again for its stage.
func (r Report) Requeue() time.Duration {
	return max(r.Retry, poll)
}

// Record advances st and, once the stage ended, records its outcome on o
// as the condition t (HooksExecutionSucceeded, or HooksExecutionFailed
// naming the failed hooks).
func (e *Executor) Record(ctx context.Context, clk clock.PassiveClock, o sessionrun.Object, t xpv2.ConditionType, st Stage) (Report, error) {
	rep, err := e.Advance(ctx, st)
	if err != nil {
		return rep, err
	}
	switch rep.State {
	case Failed:
		sessionrun.SetCondition(clk, o, t, false, corev1alpha1.ReasonHooksExecutionFailed, rep.Message)
	case Succeeded:
		sessionrun.SetCondition(clk, o, t, true, corev1alpha1.ReasonHooksExecutionSucceeded, "")
	}
	return rep, nil
}

// RunPost is the post hooks' step of a session whose work has an outcome
// (st.Succeeded): it advances the stage until every hook ended and its
// condition t is recorded on o. It asks for a requeue while hooks are left.
func (e *Executor) RunPost(ctx context.Context, clk clock.PassiveClock, o Conditioned, t xpv2.ConditionType, st Stage) (time.Duration, error) {
	if len(*st.Status) == 0 || (o.GetCondition(t).Status != corev1.ConditionUnknown && Done(*st.Status)) {
		return 0, nil
	}
	rep, err := e.Record(ctx, clk, o, t, st)
	if err != nil || rep.State != Running {
		return 0, err
	}
	return rep.Requeue(), nil
}

// Conditioned is a session: it carries conditions and can be read back.
type Conditioned interface {
	sessionrun.Object
	GetCondition(t xpv2.ConditionType) xpv2.Condition
}

// Verdict is what a session's post hooks make of its work's outcome.
type Verdict int

// Verdicts.
const (
	// AsWork: no post hooks are owed, or they all ran and none failed; the
	// session's phase is its work's.
	AsWork Verdict = iota
	// Pending: post hooks are left to run; the session is still Running.
	Pending
	// PostFailed: a post hook failed; the session fails.
	PostFailed
)

// After is the verdict of the post hooks recorded in status, whose stage's
// condition is c, on a session whose work has an outcome.
func After(status []corev1alpha1.HookExecutionStatus, c xpv2.Condition) Verdict {
	switch {
	case !Done(status), len(status) > 0 && c.Status == corev1.ConditionUnknown:
		return Pending
	case len(status) > 0 && c.Status == corev1.ConditionFalse:
		return PostFailed
	default:
		return AsWork
	}
}

// Check says, without running it, whether hook h of a session in namespace
// ns can be carried out: its HookTemplate exists and admits ns (else
// missing, which may change without editing the session), and the hook and
// its template are written so that Stashplane can carry them out (else
// invalid). msg is "" when it can.
func (e *Executor) Check(ctx context.Context, ns string, h corev1alpha1.HookInfo) (msg string, invalid bool, err error) {
	rv, reason, why, err := e.resolve(ctx, Stage{Namespace: ns, Vars: Run{}.Vars()}, h)
	switch {
	case err != nil:
		return "", false, err
	case reason == hook.ReasonInvalid:
		return why, true, nil
	case reason != "":
		return why, false, nil
	}
	if why := hook.Unsupported(rv.spec); why != "" {
		return fmt.Sprintf("hook %q: %s", h.Name, why), true, nil
	}
	if f := rv.spec.Executor.Function; rv.spec.Executor.Type == corev1alpha1.HookExecutorFunction && f != nil {
		err := e.Kube.Get(ctx, client.ObjectKey{Name: f.Name}, &addonsv1alpha1.Function{})
		switch {
		case kerrors.IsNotFound(err):
			return fmt.Sprintf("hook %q: function %q of hooktemplate %q does not exist", h.Name, f.Name, h.HookTemplate.Name), false, nil
		case err != nil:
			return "", false, fmt.Errorf("cannot get function %q: %w", f.Name, err)
		}
	}
	return "", false, nil
}
