// Package hookjob carries out the hooks whose HookTemplate has a Function
// executor: each attempt is one Job, rendered from the Function's CUE
// template with the hook's params and the run's variables, given the
// template's env, volumes and volume mounts, owned by the session and
// created under a name fixed by the session, the hook and the attempt. It
// then reads how that Job ended: its conditions, its newest pod's name and
// the last line that pod printed.
//
// It knows nothing of retries or stages: internal/hookrun decides when an
// attempt starts and what its outcome means for the session.
package hookjob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/hook"
	"github.com/stashplane/stashplane/internal/hookrun"
	"github.com/stashplane/stashplane/internal/sessionjob"
)

// Label marks a hook's Job with the name of the session it runs for. It is
// not the session's own Job label, so that a backup or restore never takes
// a hook's Job for one of its own.
const Label = "core.stashplane.io/hook-session"

// logLines is how many lines of a hook pod's log are read to find its last.
const logLines = 5

// grace is how long past its timeout a Job may stay unfinished before it
// is called timed out and deleted: time for the Job controller to end it.
const grace = 30 * time.Second

// Jobs runs hooks' Jobs in one cluster.
type Jobs struct {
	// Kube reads Functions, and creates and reads Jobs and pods.
	Kube client.Client
	// API reads past Kube's cache, to tell a Job that is missing from one
	// the cache has not seen yet; nil trusts Kube.
	API client.Reader
	// Logs reads what a hook's pod printed; nil leaves outputs to the
	// Job's conditions.
	Logs *sessionjob.PodLogs
	// Renderer renders Functions.
	Renderer *render.Renderer
	// Image is the stashplane image, for templates that run it.
	Image string
	// Clock tells when a Job is overdue.
	Clock clock.PassiveClock
}

// New is Jobs reaching the cluster of cfg through the client c and, past
// its cache, api.
func New(c client.Client, api client.Reader, cfg *rest.Config, r *render.Renderer, image string, clk clock.PassiveClock) (*Jobs, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot make hook job client: %w", err)
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Jobs{Kube: c, API: api, Logs: &sessionjob.PodLogs{CS: cs}, Renderer: r, Image: image, Clock: clk}, nil
}

// Start renders the attempt's Job and creates it. Creating a Job that
// exists, owned by the same session, is not an error: an attempt whose
// start was cut short is started again under the same name. A *hookrun.Invalid
// error says the hook cannot run as written.
func (j *Jobs) Start(ctx context.Context, a hookrun.Attempt) error {
	f := a.Template.Executor.Function
	if f == nil {
		return &hookrun.Invalid{Reason: "the hook template's executor names no function"}
	}
	fn := &addonsv1alpha1.Function{}
	if err := j.Kube.Get(ctx, client.ObjectKey{Name: f.Name}, fn); err != nil {
		if kerrors.IsNotFound(err) {
			return &hookrun.Invalid{Reason: fmt.Sprintf("function %q does not exist", f.Name)}
		}
		return fmt.Errorf("cannot get function %q: %w", f.Name, err)
	}
	job, err := j.Render(ctx, fn, a)
	if err != nil {
		return err
	}
	if err := sessionjob.Ensure(ctx, j.Kube, j.api(), a.Owner, job, map[string]string{Label: a.Owner.GetName()}); err != nil {
		if errors.Is(err, sessionjob.ErrNotOwned) {
			return &hookrun.Invalid{Reason: err.Error()}
		}
		return err
	}
	return nil
}

