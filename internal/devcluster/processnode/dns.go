package processnode

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
)

// The cluster's DNS server answers, on the bridge's address, for the names
// of Services (<service>.<namespace>.svc.cluster.local: the ClusterIP, or
// the ready endpoints' addresses of a headless Service) and of the pods of
// headless Services (<hostname>.<service>.<namespace>.svc.cluster.local).
// Every other name is NXDOMAIN: nothing is forwarded anywhere.

// dnsTTL is short: Services come and go within a test.
const dnsTTL = 5

type dnsServer struct {
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	log      logr.Logger
	servers  []*dns.Server
}

// start serves UDP and TCP on port 53 of addr.
func (d *dnsServer) start(addr netip.Addr) error {
	hostPort := net.JoinHostPort(addr.String(), "53")
	pc, err := net.ListenPacket("udp", hostPort)
	if err != nil {
		return fmt.Errorf("cannot listen for DNS on %s/udp: %w", hostPort, err)
	}
	l, err := net.Listen("tcp", hostPort)
	if err != nil {
		pc.Close()
		return fmt.Errorf("cannot listen for DNS on %s/tcp: %w", hostPort, err)
	}
	d.servers = []*dns.Server{{PacketConn: pc, Handler: d}, {Listener: l, Handler: d}}
	for _, s := range d.servers {
		started, failed := make(chan struct{}), make(chan error, 1)
		s.NotifyStartedFunc = func() { close(started) }
		go func() {
			if err := s.ActivateAndServe(); err != nil {
				d.log.Error(err, "DNS server stopped")
				failed <- err
			}
		}()
		select {
		case <-started:
		case err := <-failed:
			d.stop()
			pc.Close()
			l.Close()
			return fmt.Errorf("cannot serve DNS on %s: %w", hostPort, err)
		}
	}
	return nil
}

func (d *dnsServer) stop() {
	for _, s := range d.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.ShutdownContext(ctx)
		cancel()
	}
	d.servers = nil
}

// ServeDNS answers one query.
func (d *dnsServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	_ = w.WriteMsg(d.answer(req))
}

// answer builds the reply to a query: A records for a known name asked for
// A (or ANY), no records but NOERROR for other types of a known name, and
// NXDOMAIN for an unknown one.
func (d *dnsServer) answer(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := req.Question[0]
	ips, found := d.lookup(q.Name)
	switch {
	case !found:
		m.Rcode = dns.RcodeNameError
	case q.Qclass == dns.ClassINET && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
		for _, ip := range ips {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: dnsTTL},
				A:   ip.AsSlice(),
			})
		}
	}
	return m
}

// lookup finds the IPv4 addresses of a name and whether the name exists.
func (d *dnsServer) lookup(name string) ([]netip.Addr, bool) {
	rest, ok := strings.CutSuffix(strings.ToLower(dns.Fqdn(name)), ".svc."+ClusterDomain+".")
	if !ok {
		return nil, false
	}
	parts := strings.Split(rest, ".")
	switch len(parts) {
	case 2:
		return d.serviceIPs(parts[1], parts[0])
	case 3:
		return d.hostIPs(parts[2], parts[1], parts[0])
	}
	return nil, false
}

// serviceIPs are a Service's ClusterIP, or the addresses of its ready
// endpoints when it is headless.
func (d *dnsServer) serviceIPs(ns, name string) ([]netip.Addr, bool) {
	svc, err := d.services.Services(ns).Get(name)
	if err != nil {
		if !kerrors.IsNotFound(err) {
			d.log.Error(err, "cannot get service", "service", ns+"/"+name)
		}
		return nil, false
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, true
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil || !ip.Is4() {
			return nil, true
		}
		return []netip.Addr{ip}, true
	}
	return d.endpointIPs(ns, name, func(discoveryv1.Endpoint) bool { return true }), true
}

// hostIPs are the addresses of the ready endpoints of a headless Service
// whose pods carry the host name (a pod's spec.hostname, with the Service
// as its spec.subdomain).
func (d *dnsServer) hostIPs(ns, service, host string) ([]netip.Addr, bool) {
	ips := d.endpointIPs(ns, service, func(ep discoveryv1.Endpoint) bool {
		return ep.Hostname != nil && strings.EqualFold(*ep.Hostname, host)
	})
	return ips, len(ips) > 0
}

// endpointIPs lists the addresses of a Service's ready IPv4 endpoints that
// match.
func (d *dnsServer) endpointIPs(ns, service string, match func(discoveryv1.Endpoint) bool) []netip.Addr {
	slices, err := d.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service}))
	if err != nil {
		return nil
	}
	seen := map[netip.Addr]bool{}
	eachReadyAddress(slices, func(_ *discoveryv1.EndpointSlice, ep discoveryv1.Endpoint, ip netip.Addr) {
		if match(ep) {
			seen[ip] = true
		}
	})
	out := make([]netip.Addr, 0, len(seen))
	for ip := range seen {
		out = append(out, ip)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}
