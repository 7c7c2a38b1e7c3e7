package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/stashplane/stashplane/internal/devcluster"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
)

const stashplaneImage = "ghcr.io/stashplane/stashplane"

// probe is a container running `stashplane dev probe ARGS`.
func probe(name string, args ...string) corev1.Container {
	return corev1.Container{Name: name, Image: stashplaneImage, Command: append([]string{"stashplane", "dev", "probe"}, args...)}
}

// webPod serves its own name on :8080, the port named http.
func webPod(name, app string) *corev1.Pod {
	c := probe("web", "serve", "--listen", ":8080", "--reply", "$(POD_NAME)")
	c.Env = []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{c}},
	}
}

// Pods of an isolated cluster each have a network of their own: two of them
// listen on the same port, a Service leads to one by name through the
// cluster's DNS, a headless Service's name is that pod's IP, the API server
// is reached through the kubernetes Service, names outside the cluster do
// not resolve, and a pod on the host's network reaches the others. A
// deleted pod's and the stopped cluster's links and namespaces are gone.
func TestPodNetworkIsolated(t *testing.T) {
	t.Parallel()
	var podNet netip.Prefix
	// Registered first, so it runs once the cluster has stopped.
	t.Cleanup(func() { checkNetworkRemoved(t, podNet) })
	c := devclustertest.StartWith(t, devclustertest.Options{PodNetwork: devcluster.PodNetworkIsolated})
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ips := map[string]string{}
	for _, p := range []*corev1.Pod{webPod("web-a", "web"), webPod("web-b", "other")} {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"web-a", "web-b"} {
		ips[name] = waitRunning(t, cs, name)
		// The test runs on the host, which reaches pods over the bridge.
		if diff := cmp.Diff(name+"\n", httpGet(t, "http://"+net.JoinHostPort(ips[name], "8080")+"/")); diff != "" {
			t.Errorf("pod %s on its own IP: -want +got:\n%s", name, diff)
		}
	}
	podNet = netip.PrefixFrom(netip.MustParseAddr(ips["web-a"]), 24).Masked()
	svc, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web-headless"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "web"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	checkClient(t, cs, svc.Spec.ClusterIP, ips["web-a"])
	checkHostNetwork(t, cs, ips["web-a"])
	checkPodDeletion(t, cs, podNet, ips["web-b"])
}

// checkHostNetwork runs a pod on the host's network, which keeps the node's
// address as its IP and reaches pods on theirs.
func checkHostNetwork(t *testing.T, cs *kubernetes.Clientset, webIP string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "on-host"},
		Spec: corev1.PodSpec{HostNetwork: true, RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{
			probe("fetch", "get", "--timeout", "60s", "http://"+net.JoinHostPort(webIP, "8080")+"/"),
		}},
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitEnded(t, cs, "on-host")
	b, err := cs.CoreV1().Pods("default").GetLogs("on-host", &corev1.PodLogOptions{Container: "fetch"}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{string(corev1.PodSucceeded), "127.0.0.1", "web-a\n"}
	if diff := cmp.Diff(want, []string{string(got.Status.Phase), got.Status.PodIP, string(b)}); diff != "" {
		t.Errorf("pod on the host's network (phase, IP, output): -want +got:\n%s", diff)
	}
}

// waitEnded waits for a pod to succeed or fail.
func waitEnded(t *testing.T, cs *kubernetes.Clientset, name string) *corev1.Pod {
	t.Helper()
	var got *corev1.Pod
	poll(t, 2*time.Minute, "pod "+name+" did not end", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = p
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, nil
	})
	return got
}

// checkClient runs a pod that resolves and fetches through the Service,
// resolves the headless Service to the pod's IP, reaches the API server and
// fails to resolve an outside name.
func checkClient(t *testing.T, cs *kubernetes.Clientset, clusterIP, webIP string) {
	t.Helper()
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
	api := []string{"get", "--timeout", "60s", "--ca", sa + "ca.crt", "--token-file", sa + "token"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{
			probe("resolve-fqdn", "resolve", "--timeout", "60s", "web.default.svc.cluster.local"),
			probe("resolve-short", "resolve", "--timeout", "60s", "web"),
			probe("resolve-headless", "resolve", "--timeout", "60s", "web-headless"),
			probe("fetch", "get", "--timeout", "60s", "http://web/"),
			probe("api-name", append(api, "https://kubernetes.default.svc/api")...),
			probe("api-env", append(api, "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)/api")...),
			probe("external", "resolve", "example.com"),
		}},
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitEnded(t, cs, "client")
	type result struct {
		Exit int32
		Out  string
	}
	results := map[string]result{}
	for _, st := range got.Status.ContainerStatuses {
		r := result{Exit: -1}
		if st.State.Terminated != nil {
			r.Exit = st.State.Terminated.ExitCode
		}
		b, err := cs.CoreV1().Pods("default").GetLogs("client", &corev1.PodLogOptions{Container: st.Name}).DoRaw(ctx)
		if err != nil {
			t.Fatalf("cannot read the logs of %s: %v", st.Name, err)
		}
		r.Out = string(b)
		// Keep only what the checks look at; the rest is for the log.
		switch {
		case strings.HasPrefix(st.Name, "api"):
			r.Out = fmt.Sprint(strings.Contains(r.Out, `"kind":"APIVersions"`))
		case st.Name == "external":
			r.Out = fmt.Sprint(strings.Contains(r.Out, "no such host"))
		}
		t.Logf("%s exited %d:\n%s", st.Name, r.Exit, b)
		results[st.Name] = r
	}
	want := map[string]result{
		"resolve-fqdn":     {Out: clusterIP + "\n"},
		"resolve-short":    {Out: clusterIP + "\n"},
		"resolve-headless": {Out: webIP + "\n"},
		"fetch":            {Out: "web-a\n"},
		"api-name":         {Out: "true"},
		"api-env":          {Out: "true"},
		"external":         {Exit: 1, Out: "true"},
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("client containers (exit code, output): -want +got:\n%s", diff)
	}
}

