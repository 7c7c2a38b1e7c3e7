// Package hook carries out a HookTemplate's action: a command exec'd in
// the pods a selector picks (the Pod executor), or an HTTP request or TCP
// connection made by the provider itself to the target's pods or to a
// Service of the session's namespace (the Operator executor). It reports one
// Result per run: whether the action succeeded, where it ran and the last
// line of what it printed, cut short and with secrets removed, which is all
// of a hook's output that may reach an object's status.
//
// It knows nothing of sessions: the session controllers decide when a hook
// runs, with which timeout and how often it is retried.
package hook

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// Reasons a hook did not succeed, for a hook's status and the session's
// condition.
const (
	// ReasonFailed: the action ran and reported failure (a non-zero exit,
	// an HTTP status of 400 or more, a refused connection).
	ReasonFailed = "HookFailed"
	// ReasonTimedOut: the action did not finish within its timeout.
	ReasonTimedOut = "HookTimedOut"
	// ReasonNoPod: the selector picked no running pod.
	ReasonNoPod = "NoPodSelected"
	// ReasonNoContainer: the chosen pod has no such container.
	ReasonNoContainer = "ContainerNotFound"
	// ReasonNotAllowed: the action names a host the provider may not reach.
	ReasonNotAllowed = "HookTargetNotAllowed"
	// ReasonInvalid: the template cannot be carried out as written.
	ReasonInvalid = "HookInvalid"
)

// Result is what one run of a hook did.
type Result struct {
	// Succeeded says whether the action succeeded everywhere it ran.
	Succeeded bool
	// Reason says why it did not, one of the Reason constants.
	Reason string
	// Output is the last line the action printed (its failure when it
	// failed), at most MaxOutput bytes, with secret values removed.
	Output string
	// Pods are the pods the action ran in or was aimed at.
	Pods []string
	// Duration is how long the run took.
	Duration time.Duration
}

// Runner runs hooks against one cluster.
type Runner struct {
	// Kube reads pods, Services and EndpointSlices.
	Kube kubernetes.Interface
	// Config is the provider's client configuration, for exec.
	Config *rest.Config
	// Clock times runs.
	Clock clock.PassiveClock
	// Dialer makes the Operator executor's connections; nil means a
	// net.Dialer.
	Dialer Dialer
}

// NewRunner is a Runner that reaches the cluster of cfg.
func NewRunner(cfg *rest.Config, clk clock.PassiveClock) (*Runner, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot make hook client: %w", err)
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Runner{Kube: kube, Config: cfg, Clock: clk}, nil
}

// Target says where a hook's action is aimed: the pods of a workload.
type Target struct {
	// Namespace of the session, the target and every pod or Service a hook
	// may reach.
	Namespace string
	// Selector picks the target's pods when the template's executor names
	// none.
	Selector labels.Selector
	// Secrets are values never to show in output (passwords, tokens).
	Secrets []string
}

// Run carries out the template's action once within timeout.
func (r *Runner) Run(ctx context.Context, tmpl *corev1alpha1.HookTemplateSpec, target Target, timeout time.Duration) Result {
	start := r.Clock.Now()
	res := r.run(ctx, tmpl, target, timeout)
	res.Duration = r.Clock.Since(start)
	res.Output = CleanOutput(res.Output, target.Secrets)
	return res
}

// Unsupported says why the Runner cannot carry out a template as written,
// or "".
func Unsupported(t *corev1alpha1.HookTemplateSpec) string {
	a := t.Action
	switch {
	case t.Executor.Type == corev1alpha1.HookExecutorFunction && t.Executor.Function == nil:
		return "a Function executor needs executor.function, the Function whose Job runs the hook"
	case t.Executor.Type == corev1alpha1.HookExecutorFunction && a != nil:
		return "a Function executor runs its Function's Job, which takes no action: remove spec.action, or use a Pod or Operator executor"
	case t.Executor.Type == corev1alpha1.HookExecutorFunction:
		return ""
	case t.Executor.Type != corev1alpha1.HookExecutorFunction && t.Executor.Function != nil:
		return "executor.function is read only by a Function executor: remove it, or set executor.type to Function"
	case a == nil:
		return "the hook template has no action"
	case t.Executor.Type == corev1alpha1.HookExecutorPod && a.Exec == nil:
		return "a Pod executor carries out exec actions only"
	case t.Executor.Type == corev1alpha1.HookExecutorOperator && a.Exec != nil:
		return "an Operator executor makes httpGet, httpPost and tcpSocket calls, not exec"
	case t.Executor.Type != corev1alpha1.HookExecutorPod && t.Executor.Type != corev1alpha1.HookExecutorOperator:
		return fmt.Sprintf("executor %q is not carried out by the provider", t.Executor.Type)
	}
	return ""
}