// Render is the Job of an attempt, as Start would create it.
func (j *Jobs) Render(ctx context.Context, fn *addonsv1alpha1.Function, a hookrun.Attempt) (*batchv1.Job, error) {
	params, err := json.Marshal(a.Params)
	if err != nil {
		return nil, &hookrun.Invalid{Reason: fmt.Sprintf("cannot encode the params of hook %q: %v", a.Hook, err)}
	}
	vars := map[string]string{}
	for k, v := range a.Vars {
		vars[k] = v
	}
	c := render.Context{
		Namespace: a.Owner.GetNamespace(),
		Session:   render.ObjectRef{APIGroup: corev1alpha1.Group, Kind: a.Vars[hookrun.VarSessionKind], Name: a.Vars[hookrun.VarSession]},
		Target: render.Target{Kind: a.Vars[hookrun.VarTargetKind], Name: a.Vars[hookrun.VarTargetName],
			Namespace: a.Vars[hookrun.VarTargetNamespace]},
		Image:     j.Image,
		Variables: vars,
	}
	out, err := j.Renderer.RenderHook(ctx, fn, a.Hook, a.Template.Params, params, c)
	if err != nil {
		return nil, &hookrun.Invalid{Reason: fmt.Sprintf("cannot render function %q: %v", fn.Name, err)}
	}
	jobs, err := out.Jobs()
	if err != nil {
		return nil, &hookrun.Invalid{Reason: fmt.Sprintf("cannot read the job function %q rendered: %v", fn.Name, err)}
	}
	if len(jobs) != 1 || len(out.Objects) != 1 {
		return nil, &hookrun.Invalid{Reason: fmt.Sprintf("function %q rendered %d objects and %d jobs; a hook's function renders exactly one Job", fn.Name, len(out.Objects), len(jobs))}
	}
	job := jobs[0]
	job.Name = a.Job
	shape(job, a)
	// A host path only at one the target's own pods mount, as for the
	// Jobs of a run's tasks (functions/render's Job rules): a tenant's
	// HookTemplate reads no other node files.
	allowed, err := j.targetHostPaths(ctx, a)
	if err != nil {
		return nil, err
	}
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.HostPath != nil && !allowed[v.HostPath.Path] {
			return nil, &hookrun.Invalid{Reason: fmt.Sprintf("hook %q: volume %q mounts host path %q, which the target's pods do not mount; a hook's Job mounts only the target's own host paths", a.Hook, v.Name, v.HostPath.Path)}
		}
	}
	return job, nil
}

// podOwners are the kinds whose pod template a hook's target may name,
// by their apps/v1 kind.
var podOwners = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true}

// targetHostPaths are the host paths the pod template of the attempt's
// target mounts: none for a target of another kind, or one that is gone.
func (j *Jobs) targetHostPaths(ctx context.Context, a hookrun.Attempt) (map[string]bool, error) {
	kind, name, ns := a.Vars[hookrun.VarTargetKind], a.Vars[hookrun.VarTargetName], a.Vars[hookrun.VarTargetNamespace]
	if ns == "" {
		ns = a.Owner.GetNamespace()
	}
	out := map[string]bool{}
	if !podOwners[kind] || name == "" {
		return out, nil
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apps/v1")
	u.SetKind(kind)
	err := j.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)
	if kerrors.IsNotFound(err) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot get %s %s/%s: %w", strings.ToLower(kind), ns, name, err)
	}
	vols, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "volumes")
	for _, v := range vols {
		if p, ok, _ := unstructured.NestedString(v.(map[string]any), "hostPath", "path"); ok {
			out[p] = true
		}
	}
	return out, nil
}

// shape makes a rendered Job one attempt of the hook: the template's env,
// volumes and volume mounts added, the run's variables as env, no retries
// of its own (the hook's maxRetry makes new attempts), the hook's timeout
// as its deadline, and kept until the session goes (a Job removed before
// its outcome was read would be started again).
func shape(job *batchv1.Job, a hookrun.Attempt) {
	f := a.Template.Executor.Function
	spec := &job.Spec.Template.Spec
	spec.Volumes = append(spec.Volumes, f.Volumes...)
	env := append([]corev1.EnvVar{}, f.Env...)
	for _, k := range sortedKeys(a.Vars) {
		if strings.HasPrefix(k, "STASHPLANE_") {
			env = append(env, corev1.EnvVar{Name: k, Value: a.Vars[k]})
		}
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			cs[i].Env = setEnv(cs[i].Env, env)
			cs[i].VolumeMounts = append(cs[i].VolumeMounts, f.VolumeMounts...)
		}
	}
	if spec.RestartPolicy == "" || spec.RestartPolicy == corev1.RestartPolicyAlways {
		spec.RestartPolicy = corev1.RestartPolicyNever
	}
	job.Spec.BackoffLimit = ptr.To[int32](0)
	job.Spec.TTLSecondsAfterFinished = nil
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = hook.DefaultTimeout
	}
	secs := int64(timeout.Round(time.Second) / time.Second)
	job.Spec.ActiveDeadlineSeconds = ptr.To(max(secs, 1))
}

