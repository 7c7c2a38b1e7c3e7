package hook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// Dialer makes the Operator executor's connections.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// The Operator executor calls from the provider's own network position, so
// it may reach only what the session's namespace holds: the target's pods
// (an action without a host) or a Service of that namespace, named by its
// name or its cluster DNS name, resolved here to its ready endpoints. Any
// other host (an IP address, another namespace's Service, the API server,
// an outside name) is refused before a connection is made.

// callAll makes the action's call to each pod, or to one endpoint of the
// named Service, and stops at the first failure.
func (r *Runner) callAll(ctx context.Context, pods []corev1.Pod, ns string, action *corev1alpha1.HookAction) Result {
	host, port, err := actionHostPort(action)
	if err != nil {
		return Result{Reason: ReasonInvalid, Output: err.Error()}
	}
	var addrs []string
	var names []string
	if host == "" {
		for _, p := range pods {
			a, err := podAddress(p, port)
			if err != nil {
				return Result{Reason: ReasonInvalid, Output: err.Error()}
			}
			addrs, names = append(addrs, a), append(names, p.Name)
		}
	} else {
		svc, err := serviceName(host, ns)
		if err != nil {
			return Result{Reason: ReasonNotAllowed, Output: err.Error()}
		}
		a, err := r.serviceAddress(ctx, ns, svc, port)
		if err != nil {
			return Result{Reason: ReasonFailed, Output: err.Error()}
		}
		addrs, names = []string{a}, []string{"service/" + svc}
	}
	res := Result{Succeeded: true, Pods: names}
	for _, a := range addrs {
		out, err := r.call(ctx, action, a, host)
		res.Output = out
		if err != nil {
			res.Succeeded, res.Reason, res.Output = false, ReasonFailed, err.Error()
			return res
		}
	}
	return res
}

func actionHostPort(a *corev1alpha1.HookAction) (string, intstr.IntOrString, error) {
	switch {
	case a.HTTPGet != nil:
		return a.HTTPGet.Host, a.HTTPGet.Port, nil
	case a.HTTPPost != nil:
		return a.HTTPPost.Host, a.HTTPPost.Port, nil
	case a.TCPSocket != nil:
		return a.TCPSocket.Host, a.TCPSocket.Port, nil
	}
	return "", intstr.IntOrString{}, errors.New("the hook has no httpGet, httpPost or tcpSocket action")
}

// serviceName returns the Service a host names in namespace ns: "name",
// "name.ns", "name.ns.svc" or "name.ns.svc.cluster.local".
func serviceName(host, ns string) (string, error) {
	parts := strings.Split(strings.TrimSuffix(strings.ToLower(host), "."), ".")
	refuse := fmt.Errorf("host %q is not a Service of namespace %q; an Operator hook reaches only the target's pods and that namespace's Services", host, ns)
	if net.ParseIP(host) != nil || len(parts) == 0 || parts[0] == "" {
		return "", refuse
	}
	switch {
	case len(parts) == 1:
	case len(parts) == 2 && parts[1] == ns:
	case len(parts) == 3 && parts[1] == ns && parts[2] == "svc":
	case len(parts) == 5 && parts[1] == ns && parts[2] == "svc" && parts[3] == "cluster" && parts[4] == "local":
	default:
		return "", refuse
	}
	return parts[0], nil
}

// podAddress is a pod's IP and the port, resolved by name from its
// containers' ports when named.
func podAddress(p corev1.Pod, port intstr.IntOrString) (string, error) {
	if p.Status.PodIP == "" {
		return "", fmt.Errorf("pod %q has no IP yet", p.Name)
	}
	n := port.IntValue()
	if port.Type == intstr.String {
		n = 0
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == port.StrVal {
					n = int(cp.ContainerPort)
				}
			}
		}
	}
	if n <= 0 || n > 65535 {
		return "", fmt.Errorf("pod %q has no port %q", p.Name, port.String())
	}
	return net.JoinHostPort(p.Status.PodIP, strconv.Itoa(n)), nil
}

// serviceAddress is one ready endpoint of a Service for its port (by
// number or name), read from the Service's EndpointSlices.
func (r *Runner) serviceAddress(ctx context.Context, ns, name string, port intstr.IntOrString) (string, error) {
	svc, err := r.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("cannot get service %q", name)
	}
	var portName string
	found := false
	for _, sp := range svc.Spec.Ports {
		if port.Type == intstr.Int && int(sp.Port) == port.IntValue() || port.Type == intstr.String && sp.Name == port.StrVal {
			portName, found = sp.Name, true
		}
	}
	if !found {
		return "", fmt.Errorf("service %q has no port %q", name, port.String())
	}
	slices, err := r.Kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return "", fmt.Errorf("cannot list the endpoints of service %q", name)
	}
	for _, s := range slices.Items {
		for _, p := range s.Ports {
			if p.Port == nil || (p.Name != nil && *p.Name != portName) {
				continue
			}
			for _, e := range s.Endpoints {
				if (e.Conditions.Ready == nil || *e.Conditions.Ready) && len(e.Addresses) > 0 {
					return net.JoinHostPort(e.Addresses[0], strconv.Itoa(int(*p.Port))), nil
				}
			}
		}
	}
	return "", fmt.Errorf("service %q has no ready endpoint", name)
}

// call makes one HTTP request or TCP connection to addr.
func (r *Runner) call(ctx context.Context, a *corev1alpha1.HookAction, addr, host string) (string, error) {
	d := r.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	if a.TCPSocket != nil {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return "", fmt.Errorf("cannot connect to %s", addr)
		}
		conn.Close()
		return "connected to " + addr, nil
	}
	req, err := httpRequest(ctx, a, addr, host)
	if err != nil {
		return "", err
	}
	client := &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			// Whatever the URL says, the connection goes to the resolved
			// address only.
			return d.DialContext(ctx, "tcp", addr)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot send the hook's request to %s", addr)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxCapture))
	if resp.StatusCode >= 400 {
		return "", fmt.Errorf("the hook's request got %s: %s", resp.Status, CleanOutput(string(body), nil))
	}
	return string(body), nil
}

func httpRequest(ctx context.Context, a *corev1alpha1.HookAction, addr, host string) (*http.Request, error) {
	method, path, scheme, headers, body := http.MethodGet, "", corev1.URISchemeHTTP, []corev1.HTTPHeader(nil), ""
	var form url.Values
	if g := a.HTTPGet; g != nil {
		path, headers = g.Path, g.HTTPHeaders
		if g.Scheme != "" {
			scheme = g.Scheme
		}
	}
	if p := a.HTTPPost; p != nil {
		method, path, headers, body = http.MethodPost, p.Path, p.HTTPHeaders, p.Body
		if p.Scheme != "" {
			scheme = p.Scheme
		}
		if len(p.Form) > 0 {
			form = url.Values{}
			for _, e := range p.Form {
				form[e.Key] = e.Values
			}
			body = form.Encode()
		}
	}
	if host == "" {
		host = addr
	} else if _, port, err := net.SplitHostPort(addr); err == nil {
		host = net.JoinHostPort(host, port)
	}
	u, err := url.Parse(strings.ToLower(string(scheme)) + "://" + host + "/" + strings.TrimPrefix(path, "/"))
	if err != nil {
		return nil, fmt.Errorf("cannot make the hook's request: path %q: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("cannot make the hook's request: %w", err)
	}
	for _, h := range headers {
		req.Header.Add(h.Name, h.Value)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req, nil
}