func (r *Runner) run(ctx context.Context, tmpl *corev1alpha1.HookTemplateSpec, target Target, timeout time.Duration) Result {
	if why := Unsupported(tmpl); why != "" {
		return Result{Reason: ReasonInvalid, Output: why}
	}
	if tmpl.Executor.Type == corev1alpha1.HookExecutorFunction {
		return Result{Reason: ReasonInvalid, Output: "a Function executor's hook runs as a Job, which this provider was not given the means to create"}
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pods, res, ok := r.pods(ctx, tmpl, target)
	if !ok {
		return res
	}
	var out Result
	switch tmpl.Executor.Type {
	case corev1alpha1.HookExecutorPod:
		out = r.execAll(ctx, pods, tmpl.Action)
	default:
		out = r.callAll(ctx, pods, target.Namespace, tmpl.Action)
	}
	if !out.Succeeded && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		out.Reason, out.Output = ReasonTimedOut, fmt.Sprintf("the hook did not finish within %s", timeout)
	}
	return out
}

// DefaultTimeout bounds a hook run whose HookInfo sets no timeout.
const DefaultTimeout = 5 * time.Minute

// pods lists the running pods the hook runs in, by the executor's selector
// or else the target's, sorted by name; with ExecuteOnOne only the first
// ready one.
func (r *Runner) pods(ctx context.Context, tmpl *corev1alpha1.HookTemplateSpec, target Target) ([]corev1.Pod, Result, bool) {
	sel := target.Selector
	strategy := corev1alpha1.ExecuteOnOne
	if p := tmpl.Executor.Pod; p != nil {
		if p.Selector != "" {
			s, err := labels.Parse(p.Selector)
			if err != nil {
				return nil, Result{Reason: ReasonInvalid, Output: fmt.Sprintf("cannot parse pod selector %q", p.Selector)}, false
			}
			sel = s
		}
		if p.Strategy != "" {
			strategy = p.Strategy
		}
	}
	if sel == nil || sel.Empty() {
		return nil, Result{Reason: ReasonInvalid, Output: "the hook selects no pods: set executor.pod.selector"}, false
	}
	list, err := r.Kube.CoreV1().Pods(target.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, Result{Reason: ReasonFailed, Output: "cannot list the hook's pods"}, false
	}
	var owner *metav1.OwnerReference
	if p := tmpl.Executor.Pod; p != nil {
		owner = p.Owner
	}
	var running []corev1.Pod
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && ready(p) && ownedBy(p, owner) {
			running = append(running, p)
		}
	}
	if len(running) == 0 {
		msg := fmt.Sprintf("no ready pod in namespace %q matches %q", target.Namespace, sel.String())
		if owner != nil {
			msg += fmt.Sprintf(" and is owned by %s %q", owner.Kind, owner.Name)
		}
		return nil, Result{Reason: ReasonNoPod, Output: msg}, false
	}
	sort.Slice(running, func(i, j int) bool { return running[i].Name < running[j].Name })
	if strategy == corev1alpha1.ExecuteOnOne {
		running = running[:1]
	}
	return running, Result{}, true
}

// ownedBy says whether want, if set, is one of the pod's direct owners: by
// kind and name, by uid and API group when want gives them, and as the
// pod's controller when want says controller.
func ownedBy(p corev1.Pod, want *metav1.OwnerReference) bool {
	if want == nil {
		return true
	}
	group := func(apiVersion string) string {
		if g, _, ok := strings.Cut(apiVersion, "/"); ok {
			return g
		}
		return ""
	}
	for _, o := range p.OwnerReferences {
		if o.Kind != want.Kind || o.Name != want.Name || (want.UID != "" && o.UID != want.UID) {
			continue
		}
		if ptr.Deref(want.Controller, false) && !ptr.Deref(o.Controller, false) {
			continue
		}
		if want.APIVersion == "" || group(o.APIVersion) == group(want.APIVersion) {
			return true
		}
	}
	return false
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// MaxOutput bounds the output a Result keeps.
const MaxOutput = 256

const minSecret = 4

// CleanOutput keeps the last non-empty line of out, without any of the
// secret values, cut to MaxOutput bytes on a character boundary. Values
// shorter than minSecret are not looked for: they would blank ordinary
// words and are no secret worth the name.
func CleanOutput(out string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= minSecret {
			out = strings.ReplaceAll(out, s, "[redacted]")
		}
	}
	lines := strings.Split(strings.TrimRight(out, "\r\n\t "), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if len(last) > MaxOutput {
		cut := MaxOutput
		for cut > 0 && (last[cut]&0xC0) == 0x80 {
			cut--
		}
		last = last[:cut] + "…"
	}
	return last
}
