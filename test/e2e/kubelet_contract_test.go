package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/ptr"

	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
)

// The process node keeps a kubelet's contract: exec, users and groups,
// refreshed projected volumes, keyed fieldRefs and resourceFieldRefs, and
// quota and limit ranges enforced by the real control plane.

// kubectlRunner runs the pinned kubectl against one cluster.
type kubectlRunner struct {
	bin, kubeconfig string
}

func newKubectl(t *testing.T, dir string) kubectlRunner {
	t.Helper()
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	return kubectlRunner{bin: filepath.Join(bin, "kubectl"), kubeconfig: filepath.Join(dir, "kubeconfig")}
}

// run returns kubectl's standard output and exit code.
func (k kubectlRunner) run(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		t.Logf("kubectl %s: exit %d: %s", strings.Join(args, " "), exit.ExitCode(), errOut.String())
		return out.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), 0
}

// sizeQueue hands the terminal sizes of a channel to an exec client.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	s, ok := <-q
	if !ok {
		return nil
	}
	return &s
}

func waitPodRunning(t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	poll(t, 2*time.Minute, "pod "+name+" did not start running", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].Ready, nil
	})
}

func waitPodDone(t *testing.T, cs kubernetes.Interface, ns, name string) corev1.PodPhase {
	t.Helper()
	var phase corev1.PodPhase
	poll(t, 2*time.Minute, "pod "+name+" did not finish", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		phase = p.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, nil
	})
	return phase
}