// setEnv sets each of add in env, replacing a variable of the same name.
func setEnv(env, add []corev1.EnvVar) []corev1.EnvVar {
	for _, e := range add {
		replaced := false
		for i := range env {
			if env[i].Name == e.Name {
				env[i], replaced = e, true
			}
		}
		if !replaced {
			env = append(env, e)
		}
	}
	return env
}

// api reads past Kube's cache where there is a reader for it.
func (j *Jobs) api() client.Reader {
	if j.API != nil {
		return j.API
	}
	return j.Kube
}

// Check reads the attempt's Job in namespace ns. A Job unfinished past
// its timeout and a grace period is deleted and called timed out; its
// pods' output is read only once it ended.
func (j *Jobs) Check(ctx context.Context, ns, name string, timeout time.Duration, secrets []string) (hookrun.JobOutcome, error) {
	job := &batchv1.Job{}
	err := j.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, job)
	if kerrors.IsNotFound(err) && j.API != nil {
		err = j.API.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, job)
	}
	if kerrors.IsNotFound(err) {
		return hookrun.JobOutcome{}, nil
	}
	if err != nil {
		return hookrun.JobOutcome{}, fmt.Errorf("cannot get hook job %q: %w", name, err)
	}
	if job.DeletionTimestamp != nil {
		return hookrun.JobOutcome{}, nil
	}
	if timeout <= 0 {
		timeout = hook.DefaultTimeout
	}
	now := j.Clock.Now()
	pod := sessionjob.NewestPod(ctx, j.Kube, j.api(), job)
	res := hook.Result{Duration: elapsed(job, now)}
	if pod != nil {
		res.Pods = []string{pod.Name}
	}
	ended, ok, why := outcome(job)
	switch {
	case ended:
	case now.Sub(job.CreationTimestamp.Time) > timeout+grace:
		if err := j.Kube.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return hookrun.JobOutcome{}, fmt.Errorf("cannot delete overdue hook job %q: %w", name, err)
		}
		res.Reason, res.Output = hook.ReasonTimedOut, fmt.Sprintf("job %q did not finish within %s", name, timeout)
		return hookrun.JobOutcome{Found: true, Done: true, Result: res}, nil
	default:
		return hookrun.JobOutcome{Found: true}, nil
	}
	out := j.lastLine(ctx, job, pod)
	switch {
	case ok:
		res.Succeeded = true
		res.Output = out
	case why == batchv1.JobReasonDeadlineExceeded:
		res.Reason, res.Output = hook.ReasonTimedOut, fmt.Sprintf("job %q did not finish within %s", name, timeout)
	default:
		res.Reason = hook.ReasonFailed
		res.Output = fmt.Sprintf("job %q failed (%s)", name, why)
		if out != "" {
			res.Output = out
		}
	}
	res.Output = hook.CleanOutput(res.Output, secrets)
	return hookrun.JobOutcome{Found: true, Done: true, Result: res}, nil
}

// outcome says whether the Job ended, whether it succeeded and, when it
// failed, the reason its condition gives.
func outcome(job *batchv1.Job) (ended, succeeded bool, reason string) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, true, ""
		case batchv1.JobFailed:
			return true, false, c.Reason
		}
	}
	return false, false, ""
}

// elapsed is how long the Job ran: from its start to its completion, or
// to now while it runs.
func elapsed(job *batchv1.Job, now time.Time) time.Duration {
	start := job.CreationTimestamp.Time
	if job.Status.StartTime != nil {
		start = job.Status.StartTime.Time
	}
	end := now
	if job.Status.CompletionTime != nil {
		end = job.Status.CompletionTime.Time
	} else {
		for _, c := range job.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				end = c.LastTransitionTime.Time
			}
		}
	}
	if end.Before(start) {
		return 0
	}
	return end.Sub(start)
}

// lastLine is the last line the pod's first container printed, or "" when
// it cannot be read: an outcome never waits for logs.
func (j *Jobs) lastLine(ctx context.Context, job *batchv1.Job, pod *corev1.Pod) string {
	if j.Logs == nil || pod == nil || len(job.Spec.Template.Spec.Containers) == 0 {
		return ""
	}
	out, err := j.Logs.Tail(ctx, pod.Namespace, pod.Name, job.Spec.Template.Spec.Containers[0].Name, logLines)
	if err != nil {
		return ""
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
