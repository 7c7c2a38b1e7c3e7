package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/hook"
)

// Pod hooks exec into a workload's pods through the API server, as the
// provider will before and after a backup: in one pod or all, as the
// container's user, failing with the command's last line (secrets removed),
// in time, and naming a container that does not exist.
func TestPodHooks(t *testing.T) {
	t.Parallel()
	c := devclustertest.Start(t)
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"db-0", "db-1"} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "db"}},
			Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](999), RunAsGroup: ptr.To[int64](999)},
				Containers: []corev1.Container{{
					Name: "db", Image: "busybox", Command: []string{"sleep", "3600"},
					VolumeMounts: []corev1.VolumeMount{{Name: "state", MountPath: "/state"}},
				}},
				Volumes: []corev1.Volume{{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			},
		}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"db-0", "db-1"} {
		waitPodRunning(t, cs, "default", name)
	}
	r := &hook.Runner{Kube: cs, Config: c.Config(), Clock: clock.RealClock{}}
	target := hook.Target{Namespace: "default", Selector: labels.SelectorFromSet(labels.Set{"app": "db"}), Secrets: []string{"s3cr3t-value"}}
	execHook := func(strategy corev1alpha1.PodHookExecutionStrategy, container string, command ...string) *corev1alpha1.HookTemplateSpec {
		return &corev1alpha1.HookTemplateSpec{
			Action:   &corev1alpha1.HookAction{Exec: &corev1.ExecAction{Command: command}, ContainerName: container},
			Executor: corev1alpha1.HookExecutor{Type: corev1alpha1.HookExecutorPod, Pod: &corev1alpha1.PodHookExecutorSpec{Strategy: strategy}},
		}
	}
	steps := []struct {
		reason  string
		tmpl    *corev1alpha1.HookTemplateSpec
		timeout time.Duration
		want    hook.Result
	}{
		{
			reason: "ExecuteOnAll quiesces every pod, as the container's user.",
			tmpl:   execHook(corev1alpha1.ExecuteOnAll, "", "sh", "-c", "echo quiesced > /state/flag && echo froze $(hostname) as $(id -u)"),
			want:   hook.Result{Succeeded: true, Output: "froze db-1 as 999", Pods: []string{"db-0", "db-1"}},
		},
		{
			reason: "What the first hook wrote is in each pod's own volume.",
			tmpl:   execHook(corev1alpha1.ExecuteOnAll, "db", "cat", "/state/flag"),
			want:   hook.Result{Succeeded: true, Output: "quiesced", Pods: []string{"db-0", "db-1"}},
		},
		{
			reason: "ExecuteOnOne runs in the first pod only; a failing command fails the hook with its last line, without the secret.",
			tmpl:   execHook(corev1alpha1.ExecuteOnOne, "", "sh", "-c", "echo connecting; echo refused for s3cr3t-value >&2; exit 3"),
			want:   hook.Result{Reason: hook.ReasonFailed, Output: "refused for [redacted]", Pods: []string{"db-0"}},
		},
		{
			reason:  "A hook past its timeout fails as timed out.",
			tmpl:    execHook(corev1alpha1.ExecuteOnOne, "", "sleep", "30"),
			timeout: 2 * time.Second,
			want:    hook.Result{Reason: hook.ReasonTimedOut, Output: "the hook did not finish within 2s", Pods: []string{"db-0"}},
		},
		{
			reason: "A container the pod does not have is named.",
			tmpl:   execHook(corev1alpha1.ExecuteOnOne, "sidecar", "true"),
			want:   hook.Result{Reason: hook.ReasonNoContainer, Output: `pod "db-0" has no container "sidecar"`, Pods: []string{"db-0"}},
		},
	}
	for i, s := range steps {
		timeout := s.timeout
		if timeout == 0 {
			timeout = time.Minute
		}
		got := r.Run(ctx, s.tmpl, target, timeout)
		if diff := cmp.Diff(s.want, got, cmpopts.IgnoreFields(hook.Result{}, "Duration")); diff != "" {
			t.Errorf("step %d: %s\n-want +got:\n%s", i, s.reason, diff)
		}
		if got.Duration > timeout+10*time.Second {
			t.Errorf("step %d: the hook took %s with a timeout of %s", i, got.Duration, timeout)
		}
	}
}
