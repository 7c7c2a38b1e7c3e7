package processnode

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func service(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: clusterIP, Ports: ports},
	}
}

// endpointSlice is a slice of a Service with one port; ready maps each
// address to its ready condition (nil: unknown, which counts as ready).
func endpointSlice(ns, svc, port string, number int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svc + "-" + port, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(port), Port: ptr.To(number), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

func endpoint(ip string, ready *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
}

func TestProxyTargets(t *testing.T) {
	web := types.NamespacedName{Namespace: "shop", Name: "web"}
	cases := map[string]struct {
		reason   string
		services []*corev1.Service
		want     map[netip.AddrPort]proxyTarget
	}{
		"TCPPorts": {
			reason: "Every TCP port of a ClusterIP Service gets a listener.",
			services: []*corev1.Service{service("shop", "web", "198.18.20.10",
				corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
				corev1.ServicePort{Name: "admin", Port: 9000, Protocol: corev1.ProtocolTCP})},
			want: map[netip.AddrPort]proxyTarget{
				netip.MustParseAddrPort("198.18.20.10:80"):   {Service: web, Port: "http"},
				netip.MustParseAddrPort("198.18.20.10:9000"): {Service: web, Port: "admin"},
			},
		},
		"Skipped": {
			reason: "Headless Services, UDP ports and Services without an IP get none.",
			services: []*corev1.Service{
				service("shop", "db", "None", corev1.ServicePort{Port: 5432}),
				service("shop", "dns", "198.18.20.11", corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolUDP}),
				service("shop", "new", "", corev1.ServicePort{Port: 80}),
			},
			want: map[netip.AddrPort]proxyTarget{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, proxyTargets(tc.services)); diff != "" {
				t.Errorf("%s\nproxyTargets(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestReadyEndpoints(t *testing.T) {
	cases := map[string]struct {
		reason string
		slices []*discoveryv1.EndpointSlice
		port   string
		want   []netip.AddrPort
	}{
		"Ready": {
			reason: "Ready and unknown endpoints count, not-ready ones do not; the port is the slice's target port.",
			slices: []*discoveryv1.EndpointSlice{endpointSlice("shop", "web", "http", 8080,
				endpoint("198.19.20.4", ptr.To(true)), endpoint("198.19.20.2", nil), endpoint("198.19.20.3", ptr.To(false)))},
			port: "http",
			want: []netip.AddrPort{netip.MustParseAddrPort("198.19.20.2:8080"), netip.MustParseAddrPort("198.19.20.4:8080")},
		},
		"OtherPort": {
			reason: "Slices of another port name do not serve this one.",
			slices: []*discoveryv1.EndpointSlice{endpointSlice("shop", "web", "admin", 9000, endpoint("198.19.20.4", nil))},
			port:   "http",
			want:   []netip.AddrPort{},
		},
		"SeveralSlices": {
			reason: "Endpoints of every slice count once.",
			slices: []*discoveryv1.EndpointSlice{
				endpointSlice("shop", "web", "http", 8080, endpoint("198.19.20.5", nil)),
				endpointSlice("shop", "web", "http", 8080, endpoint("198.19.20.5", nil), endpoint("198.19.20.6", nil)),
			},
			port: "http",
			want: []netip.AddrPort{netip.MustParseAddrPort("198.19.20.5:8080"), netip.MustParseAddrPort("198.19.20.6:8080")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, readyEndpoints(tc.slices, tc.port), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("%s\nreadyEndpoints(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestPickEndpoint(t *testing.T) {
	eps := []netip.AddrPort{netip.MustParseAddrPort("198.19.20.2:8080"), netip.MustParseAddrPort("198.19.20.3:8080")}
	cases := map[string]struct {
		reason string
		eps    []netip.AddrPort
		n      []uint64
		want   []string
	}{
		"RoundRobin": {
			reason: "Connections take the endpoints in turn.",
			eps:    eps, n: []uint64{0, 1, 2, 3},
			want: []string{"198.19.20.2:8080", "198.19.20.3:8080", "198.19.20.2:8080", "198.19.20.3:8080"},
		},
		"None": {
			reason: "Without a ready endpoint there is nothing to pick.",
			n:      []uint64{0},
			want:   []string{"none"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, n := range tc.n {
				ep, ok := pickEndpoint(tc.eps, n)
				if !ok {
					got = append(got, "none")
					continue
				}
				got = append(got, ep.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\npickEndpoint(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestProxyCloseCutsConnections: a stopping node cuts the connections it
// proxies, so a far end waiting on a pod that is gone (an API server's
// watch) is not left waiting.
func TestProxyCloseCutsConnections(t *testing.T) {
	p := &serviceProxy{}
	a, b := net.Pipe()
	defer b.Close()
	if !p.track(a) {
		t.Fatal("an open proxy refused to track a connection")
	}
	p.close()
	if _, err := a.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("a tracked connection after close: write error %v, want it closed", err)
	}
	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	if p.track(c) {
		t.Error("a closed proxy tracked a new connection")
	}
}