func TestKubeletContract(t *testing.T) {
	t.Parallel()
	c := devclustertest.Start(t)
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	kubectl := newKubectl(t, c.Dir())
	ctx := context.Background()

	t.Run("Exec", func(t *testing.T) {
		// A pod whose only view of /stashplane-exec-only is its own volume.
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "exec-target", Namespace: "default"},
			Spec: corev1.PodSpec{
				// The init container writes the file before the main
				// container starts, so it is there once the pod runs.
				InitContainers: []corev1.Container{{
					Name: "fill", Image: "busybox", Command: []string{"sh", "-c", "echo only-in-the-pod > /stashplane-exec-only/file"},
					VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/stashplane-exec-only"}},
				}},
				Containers: []corev1.Container{{
					Name: "main", Image: "busybox", Command: []string{"sleep", "3600"},
					WorkingDir:   "/stashplane-exec-only",
					Env:          []corev1.EnvVar{{Name: "FROM_SPEC", Value: "env-of-the-container"}},
					VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/stashplane-exec-only"}},
				}},
				Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			},
		}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, cs, "default", pod.Name)
		got, code := kubectl.run(t, "", "exec", pod.Name, "--", "sh", "-c", `cat file; pwd; echo "$FROM_SPEC"; hostname`)
		if diff := cmp.Diff("only-in-the-pod\n/stashplane-exec-only\nenv-of-the-container\nexec-target\n", got); diff != "" || code != 0 {
			t.Errorf("kubectl exec (exit %d) sees the container's mounts, working directory, env and host name: -want +got:\n%s", code, diff)
		}
		got, code = kubectl.run(t, "piped in\n", "exec", "-i", pod.Name, "--", "sh", "-c", "cat > copy && cat copy")
		if diff := cmp.Diff("piped in\n", got); diff != "" || code != 0 {
			t.Errorf("kubectl exec -i (exit %d) passes stdin: -want +got:\n%s", code, diff)
		}
		if _, code := kubectl.run(t, "", "exec", pod.Name, "--", "sh", "-c", "exit 7"); code != 7 {
			t.Errorf("kubectl exec of a program exiting 7 exited %d", code)
		}
		// With a terminal: the program's output is a terminal of the
		// size the client asked for.
		req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(pod.Name).SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: "main", Command: []string{"sh", "-c", "tty; stty size"}, Stdout: true, TTY: true}, scheme.ParameterCodec)
		ex, err := remotecommand.NewSPDYExecutor(c.Config(), "POST", req.URL())
		if err != nil {
			t.Fatal(err)
		}
		var ttyOut bytes.Buffer
		sizes := make(chan remotecommand.TerminalSize, 1)
		sizes <- remotecommand.TerminalSize{Width: 101, Height: 33}
		close(sizes)
		if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &ttyOut, Tty: true, TerminalSizeQueue: sizeQueue(sizes)}); err != nil {
			t.Fatalf("exec with a terminal: %v", err)
		}
		if lines := strings.Split(strings.ReplaceAll(ttyOut.String(), "\r", ""), "\n"); len(lines) < 2 || !strings.HasPrefix(lines[0], "/dev/pts/") || lines[1] != "33 101" {
			t.Errorf("exec with a terminal of 101x33: got %q", ttyOut.String())
		}
		if _, err := os.Stat("/stashplane-exec-only"); err == nil {
			t.Error("the pod's mount point shows on the host")
		}

		// attach: the container reads a line from its stdin and answers.
		reader := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "attach-target", Namespace: "default"},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{
					Name: "main", Image: "busybox", Stdin: true, StdinOnce: true,
					Command: []string{"sh", "-c", "echo before-attach; read line; echo got:$line"},
				}},
			},
		}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, reader, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, cs, "default", reader.Name)
		poll(t, time.Minute, "the container did not write before the attach", func(ctx context.Context) (bool, error) {
			return strings.Contains(podLogs(t, cs, "default", reader.Name, "main"), "before-attach"), nil
		})
		got, code = kubectl.run(t, "hello\n", "attach", "-i", reader.Name)
		if !strings.Contains(got, "got:hello") || strings.Contains(got, "before-attach") || code != 0 {
			t.Errorf("kubectl attach -i (exit %d) feeds stdin and shows only what follows: got %q", code, got)
		}
	})

	t.Run("PortForward", func(t *testing.T) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "forwarded", Namespace: "default"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "web", Image: "ghcr.io/stashplane/stashplane",
				Command: []string{"stashplane", "dev", "probe", "serve", "--listen", "$(POD_IP):8080", "--reply", "through port-forward"},
				Env:     []corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}},
			}}},
		}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, cs, "default", pod.Name)
		// kubectl port-forward gives up on its first refused connection:
		// wait until the server listens (the node reaches pod IPs).
		running, err := cs.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		poll(t, time.Minute, "the pod's server did not listen", func(ctx context.Context) (bool, error) {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(running.Status.PodIP, "8080"), time.Second)
			if err != nil {
				return false, nil
			}
			conn.Close()
			return true, nil
		})
		fwdCtx, stop := context.WithCancel(ctx)
		defer stop()
		cmd := exec.CommandContext(fwdCtx, kubectl.bin, "--kubeconfig", kubectl.kubeconfig, "port-forward", "pod/"+pod.Name, "--address", "127.0.0.1", ":8080")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { stop(); _ = cmd.Wait() }()
		// "Forwarding from 127.0.0.1:PORT -> 8080"
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			t.Fatalf("kubectl port-forward printed no address: %v", err)
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			t.Fatalf("kubectl port-forward printed %q", line)
		}
		var body string
		poll(t, 30*time.Second, "nothing answered through the forwarded port", func(ctx context.Context) (bool, error) {
			resp, err := http.Get("http://" + fields[2] + "/")
			if err != nil {
				return false, nil
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			body = string(b)
			return err == nil, nil
		})
		if diff := cmp.Diff("through port-forward", strings.TrimSpace(body)); diff != "" {
			t.Errorf("an HTTP request through kubectl port-forward: -want +got:\n%s", diff)
		}
	})

	t.Run("Users", func(t *testing.T) {
		claim := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "owned", Namespace: "default"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
			},
		}
		if _, err := cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "as-999", Namespace: "default"},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				SecurityContext: &corev1.PodSecurityContext{
					RunAsUser: ptr.To[int64](999), RunAsGroup: ptr.To[int64](999), FSGroup: ptr.To[int64](2000),
					SupplementalGroups: []int64{3000}, RunAsNonRoot: ptr.To(true),
				},
				Containers: []corev1.Container{busybox("main",
					`id -u; id -G; echo data > /claim/file && stat -c '%u:%g' /claim/file; echo scratch > /scratch/file && stat -c '%u:%g' /scratch/file; touch /root-owned 2>/dev/null && echo wrote-root || echo cannot-write-root`)},
				Volumes: []corev1.Volume{
					{Name: "claim", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "owned"}}},
					{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				},
			},
		}
		pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "claim", MountPath: "/claim"}, {Name: "scratch", MountPath: "/scratch"}}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if phase := waitPodDone(t, cs, "default", pod.Name); phase != corev1.PodSucceeded {
			t.Fatalf("pod ended %s: %s", phase, podLogs(t, cs, "default", pod.Name, "main"))
		}
		want := "999\n999 2000 3000\n999:2000\n999:2000\ncannot-write-root\n"
		if diff := cmp.Diff(want, podLogs(t, cs, "default", pod.Name, "main")); diff != "" {
			t.Errorf("a container run as uid 999 with fsGroup 2000 writes files owned by 999:2000 and cannot write as root: -want +got:\n%s", diff)
		}

		refused := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "nonroot-as-root", Namespace: "default"},
			Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
				Containers:      []corev1.Container{busybox("main", "true")},
			},
		}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, refused, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, time.Minute, "a runAsNonRoot container without a user did not wait with CreateContainerConfigError", func(ctx context.Context) (bool, error) {
			p, err := cs.CoreV1().Pods("default").Get(ctx, refused.Name, metav1.GetOptions{})
			if err != nil || len(p.Status.ContainerStatuses) == 0 {
				return false, nil
			}
			w := p.Status.ContainerStatuses[0].State.Waiting
			return p.Status.Phase == corev1.PodPending && w != nil && w.Reason == "CreateContainerConfigError" && strings.Contains(w.Message, "runAsNonRoot"), nil
		})
	})

	t.Run("ProjectedVolumesAndFields", func(t *testing.T) {
		if _, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "rotating"},
			Data:       map[string][]byte{"value": []byte("v1")},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The init container runs while the test changes the Secret: the
		// main container must start with the new value; then it waits for
		// a third value written while it runs, and for a label change.
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "projected", Namespace: "default", Labels: map[string]string{"tier": "gold"}, Annotations: map[string]string{"stashplane.io/note": "hello"}},
			Spec: corev1.PodSpec{
				RestartPolicy:  corev1.RestartPolicyNever,
				InitContainers: []corev1.Container{busybox("wait", "while [ ! -e /signal/go ]; do sleep 0.2; done")},
				Containers: []corev1.Container{{
					Name: "main", Image: "busybox",
					Command: []string{"sh", "-c", `cat /secret/value; echo; echo "$TIER $NOTE $MEM"; ` +
						`until [ "$(cat /secret/value)" = v3 ]; do sleep 0.2; done; echo v3; ` +
						`until grep -q 'tier="platinum"' /info/labels; do sleep 0.2; done; cat /info/tier`},
					Env: []corev1.EnvVar{
						{Name: "TIER", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['tier']"}}},
						{Name: "NOTE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['stashplane.io/note']"}}},
						{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
					},
					Resources:    corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("48Mi")}},
					VolumeMounts: []corev1.VolumeMount{{Name: "secret", MountPath: "/secret"}, {Name: "info", MountPath: "/info"}},
				}},
				Volumes: []corev1.Volume{
					{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "rotating"}}},
					{Name: "signal", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
						{Path: "tier", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['tier']"}},
					}}}},
				},
			},
		}
		pod.Spec.InitContainers[0].VolumeMounts = []corev1.VolumeMount{{Name: "signal", MountPath: "/signal"}}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, time.Minute, "the init container did not start", func(ctx context.Context) (bool, error) {
			p, err := cs.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
			return err == nil && len(p.Status.InitContainerStatuses) > 0 && p.Status.InitContainerStatuses[0].State.Running != nil, nil
		})
		setSecret := func(v string) {
			t.Helper()
			if _, err := cs.CoreV1().Secrets("default").Patch(ctx, "rotating", types.MergePatchType,
				[]byte(`{"stringData":{"value":"`+v+`"}}`), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		setSecret("v2")
		// Let the init container finish through exec: it writes the signal.
		if _, code := kubectl.run(t, "", "exec", pod.Name, "-c", "wait", "--", "touch", "/signal/go"); code != 0 {
			t.Fatalf("cannot signal the init container: exit %d", code)
		}
		waitPodRunning(t, cs, "default", pod.Name)
		setSecret("v3")
		if _, err := cs.CoreV1().Pods("default").Patch(ctx, pod.Name, types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"tier":"platinum"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if phase := waitPodDone(t, cs, "default", pod.Name); phase != corev1.PodSucceeded {
			t.Fatalf("pod ended %s: %s", phase, podLogs(t, cs, "default", pod.Name, "main"))
		}
		want := "v2\ngold hello 48\nv3\nplatinum"
		if diff := cmp.Diff(want, podLogs(t, cs, "default", pod.Name, "main")); diff != "" {
			t.Errorf("a Secret changed before the container starts and while it runs, keyed fieldRefs, a resourceFieldRef and a label change: -want +got:\n%s", diff)
		}
	})

	t.Run("QuotaAndLimitRange", func(t *testing.T) {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "limited"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().ResourceQuotas("limited").Create(ctx, &corev1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{Name: "no-jobs"},
			Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/jobs.batch": resource.MustParse("0")}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().LimitRanges("limited").Create(ctx, &corev1.LimitRange{
			ObjectMeta: metav1.ObjectMeta{Name: "defaults"},
			Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
				Type:    corev1.LimitTypeContainer,
				Default: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("96Mi")},
			}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Quota admission refuses until the quota controller has counted.
		poll(t, time.Minute, "the quota was not counted", func(ctx context.Context) (bool, error) {
			q, err := cs.CoreV1().ResourceQuotas("limited").Get(ctx, "no-jobs", metav1.GetOptions{})
			return err == nil && q.Status.Hard != nil, nil
		})
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "refused"},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{busybox("main", "true")},
			}}},
		}
		_, err := cs.BatchV1().Jobs("limited").Create(ctx, job, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "exceeded quota") {
			t.Errorf("a Job in a namespace whose quota allows none: got %v, want an exceeded quota error", err)
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "defaulted"},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
				Name: "main", Image: "busybox", Command: []string{"sh", "-c", `echo "$MEM"`},
				Env: []corev1.EnvVar{{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}}},
			}}},
		}
		if _, err := cs.CoreV1().Pods("limited").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if phase := waitPodDone(t, cs, "limited", pod.Name); phase != corev1.PodSucceeded {
			t.Fatalf("pod ended %s", phase)
		}
		if diff := cmp.Diff("96\n", podLogs(t, cs, "limited", pod.Name, "main")); diff != "" {
			t.Errorf("the LimitRange's default memory limit, seen through resourceFieldRef: -want +got:\n%s", diff)
		}
	})
}

