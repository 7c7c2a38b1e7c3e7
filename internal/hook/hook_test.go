package hook

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

func TestCleanOutput(t *testing.T) {
	long := strings.Repeat("é", MaxOutput)
	cases := map[string]struct {
		reason  string
		out     string
		secrets []string
		want    string
	}{
		"LastLine":     {reason: "Only the last line is kept.", out: "first\nsecond\n\n", want: "second"},
		"Empty":        {reason: "No output is an empty line.", out: "", want: ""},
		"Secret":       {reason: "A secret value is removed.", out: "connecting with hunter22 now", secrets: []string{"hunter22"}, want: "connecting with [redacted] now"},
		"ShortSecret":  {reason: "A value too short to be a secret is left alone.", out: "ok", secrets: []string{"ok"}, want: "ok"},
		"SecretOnLine": {reason: "A secret on an earlier line is gone with the line.", out: "pw=hunter22\nfine", secrets: []string{"hunter22"}, want: "fine"},
		"Long": {reason: "A long line is cut on a character boundary.", out: long,
			want: strings.Repeat("é", MaxOutput/2) + "…"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, CleanOutput(tc.out, tc.secrets)); diff != "" {
				t.Errorf("%s\nCleanOutput(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestServiceName(t *testing.T) {
	cases := map[string]struct {
		reason  string
		host    string
		want    string
		wantErr bool
	}{
		"Short":        {reason: "A Service's name.", host: "db", want: "db"},
		"WithNS":       {reason: "name.namespace.", host: "db.team", want: "db"},
		"Svc":          {reason: "name.namespace.svc.", host: "db.team.svc", want: "db"},
		"FQDN":         {reason: "The cluster DNS name.", host: "db.team.svc.cluster.local.", want: "db"},
		"OtherNS":      {reason: "Another namespace's Service is refused.", host: "db.other.svc.cluster.local", wantErr: true},
		"IP":           {reason: "An address is refused.", host: "169.254.169.254", wantErr: true},
		"APIServer":    {reason: "The API server's Service lives in default, not the session's namespace.", host: "kubernetes.default.svc", wantErr: true},
		"OutsideName":  {reason: "A name outside the cluster is refused.", host: "example.com", wantErr: true},
		"Empty":        {reason: "An empty label is refused.", host: ".team", wantErr: true},
		"IPv6Loopback": {reason: "An IPv6 address is refused.", host: "::1", wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := serviceName(tc.host, "team")
			if (err != nil) != tc.wantErr {
				t.Fatalf("%s\nserviceName(%q): error %v, want error %v", tc.reason, tc.host, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nserviceName(%q): -want +got:\n%s", tc.reason, tc.host, diff)
			}
		})
	}
}

func runningPod(name, ip string, ready bool) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team", Labels: map[string]string{"app": "db"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}

// dialTo sends every connection to one server, recording where it was asked
// to go.
type dialTo struct {
	addr  string
	asked []string
}

func (d *dialTo) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d.asked = append(d.asked, address)
	var nd net.Dialer
	return nd.DialContext(ctx, network, d.addr)
}

func TestOperatorHooks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "database refused\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("froze " + r.Method + " " + r.URL.Path + " " + r.FormValue("mode") + "\n"))
	}))
	defer srv.Close()
	kube := fake.NewClientset(runningPod("db-0", "10.9.0.1", true), runningPod("db-1", "10.9.0.2", true), runningPod("db-2", "10.9.0.3", false))
	target := Target{Namespace: "team", Selector: labels.SelectorFromSet(labels.Set{"app": "db"})}
	get := func(path string, port intstr.IntOrString, host string) *corev1alpha1.HookAction {
		return &corev1alpha1.HookAction{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port, Host: host}}
	}
	cases := map[string]struct {
		reason    string
		action    *corev1alpha1.HookAction
		strategy  corev1alpha1.PodHookExecutionStrategy
		want      Result
		wantAsked []string
	}{
		"GetOne": {
			reason: "ExecuteOnOne calls the first ready pod, by the container port's name.",
			action: get("/freeze", intstr.FromString("http"), ""),
			want:   Result{Succeeded: true, Output: "froze GET /freeze", Pods: []string{"db-0"}}, wantAsked: []string{"10.9.0.1:8080"},
		},
		"PostAll": {
			reason:   "ExecuteOnAll calls every ready pod, posting the form.",
			action:   &corev1alpha1.HookAction{HTTPPost: &corev1alpha1.HTTPPostAction{Path: "/freeze", Port: intstr.FromInt32(8080), Form: []corev1alpha1.FormEntry{{Key: "mode", Values: []string{"ro"}}}}},
			strategy: corev1alpha1.ExecuteOnAll,
			want:     Result{Succeeded: true, Output: "froze POST /freeze ro", Pods: []string{"db-0", "db-1"}}, wantAsked: []string{"10.9.0.1:8080", "10.9.0.2:8080"},
		},
		"HTTPError": {
			reason: "An HTTP error status fails the hook with the body's last line.",
			action: get("/fail", intstr.FromInt32(8080), ""),
			want:   Result{Reason: ReasonFailed, Output: "the hook's request got 503 Service Unavailable: database refused", Pods: []string{"db-0"}}, wantAsked: []string{"10.9.0.1:8080"},
		},
		"TCP": {
			reason: "A tcpSocket action connects.",
			action: &corev1alpha1.HookAction{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
			want:   Result{Succeeded: true, Output: "connected to 10.9.0.1:8080", Pods: []string{"db-0"}}, wantAsked: []string{"10.9.0.1:8080"},
		},
		"MetadataAddress": {
			reason: "A host outside the namespace is refused before any connection.",
			action: get("/latest/meta-data", intstr.FromInt32(80), "169.254.169.254"),
			want:   Result{Reason: ReasonNotAllowed, Output: `host "169.254.169.254" is not a Service of namespace "team"; an Operator hook reaches only the target's pods and that namespace's Services`},
		},
		"Exec": {
			reason: "The Operator executor does not exec.",
			action: &corev1alpha1.HookAction{Exec: &corev1.ExecAction{Command: []string{"true"}}},
			want:   Result{Reason: ReasonInvalid, Output: "an Operator executor makes httpGet, httpPost and tcpSocket calls, not exec"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := &dialTo{addr: strings.TrimPrefix(srv.URL, "http://")}
			r := &Runner{Kube: kube, Clock: clocktesting.NewFakeClock(time.Now()), Dialer: d}
			tmpl := &corev1alpha1.HookTemplateSpec{Action: tc.action, Executor: corev1alpha1.HookExecutor{
				Type: corev1alpha1.HookExecutorOperator, Pod: &corev1alpha1.PodHookExecutorSpec{Strategy: tc.strategy}}}
			got := r.Run(context.Background(), tmpl, target, time.Minute)
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(Result{}, "Duration")); diff != "" {
				t.Errorf("%s\nRun(...): -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantAsked, d.asked); diff != "" {
				t.Errorf("%s\naddresses dialled: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestNoPodSelected(t *testing.T) {
	r := &Runner{Kube: fake.NewClientset(runningPod("db-2", "10.9.0.3", false)), Clock: clocktesting.NewFakeClock(time.Now())}
	tmpl := &corev1alpha1.HookTemplateSpec{
		Action:   &corev1alpha1.HookAction{Exec: &corev1.ExecAction{Command: []string{"true"}}},
		Executor: corev1alpha1.HookExecutor{Type: corev1alpha1.HookExecutorPod},
	}
	got := r.Run(context.Background(), tmpl, Target{Namespace: "team", Selector: labels.SelectorFromSet(labels.Set{"app": "db"})}, time.Minute)
	want := Result{Reason: ReasonNoPod, Output: `no ready pod in namespace "team" matches "app=db"`}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Result{}, "Duration")); diff != "" {
		t.Errorf("a selector matching only a pod that is not ready: -want +got:\n%s", diff)
	}
}

// An owner keeps only the selected pods it owns directly.
func TestPodOwner(t *testing.T) {
	owned := func(name, rs string) *corev1.Pod {
		p := runningPod(name, "10.9.0.1", true)
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs, UID: types.UID(rs + "-uid")}}
		return p
	}
	kube := fake.NewClientset(owned("db-a", "db-new"), owned("db-b", "db-old"), runningPod("db-c", "10.9.0.3", true))
	r := &Runner{Kube: kube, Clock: clocktesting.NewFakeClock(time.Now())}
	target := Target{Namespace: "team", Selector: labels.SelectorFromSet(labels.Set{"app": "db"})}
	cases := map[string]struct {
		owner *metav1.OwnerReference
		want  []string
		ok    bool
	}{
		"no owner: every selected pod":          {want: []string{"db-a", "db-b", "db-c"}, ok: true},
		"by kind and name":                      {owner: &metav1.OwnerReference{Kind: "ReplicaSet", Name: "db-old"}, want: []string{"db-b"}, ok: true},
		"by group, kind, name and uid":          {owner: &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "db-new", UID: "db-new-uid"}, want: []string{"db-a"}, ok: true},
		"a uid that does not match":             {owner: &metav1.OwnerReference{Kind: "ReplicaSet", Name: "db-new", UID: "other"}},
		"as controller, of a pod it only owns":  {owner: &metav1.OwnerReference{Kind: "ReplicaSet", Name: "db-new", Controller: ptr.To(true)}},
		"another group":                         {owner: &metav1.OwnerReference{APIVersion: "extensions/v1beta1", Kind: "ReplicaSet", Name: "db-new"}},
		"an owner of none of the selected pods": {owner: &metav1.OwnerReference{Kind: "StatefulSet", Name: "db"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tmpl := &corev1alpha1.HookTemplateSpec{Executor: corev1alpha1.HookExecutor{Type: corev1alpha1.HookExecutorPod,
				Pod: &corev1alpha1.PodHookExecutorSpec{Owner: tc.owner, Strategy: corev1alpha1.ExecuteOnAll}}}
			pods, res, ok := r.pods(context.Background(), tmpl, target)
			var got []string
			for _, p := range pods {
				got = append(got, p.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" || ok != tc.ok {
				t.Errorf("ok %v (%s), pods -want +got:\n%s", ok, res.Output, diff)
			}
		})
	}
}
