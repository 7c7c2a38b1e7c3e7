package processnode

import (
	"io"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// The Service proxy listens, in the host's network, on every ClusterIP and
// TCP port of the cluster's Services (the host accepts the whole service
// range as its own) and sends each connection to one ready endpoint of the
// Service, taking them in turn. The endpoint is chosen when the connection
// comes, from the EndpointSlices as the informer last saw them.

// apiServerService is the Service that leads to the API server. Its
// endpoints are not maintained (the API server advertises a loopback
// address), so the proxy sends it to the API server itself.
var apiServerService = types.NamespacedName{Namespace: "default", Name: "kubernetes"}

// proxyTarget is what one listener serves: a port of a Service.
type proxyTarget struct {
	Service types.NamespacedName
	// Port is the name of the Service's port, which its EndpointSlices'
	// ports carry too.
	Port string
}

type serviceProxy struct {
	services  corelisters.ServiceLister
	slices    discoverylisters.EndpointSliceLister
	apiServer string
	log       logr.Logger

	mu        sync.Mutex
	listeners map[netip.AddrPort]*proxyListener
	// conns are the connections in flight, both ends of each, which close
	// cuts: a pod's end may never say it is gone once its network is
	// removed, and the far end (the API server's watch) would wait on it.
	conns  map[net.Conn]struct{}
	closed bool
}

// proxyListener accepts the connections to one ClusterIP and port.
type proxyListener struct {
	target proxyTarget
	l      net.Listener
	// next counts connections, to take endpoints in turn.
	next atomic.Uint64
}

func newServiceProxy(services corelisters.ServiceLister, slices discoverylisters.EndpointSliceLister, apiServer string, log logr.Logger) *serviceProxy {
	return &serviceProxy{services: services, slices: slices, apiServer: apiServer, log: log, listeners: map[netip.AddrPort]*proxyListener{}}
}

// handler resyncs the listeners on any change of a Service.
func (p *serviceProxy) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.sync() },
		UpdateFunc: func(any, any) { p.sync() },
		DeleteFunc: func(any) { p.sync() },
	}
}

// proxyTargets lists the addresses to listen on: every TCP port of every
// Service with a ClusterIP.
func proxyTargets(services []*corev1.Service) map[netip.AddrPort]proxyTarget {
	out := map[netip.AddrPort]proxyTarget{}
	for _, s := range services {
		ip, err := netip.ParseAddr(s.Spec.ClusterIP)
		if err != nil || s.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		for _, sp := range s.Spec.Ports {
			if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
				continue
			}
			out[netip.AddrPortFrom(ip, uint16(sp.Port))] = proxyTarget{
				Service: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, Port: sp.Name,
			}
		}
	}
	return out
}

// sync opens listeners for new Service ports and closes those of ports
// that went away.
func (p *serviceProxy) sync() {
	services, err := p.services.List(labels.Everything())
	if err != nil {
		p.log.Error(err, "cannot list services")
		return
	}
	want := proxyTargets(services)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for addr, l := range p.listeners {
		if t, ok := want[addr]; !ok || t != l.target {
			l.l.Close()
			delete(p.listeners, addr)
		}
	}
	for addr, t := range want {
		if _, ok := p.listeners[addr]; ok {
			continue
		}
		ln, err := net.Listen("tcp", addr.String())
		if err != nil {
			p.log.Error(err, "cannot listen for service", "service", t.Service.String(), "address", addr.String())
			continue
		}
		l := &proxyListener{target: t, l: ln}
		p.listeners[addr] = l
		go p.serve(l)
	}
}

func (p *serviceProxy) serve(l *proxyListener) {
	for {
		conn, err := l.l.Accept()
		if err != nil {
			return
		}
		go p.forward(l, conn)
	}
}

// forward sends one connection to an endpoint; without a ready endpoint
// the connection is closed at once.
func (p *serviceProxy) forward(l *proxyListener, conn net.Conn) {
	defer conn.Close()
	to, ok := p.endpoint(l)
	if !ok {
		return
	}
	up, err := net.DialTimeout("tcp", to, 5*time.Second)
	if err != nil {
		p.log.V(1).Info("cannot reach endpoint", "service", l.target.Service.String(), "endpoint", to, "error", err.Error())
		return
	}
	defer up.Close()
	if !p.track(conn, up) {
		return
	}
	defer p.untrack(conn, up)
	done := make(chan struct{}, 2)
	copyHalf := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go copyHalf(up, conn)
	go copyHalf(conn, up)
	<-done
	<-done
}

// endpoint is the address the listener's next connection goes to.
func (p *serviceProxy) endpoint(l *proxyListener) (string, bool) {
	if l.target.Service == apiServerService {
		return p.apiServer, p.apiServer != ""
	}
	slices, err := p.slices.EndpointSlices(l.target.Service.Namespace).List(
		labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: l.target.Service.Name}))
	if err != nil {
		return "", false
	}
	ep, ok := pickEndpoint(readyEndpoints(slices, l.target.Port), l.next.Add(1)-1)
	return ep.String(), ok
}

// readyEndpoints lists, in a stable order, the addresses and ports of the
// ready IPv4 endpoints that serve the named port.
func readyEndpoints(slices []*discoveryv1.EndpointSlice, port string) []netip.AddrPort {
	seen := map[netip.AddrPort]bool{}
	eachReadyAddress(slices, func(s *discoveryv1.EndpointSlice, _ discoveryv1.Endpoint, ip netip.Addr) {
		if n, ok := slicePort(s, port); ok {
			seen[netip.AddrPortFrom(ip, n)] = true
		}
	})
	out := make([]netip.AddrPort, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Compare(out[j]) < 0 })
	return out
}

// slicePort is the endpoints' port number for the Service port name.
func slicePort(s *discoveryv1.EndpointSlice, name string) (uint16, bool) {
	for _, p := range s.Ports {
		if p.Port == nil || p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Name == nil && name == "" || p.Name != nil && *p.Name == name {
			return uint16(*p.Port), true
		}
	}
	return 0, false
}

// eachReadyAddress calls f with every address of every ready endpoint of
// the IPv4 slices.
func eachReadyAddress(slices []*discoveryv1.EndpointSlice, f func(*discoveryv1.EndpointSlice, discoveryv1.Endpoint, netip.Addr)) {
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil {
					f(s, ep, ip)
				}
			}
		}
	}
}

// pickEndpoint takes the n-th endpoint, round the list.
func pickEndpoint(eps []netip.AddrPort, n uint64) (netip.AddrPort, bool) {
	if len(eps) == 0 {
		return netip.AddrPort{}, false
	}
	return eps[n%uint64(len(eps))], true
}

// track records a connection's two ends, unless the proxy is closed.
func (p *serviceProxy) track(ends ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if p.conns == nil {
		p.conns = map[net.Conn]struct{}{}
	}
	for _, c := range ends {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *serviceProxy) untrack(ends ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range ends {
		delete(p.conns, c)
	}
}

// close stops every listener and cuts the connections in flight, as a
// node that stops does.
func (p *serviceProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, l := range p.listeners {
		l.l.Close()
		delete(p.listeners, addr)
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}
