package e2e

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
)

// The dev cluster tests share one cluster per test function; the functions
// run in parallel, so two or more clusters run at once.

func clientset(t *testing.T) (*kubernetes.Clientset, string) {
	t.Helper()
	c := devclustertest.Start(t)
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	return cs, c.Dir()
}

func poll(t *testing.T, timeout time.Duration, what string, f func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func jobCondition(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

func busybox(name, script string) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox:1.36", Command: []string{"sh", "-c", script}}
}

// A CronJob on the real cronjob controller makes a Job on the real job
// controller whose pod runs on the process node, reads a Secret and a
// hostPath volume and writes its result back through the hostPath.
func TestCronJobRunsPodOnProcessNode(t *testing.T) {
	t.Parallel()
	cs, _ := clientset(t)
	ctx := context.Background()
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "input"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		Data:       map[string][]byte{"password": []byte("s3cr3t\n")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers: []corev1.Container{{
			Name: "work", Image: "busybox", Command: []string{"sh", "-c", `cat /etc/creds/password /data/input > /data/result && echo "$GREETING" >> /data/result && test ! -e ` + host + `/../must-not-exist`},
			Env: []corev1.EnvVar{{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "creds", MountPath: "/etc/creds"}, {Name: "data", MountPath: "/data"}},
		}},
		Volumes: []corev1.Volume{
			{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
			{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host}}},
		},
	}
	if _, err := cs.BatchV1().CronJobs("default").Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "every-minute"},
		Spec: batchv1.CronJobSpec{
			Schedule: "* * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				BackoffLimit: ptr.To[int32](0),
				Template:     corev1.PodTemplateSpec{Spec: pod},
			}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var job *batchv1.Job
	poll(t, 3*time.Minute, "the CronJob's Job did not complete", func(ctx context.Context) (bool, error) {
		jobs, err := cs.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(jobs.Items) == 0 {
			return false, nil
		}
		job = &jobs.Items[0]
		return jobCondition(job) != "", nil
	})
	if got := jobCondition(job); got != batchv1.JobComplete {
		t.Fatalf("job %s ended %q, want Complete", job.Name, got)
	}
	got, err := os.ReadFile(filepath.Join(host, "result"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("s3cr3t\nfrom-host\ns3cr3t\n\n", string(got)); diff != "" {
		t.Errorf("result file (-want +got):\n%s", diff)
	}
	// The container's mount point made no directory on the host.
	if _, err := os.Stat("/etc/creds"); err == nil {
		t.Errorf("the container's mountPath /etc/creds appeared on the host")
	}
}

// A container that exits 3 fails its Job, with the code in the pod status;
// its output is readable as the pod's logs.
func TestFailingContainerFailsJob(t *testing.T) {
	t.Parallel()
	cs, _ := clientset(t)
	ctx := context.Background()
	if _, err := cs.BatchV1().Jobs("default").Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "exit-three"},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{busybox("main", "echo about to fail; exit 3")},
			}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the Job did not end", func(ctx context.Context) (bool, error) {
		j, err := cs.BatchV1().Jobs("default").Get(ctx, "exit-three", metav1.GetOptions{})
		return err == nil && jobCondition(j) != "", nil
	})
	j, _ := cs.BatchV1().Jobs("default").Get(ctx, "exit-three", metav1.GetOptions{})
	if got := jobCondition(j); got != batchv1.JobFailed {
		t.Fatalf("job ended %q, want Failed", got)
	}
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "job-name=exit-three"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("want one pod of the job, got %v (%v)", len(pods.Items), err)
	}
	p := pods.Items[0]
	if p.Status.Phase != corev1.PodFailed {
		t.Errorf("pod phase %q, want Failed", p.Status.Phase)
	}
	term := p.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 3 {
		t.Fatalf("container state %+v, want terminated with exit code 3", p.Status.ContainerStatuses[0].State)
	}
	logs := podLogs(t, cs, "default", p.Name, "main")
	if diff := cmp.Diff("about to fail\n", logs); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}
}

