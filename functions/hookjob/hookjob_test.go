package hookjob

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
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
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/hook"
	"github.com/stashplane/stashplane/internal/hookrun"
)

// hookFunction renders one Job that echoes its params and the session.
const hookFunction = `
#Params: {
	count: int | *1
	who:   string
}
objects: [{
	apiVersion: "batch/v1"
	kind:       "Job"
	metadata: name: "ignored"
	spec: {
		backoffLimit: 6
		ttlSecondsAfterFinished: 10
		template: spec: {
			containers: [{
				name:  "hook"
				image: "busybox"
				command: ["sh", "-c", "echo \(params.count) \(params.who) \(context.session.name) \(context.task.kind) \(context.target.name)"]
				env: [{name: "TO", value: "template"}]
			}]
		}
	}
}]
`

func scheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, corev1alpha1.AddToScheme, addonsv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestStart(t *testing.T) {
	fn := &addonsv1alpha1.Function{ObjectMeta: metav1.ObjectMeta{Name: "echo"}, Spec: addonsv1alpha1.FunctionSpec{Template: hookFunction}}
	two := &addonsv1alpha1.Function{ObjectMeta: metav1.ObjectMeta{Name: "two"}, Spec: addonsv1alpha1.FunctionSpec{Template: `
#Params: {count?: _, who?: _}
objects: [for n in ["a", "b"] {apiVersion: "batch/v1", kind: "Job", metadata: name: n, spec: template: spec: containers: [{name: "c", image: "busybox"}]}]
`}}
	owner := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "run-1", UID: "u1"}}
	tmpl := func(name string) *corev1alpha1.HookTemplateSpec {
		return &corev1alpha1.HookTemplateSpec{Params: []addonsv1alpha1.ParameterDefinition{{Name: "count", Default: "1"}, {Name: "who", Default: "all"}, {Name: "note", Default: "for env only"}}, Executor: corev1alpha1.HookExecutor{Type: corev1alpha1.HookExecutorFunction,
			Function: &corev1alpha1.FunctionHookExecutorSpec{
				Name:         name,
				Env:          []corev1.EnvVar{{Name: "TO", Value: "hook"}},
				Volumes:      []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}},
			}}}
	}
	attempt := func(fn string) hookrun.Attempt {
		return hookrun.Attempt{Job: "run-1-pre-dump-1", Owner: owner, Hook: "dump", Template: tmpl(fn),
			Params:  map[string]any{"count": float64(3)},
			Vars:    map[string]string{hookrun.VarSession: "run-1", hookrun.VarSessionKind: "BackupSession", hookrun.VarTargetName: "web", "MODE": "fast"},
			Timeout: 90 * time.Second}
	}
	cases := map[string]struct {
		reason  string
		attempt hookrun.Attempt
		// wantInvalid is the *Invalid error's reason, "" when it starts.
		wantInvalid string
		want        *batchv1.Job
		// wantVolumes, for a case without want, are the Job's volumes.
		wantVolumes []corev1.Volume
	}{
		"OneJobShapedAsAnAttempt": {
			reason:  "A template param #Params does not declare is left out (it serves ${NAME} references). The Job takes the attempt's name, the template's env, volumes and mounts, the run's variables, no retries of its own, the hook's timeout, and is kept until its session goes.",
			attempt: attempt("echo"),
			want: &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "run-1-pre-dump-1",
					Labels: map[string]string{Label: "run-1", render.LabelAddon: "", render.LabelTask: "dump", corev1alpha1.LabelWatched: "true"}},
				Spec: batchv1.JobSpec{
					BackoffLimit: ptr.To[int32](0), ActiveDeadlineSeconds: ptr.To[int64](90),
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{corev1alpha1.LabelWatched: "true"}}, Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						Volumes:       []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
						Containers: []corev1.Container{{
							Name: "hook", Image: "busybox",
							Command: []string{"sh", "-c", "echo 3 all run-1 hook web"},
							Env: []corev1.EnvVar{{Name: "TO", Value: "hook"}, {Name: "STASHPLANE_SESSION", Value: "run-1"},
								{Name: "STASHPLANE_SESSION_KIND", Value: "BackupSession"}, {Name: "STASHPLANE_TARGET_NAME", Value: "web"}},
							VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}},
						}},
					}},
				},
			},
		},
		"MissingFunction": {
			reason:      "A Function that does not exist is a hook that cannot run.",
			attempt:     attempt("absent"),
			wantInvalid: `function "absent" does not exist`,
		},
		"HostPath": {
			reason: "A template volume mounting a host path (written before admission refused it) is a hook that cannot run.",
			attempt: func() hookrun.Attempt {
				a := attempt("echo")
				a.Template.Executor.Function.Volumes = append(a.Template.Executor.Function.Volumes,
					corev1.Volume{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
				return a
			}(),
			wantInvalid: `hook "dump": volume "root" mounts host path "/", which the target's pods do not mount; a hook's Job mounts only the target's own host paths`,
		},
		"TargetHostPath": {
			reason: "A host path the target's own pods mount is the target's data: a hook may work on it.",
			attempt: func() hookrun.Attempt {
				a := attempt("echo")
				a.Vars[hookrun.VarTargetKind] = "Deployment"
				a.Template.Executor.Function.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/web"}}}}
				return a
			}(),
			wantVolumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/web"}}}},
		},
		"OtherHostPath": {
			reason: "Another host path than the target's is refused.",
			attempt: func() hookrun.Attempt {
				a := attempt("echo")
				a.Vars[hookrun.VarTargetKind] = "Deployment"
				a.Template.Executor.Function.Volumes = []corev1.Volume{{Name: "etc", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}}}
				return a
			}(),
			wantInvalid: `hook "dump": volume "etc" mounts host path "/etc", which the target's pods do not mount; a hook's Job mounts only the target's own host paths`,
		},
		"TwoJobs": {
			reason:      "A hook's Function renders exactly one Job.",
			attempt:     attempt("two"),
			wantInvalid: `function "two" rendered 2 objects and 2 jobs; a hook's function renders exactly one Job`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			web := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "web"}, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/web"}}}}}}}}
			kube := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(fn, two, web).Build()
			j := &Jobs{Kube: kube, Renderer: render.New(render.Options{}), Image: "stashplane", Clock: clocktesting.NewFakeClock(time.Now())}
			err := j.Start(context.Background(), tc.attempt)
			var inv *hookrun.Invalid
			if tc.wantInvalid != "" {
				if !errors.As(err, &inv) || inv.Reason != tc.wantInvalid {
					t.Fatalf("%s\nStart: %v, want invalid %q", tc.reason, err, tc.wantInvalid)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nStart: %v", tc.reason, err)
			}
			got := &batchv1.Job{}
			if err := kube.Get(context.Background(), client.ObjectKey{Namespace: "app", Name: tc.attempt.Job}, got); err != nil {
				t.Fatal(err)
			}
			if !metav1.IsControlledBy(got, owner) {
				t.Errorf("the Job is not controlled by its session: %+v", got.OwnerReferences)
			}
			got.OwnerReferences, got.ResourceVersion, got.TypeMeta = nil, "", metav1.TypeMeta{}
			if tc.want == nil {
				if diff := cmp.Diff(tc.wantVolumes, got.Spec.Template.Spec.Volumes); diff != "" {
					t.Errorf("%s\njob volumes (-want +got):\n%s", tc.reason, diff)
				}
			} else if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\njob (-want +got):\n%s", tc.reason, diff)
			}
			// Starting the same attempt again is not an error.
			if err := j.Start(context.Background(), tc.attempt); err != nil {
				t.Errorf("starting the attempt again: %v", err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	job := func(age time.Duration, conds ...batchv1.JobCondition) *batchv1.Job {
		return &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "j", CreationTimestamp: metav1.NewTime(now.Add(-age))},
			Status:     batchv1.JobStatus{Conditions: conds, StartTime: ptr.To(metav1.NewTime(now.Add(-age)))},
		}
	}
	cond := func(t batchv1.JobConditionType, reason string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, LastTransitionTime: metav1.NewTime(now)}
	}
	cases := map[string]struct {
		reason  string
		job     *batchv1.Job
		want    hookrun.JobOutcome
		deleted bool
	}{
		"Missing": {reason: "No Job: not found.", want: hookrun.JobOutcome{}},
		"Running": {reason: "A Job without an end runs.", job: job(time.Minute), want: hookrun.JobOutcome{Found: true}},
		"Complete": {
			reason: "A complete Job succeeded.", job: job(time.Minute, cond(batchv1.JobComplete, "")),
			want: hookrun.JobOutcome{Found: true, Done: true, Result: hook.Result{Succeeded: true, Duration: time.Minute}},
		},
		"Failed": {
			reason: "A failed Job failed, saying why.", job: job(time.Minute, cond(batchv1.JobFailed, "BackoffLimitExceeded")),
			want: hookrun.JobOutcome{Found: true, Done: true, Result: hook.Result{Reason: hook.ReasonFailed, Output: `job "j" failed (BackoffLimitExceeded)`, Duration: time.Minute}},
		},
		"DeadlineExceeded": {
			reason: "A Job ended by its deadline timed out.", job: job(time.Minute, cond(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded)),
			want: hookrun.JobOutcome{Found: true, Done: true, Result: hook.Result{Reason: hook.ReasonTimedOut, Output: `job "j" did not finish within 1m0s`, Duration: time.Minute}},
		},
		"Overdue": {
			reason: "A Job still unfinished well past its timeout is deleted and timed out.", job: job(5 * time.Minute),
			want:    hookrun.JobOutcome{Found: true, Done: true, Result: hook.Result{Reason: hook.ReasonTimedOut, Output: `job "j" did not finish within 1m0s`, Duration: 5 * time.Minute}},
			deleted: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithScheme(scheme(t))
			if tc.job != nil {
				b = b.WithObjects(tc.job)
			}
			kube := b.Build()
			j := &Jobs{Kube: kube, Clock: clocktesting.NewFakeClock(now)}
			got, err := j.Check(context.Background(), "app", "j", time.Minute, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\noutcome (-want +got):\n%s", tc.reason, diff)
			}
			err = kube.Get(context.Background(), client.ObjectKey{Namespace: "app", Name: "j"}, &batchv1.Job{})
			if gone := err != nil; tc.job != nil && gone != tc.deleted {
				t.Errorf("%s\njob deleted: %v, want %v", tc.reason, gone, tc.deleted)
			}
		})
	}
}