// checkPodDeletion deletes a pod and checks its veth and namespace go.
func checkPodDeletion(t *testing.T, cs *kubernetes.Clientset, podNet netip.Prefix, ip string) {
	t.Helper()
	id, last := podNet.Addr().As4()[2], netip.MustParseAddr(ip).As4()[3]
	veth := fmt.Sprintf("/sys/class/net/spv%d-%d", id, last)
	ns := fmt.Sprintf("/run/netns/spdev%d-%d", id, last)
	for _, p := range []string{veth, ns} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("a running pod's %s is missing: %v", p, err)
		}
	}
	if err := cs.CoreV1().Pods("default").Delete(context.Background(), "web-b", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "a deleted pod's veth and namespace are still there", func(context.Context) (bool, error) {
		_, verr := os.Stat(veth)
		_, nerr := os.Stat(ns)
		return os.IsNotExist(verr) && os.IsNotExist(nerr), nil
	})
}

// checkNetworkRemoved checks that a stopped cluster left no bridge, veth,
// namespace file or service route.
func checkNetworkRemoved(t *testing.T, podNet netip.Prefix) {
	if !podNet.IsValid() {
		return
	}
	if left := networkLeft(t, podNet); len(left) > 0 {
		t.Errorf("the stopped cluster left %v", left)
	}
}

// A process running an isolated cluster that is killed outright leaves no
// bridge or route: its reaper removes them.
func TestKilledProcessLeavesNoNetwork(t *testing.T) {
	t.Parallel()
	cmd, subnet, dir := holdCluster(t, devcluster.PodNetworkIsolated)
	defer os.RemoveAll(dir)
	podNet, err := netip.ParsePrefix(subnet)
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("cannot parse the child's pod subnet: %v", err)
	}
	if len(networkLeft(t, podNet)) == 0 {
		_ = cmd.Process.Kill()
		t.Fatal("the child's cluster has no bridge: the test would prove nothing")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	poll(t, time.Minute, "a killed process's pod network is still there", func(context.Context) (bool, error) {
		return len(networkLeft(t, podNet)) == 0, nil
	})
}

// networkLeft lists the bridge, veths, namespace files and service route of
// the isolated network of the pod subnet.
func networkLeft(t *testing.T, podNet netip.Prefix) []string {
	t.Helper()
	id := podNet.Addr().As4()[2]
	var left []string
	links, _ := filepath.Glob(fmt.Sprintf("/sys/class/net/sp[bv]*%d*", id))
	for _, l := range links {
		if b := filepath.Base(l); b == fmt.Sprintf("spbr%d", id) || strings.HasPrefix(b, fmt.Sprintf("spv%d-", id)) {
			left = append(left, b)
		}
	}
	files, _ := filepath.Glob(fmt.Sprintf("/run/netns/spdev%d-*", id))
	left = append(left, files...)
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_LOCAL}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.String() == fmt.Sprintf("198.18.%d.0/24", id) {
			left = append(left, "route "+r.Dst.String())
		}
	}
	return left
}

// waitRunning waits for a pod to run and returns its IP.
func waitRunning(t *testing.T, cs *kubernetes.Clientset, name string) string {
	t.Helper()
	var ip string
	poll(t, 2*time.Minute, "pod "+name+" did not run", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if p.Status.Phase == corev1.PodFailed {
			return false, fmt.Errorf("pod %s failed: %s", name, p.Status.Message)
		}
		ip = p.Status.PodIP
		return p.Status.Phase == corev1.PodRunning, nil
	})
	return ip
}

// httpGet fetches a URL from the test process, retrying while the server
// is not listening yet.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	var body string
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	poll(t, time.Minute, "cannot get "+url, func(ctx context.Context) (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err == nil, nil
	})
	return body
}