func podLogs(t *testing.T, cs *kubernetes.Clientset, ns, pod, container string) string {
	t.Helper()
	rc, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).Stream(context.Background())
	if err != nil {
		t.Fatalf("cannot get logs: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Pods reach the API server as in-cluster clients do, with the service
// account token and CA mounted where client-go looks; a claim without a
// storage class is provisioned by the default class; each pod has its own
// loopback IP; deleting a pod kills its process; stopping the cluster leaves
// no process and no file behind.
func TestPodLifecycle(t *testing.T) {
	t.Parallel()
	c := devclustertest.Start(t)
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(bin, "kubectl") + ` auth whoami -o jsonpath='{.status.userInfo.username}' && echo && ` +
		`test -s /var/run/secrets/kubernetes.io/serviceaccount/ca.crt && cat /var/run/secrets/kubernetes.io/serviceaccount/namespace && echo && ` +
		`echo kept > /claim/file && echo "$POD_IP" && exec sleep 600`
	if _, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sh", "-c", script},
				VolumeMounts: []corev1.VolumeMount{{Name: "claim", MountPath: "/claim"}},
				Env:          []corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}},
			}},
			Volumes: []corev1.Volume{{Name: "claim", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	poll(t, 2*time.Minute, "the pod did not print its identity", func(ctx context.Context) (bool, error) {
		pod, err = cs.CoreV1().Pods("default").Get(ctx, "client", metav1.GetOptions{})
		if err != nil || pod.Status.Phase != corev1.PodRunning {
			return false, nil
		}
		rc, err := cs.CoreV1().Pods("default").GetLogs("client", &corev1.PodLogOptions{}).Stream(ctx)
		if err != nil {
			return false, nil
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return strings.Count(string(b), "\n") >= 3, nil
	})
	want := fmt.Sprintf("system:serviceaccount:default:default\ndefault\n%s\n", pod.Status.PodIP)
	if diff := cmp.Diff(want, podLogs(t, cs, "default", "client", "main")); diff != "" {
		t.Errorf("pod output (-want +got):\n%s", diff)
	}
	if ip, err := netip.ParseAddr(pod.Status.PodIP); err != nil || !c.PodSubnet().Contains(ip) {
		t.Errorf("pod IP %q, want an address of its own in %s", pod.Status.PodIP, c.PodSubnet())
	}
	pvc, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
	if err != nil || pvc.Status.Phase != corev1.ClaimBound {
		t.Fatalf("claim not bound: %v %v", pvc.Status.Phase, err)
	}
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(pv.Spec.HostPath.Path, "file")); err != nil || string(b) != "kept\n" {
		t.Errorf("file written to the claim: %q, %v", b, err)
	}

	pid, err := strconv.Atoi(strings.TrimPrefix(pod.Status.ContainerStatuses[0].ContainerID, "process://"))
	if err != nil {
		t.Fatalf("container ID %q: %v", pod.Status.ContainerStatuses[0].ContainerID, err)
	}
	if err := cs.CoreV1().Pods("default").Delete(ctx, "client", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the deleted pod's process still runs", func(context.Context) (bool, error) {
		return syscall.Kill(pid, 0) != nil, nil
	})
	poll(t, time.Minute, "the deleted pod is still there", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Pods("default").Get(ctx, "client", metav1.GetOptions{})
		return err != nil, nil
	})

	dir := c.Dir()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if left := processesMentioning(dir); len(left) > 0 {
		t.Errorf("processes left after stop: %v", left)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) > 0 {
		t.Errorf("files left after stop: %v", entries)
	}
}

// An image the process node does not map fails the pod with a clear reason.
func TestUnmappedImageFailsPod(t *testing.T) {
	t.Parallel()
	cs, _ := clientset(t)
	ctx := context.Background()
	if _, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "unmapped"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "main", Image: "registry.example/nothing:1"}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	poll(t, time.Minute, "the pod did not fail", func(ctx context.Context) (bool, error) {
		var err error
		pod, err = cs.CoreV1().Pods("default").Get(ctx, "unmapped", metav1.GetOptions{})
		return err == nil && pod.Status.Phase == corev1.PodFailed, nil
	})
	if pod.Status.Reason != "ImageNotMapped" || !strings.Contains(pod.Status.Message, `"registry.example/nothing:1"`) {
		t.Errorf("pod reason %q message %q, want ImageNotMapped naming the image", pod.Status.Reason, pod.Status.Message)
	}
}

// processesMentioning lists processes whose command line names a path
// inside dir path.
func processesMentioning(path string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if strings.Contains(string(b), path+"/") {
			out = append(out, p+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}
