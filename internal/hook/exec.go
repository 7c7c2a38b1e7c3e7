package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// maxCapture bounds what an exec'd command's output the provider keeps.
const maxCapture = 64 << 10

// execAll runs the action's command in each pod, one after another, and
// stops at the first failure.
func (r *Runner) execAll(ctx context.Context, pods []corev1.Pod, action *corev1alpha1.HookAction) Result {
	res := Result{Succeeded: true}
	for _, p := range pods {
		res.Pods = append(res.Pods, p.Name)
		container := action.ContainerName
		if container == "" {
			container = p.Spec.Containers[0].Name
		}
		if !hasContainer(p, container) {
			return Result{Reason: ReasonNoContainer, Pods: res.Pods, Output: fmt.Sprintf("pod %q has no container %q", p.Name, container)}
		}
		out, err := r.exec(ctx, p, container, action.Exec.Command)
		res.Output = out
		if err != nil {
			res.Succeeded, res.Reason = false, ReasonFailed
			var exit utilexec.ExitError
			if errors.As(err, &exit) {
				if strings.TrimSpace(out) == "" {
					res.Output = fmt.Sprintf("command exited %d in pod %q", exit.ExitStatus(), p.Name)
				}
			} else {
				res.Output = fmt.Sprintf("cannot exec in pod %q: %v", p.Name, err)
			}
			return res
		}
	}
	return res
}

func hasContainer(p corev1.Pod, name string) bool {
	for _, c := range p.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// exec runs a command in a container through the API server, as kubectl
// exec does, and returns what it printed, standard error after standard
// output.
func (r *Runner) exec(ctx context.Context, p corev1.Pod, container string, command []string) (string, error) {
	stdout, stderr := &Capped{Max: maxCapture}, &Capped{Max: maxCapture}
	err := Exec(ctx, r.Config, r.Kube, p.Namespace, p.Name, container, command, stdout, stderr)
	return stdout.String() + stderr.String(), err
}

// Exec runs command in a container of a pod through the API server, as
// kubectl exec does (WebSocket, else SPDY), streaming its standard output
// and error to stdout and stderr. A command that exits non-zero returns an
// error of k8s.io/client-go/util/exec's ExitError.
func Exec(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, namespace, pod, container string, command []string, stdout, stderr io.Writer) error {
	if len(command) == 0 {
		return errors.New("the exec action has no command")
	}
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	if err != nil {
		return fmt.Errorf("cannot make exec client: %w", err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		return fmt.Errorf("cannot make exec client: %w", err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return fmt.Errorf("cannot make exec client: %w", err)
	}
	return ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: stdout, Stderr: stderr})
}

// Capped keeps the last Max bytes written to it.
type Capped struct {
	bytes.Buffer
	Max int
}

func (c *Capped) Write(p []byte) (int, error) {
	n := len(p)
	c.Buffer.Write(p)
	if over := c.Len() - c.Max; over > 0 {
		c.Next(over)
	}
	return n, nil
}