// A volume mounted over a directory the host has, under /run (which the
// service-account token's mount at /var/run/secrets makes the node mirror
// privately after the volume was bound), shows the volume, not the host's
// root-owned directory: a non-root container writes to its emptyDir
// there, by either path.
func TestVolumeOverHostDirectory(t *testing.T) {
	t.Parallel()
	hostDir, err := os.MkdirTemp("/run", "stashplane-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(hostDir) })
	if err := os.Chmod(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := devclustertest.Start(t)
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "writer", Namespace: "default"}, Spec: corev1.PodSpec{
		RestartPolicy:   corev1.RestartPolicyNever,
		SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](65534), RunAsGroup: ptr.To[int64](65534)},
		Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sh", "-c", "touch $0/x /var$0/y && ls $0", hostDir},
			VolumeMounts: []corev1.VolumeMount{{Name: "run", MountPath: hostDir}}}},
		Volumes: []corev1.Volume{{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}}
	if _, err := cs.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	phase := waitPodDone(t, cs, "default", "writer")
	if entries, _ := os.ReadDir(hostDir); len(entries) != 0 {
		t.Errorf("the container wrote into the host's directory: %v", entries)
	}
	if out := podLogs(t, cs, "default", "writer", "c"); phase != corev1.PodSucceeded || out != "x\ny\n" {
		t.Errorf("pod %s, printed %q; want Succeeded and the two files written to its emptyDir", phase, out)
	}
}
