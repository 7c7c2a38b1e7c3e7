package processnode

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// NetworkConfig asks for an isolated pod network: each pod (but those with
// hostNetwork) gets its own network namespace, wired to a bridge of the
// cluster's own; the node proxies ClusterIP Services and answers DNS for
// them on the bridge's address. Config.PodIPs is then the pod subnet, whose
// first address is the bridge's.
type NetworkConfig struct {
	// ID is the cluster's network number: the host's links and namespace
	// files carry it in their names, so it must be unique on the machine.
	ID int
	// Services is the ClusterIP range, which the host accepts as its own.
	Services netip.Prefix
	// APIServer is the host:port the default/kubernetes Service leads to.
	APIServer string
}

// ClusterDomain is the DNS domain of the cluster's Services.
const ClusterDomain = "cluster.local"

// isolatedNet is a running isolated pod network: the host's links, the
// Service proxy and the DNS server.
type isolatedNet struct {
	host   *hostNet
	proxy  *serviceProxy
	dns    *dnsServer
	cancel context.CancelFunc
}

// startIsolatedNet makes the host's side of the network and starts the
// Service proxy and the DNS server, both driven by informers on Services
// and EndpointSlices.
func startIsolatedNet(cfg NetworkConfig, pods netip.Prefix, client kubernetes.Interface, log logr.Logger) (n *isolatedNet, err error) {
	host, err := newHostNet(cfg.ID, pods, cfg.Services)
	if err != nil {
		return nil, err
	}
	if err := host.setUp(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n = &isolatedNet{host: host, cancel: cancel}
	defer func() {
		if err != nil {
			n.stop()
		}
	}()
	factory := informers.NewSharedInformerFactory(client, 0)
	services := factory.Core().V1().Services()
	slices := factory.Discovery().V1().EndpointSlices()
	n.proxy = newServiceProxy(services.Lister(), slices.Lister(), cfg.APIServer, log.WithName("service-proxy"))
	if _, err := services.Informer().AddEventHandler(n.proxy.handler()); err != nil {
		return nil, fmt.Errorf("cannot watch services: %w", err)
	}
	n.dns = &dnsServer{services: services.Lister(), slices: slices.Lister(), log: log.WithName("dns")}
	factory.Start(ctx.Done())
	syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
	defer cancelSync()
	for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return nil, fmt.Errorf("cannot sync the informer of %v", typ)
		}
	}
	if err := n.dns.start(host.gateway); err != nil {
		return nil, err
	}
	return n, nil
}

// stop ends the proxy and the DNS server and removes the host's links,
// routes and namespace files.
func (n *isolatedNet) stop() error {
	n.cancel()
	if n.proxy != nil {
		n.proxy.close()
	}
	if n.dns != nil {
		n.dns.stop()
	}
	return n.host.tearDown()
}

// startNetwork gives the pod its own network namespace, resolv.conf and
// hosts file, unless the node shares the host's network with its pods or
// the pod asks for the host's network.
func (r *podRun) startNetwork() error {
	n := r.p.net
	if n == nil {
		return nil
	}
	if r.pod.Spec.HostNetwork {
		// On the host's network the host's resolver applies, unless the
		// pod asks for the cluster's DNS, as a kubelet does.
		if r.pod.Spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
			return nil
		}
		dir := filepath.Join(r.dir, "network")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cannot make pod network directory: %w", err)
		}
		r.hostDNS = filepath.Join(dir, "resolv.conf")
		if err := os.WriteFile(r.hostDNS, []byte(resolvConf(r.pod, n.host.gateway)), 0o644); err != nil {
			return fmt.Errorf("cannot write the pod's resolv.conf: %w", err)
		}
		return nil
	}
	path, err := n.host.addPod(r.ip)
	if err != nil {
		return err
	}
	r.netns = path
	dir := filepath.Join(r.dir, "network")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot make pod network directory: %w", err)
	}
	files := map[string]string{
		"resolv.conf": resolvConf(r.pod, n.host.gateway),
		"hosts":       hostsFile(r.pod, r.ip),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("cannot write the pod's %s: %w", name, err)
		}
	}
	return nil
}

// networkMounts are the pod's own /etc/resolv.conf and /etc/hosts, when it
// has a network namespace, or the cluster's resolv.conf for a pod on the
// host's network that asks for the cluster's DNS.
func (r *podRun) networkMounts() []mount {
	if r.hostDNS != "" {
		return []mount{{Source: r.hostDNS, Target: "/etc/resolv.conf", ReadOnly: true}}
	}
	if r.netns == "" {
		return nil
	}
	dir := filepath.Join(r.dir, "network")
	var out []mount
	if r.pod.Spec.DNSPolicy != corev1.DNSDefault {
		out = append(out, mount{Source: filepath.Join(dir, "resolv.conf"), Target: "/etc/resolv.conf", ReadOnly: true})
	}
	return append(out, mount{Source: filepath.Join(dir, "hosts"), Target: "/etc/hosts", ReadOnly: true})
}

// stopNetwork removes the pod's veth and namespace.
func (r *podRun) stopNetwork() {
	if r.netns == "" {
		return
	}
	if err := r.p.net.host.removePod(r.ip); err != nil {
		r.p.cfg.Log.Error(err, "cannot remove pod network", "pod", r.pod.Namespace+"/"+r.pod.Name)
	}
	r.netns = ""
}

// startNetwork starts the isolated network when the node is configured
// with one.
func (p *Provider) startNetwork() error {
	if p.cfg.Network == nil {
		return nil
	}
	n, err := startIsolatedNet(*p.cfg.Network, p.cfg.PodIPs, p.cfg.Client, p.cfg.Log)
	if err != nil {
		return err
	}
	p.ips.reserve(n.host.gateway)
	p.net = n
	return nil
}

// stopNetwork removes the isolated network; pods are stopped already.
func (p *Provider) stopNetwork() {
	if p.net == nil {
		return
	}
	if err := p.net.stop(); err != nil {
		p.cfg.Log.Error(err, "cannot remove the pod network")
	}
	p.net = nil
}

// takeIP is a new pod's IP: the node's own address for a pod on the host's
// network of an isolated node, else one from the pool.
func (p *Provider) takeIP(pod *corev1.Pod) (netip.Addr, error) {
	if p.cfg.Network != nil && pod.Spec.HostNetwork {
		return netip.MustParseAddr(nodeIP), nil
	}
	return p.ips.take()
}

// nodeIP is the node's address, which pods on the host's network share.
const nodeIP = "127.0.0.1"

// resolvConf is a pod's /etc/resolv.conf as a kubelet writes it for the
// ClusterFirst policy: the cluster's DNS server, the pod's namespace's and
// the cluster's domains to search, and ndots:5; the pod's dnsConfig adds to
// it (or, for the None policy, is all of it).
func resolvConf(pod *corev1.Pod, server netip.Addr) string {
	var servers, search []string
	options := []string{"ndots:5"}
	if pod.Spec.DNSPolicy != corev1.DNSNone {
		servers = []string{server.String()}
		search = []string{pod.Namespace + ".svc." + ClusterDomain, "svc." + ClusterDomain, ClusterDomain}
	} else {
		options = nil
	}
	if c := pod.Spec.DNSConfig; c != nil {
		servers = append(servers, c.Nameservers...)
		search = append(search, c.Searches...)
		for _, o := range c.Options {
			options = setOption(options, o)
		}
	}
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.String()
}

// setOption sets a resolver option, replacing one of the same name.
func setOption(options []string, o corev1.PodDNSConfigOption) []string {
	v := o.Name
	if o.Value != nil {
		v += ":" + *o.Value
	}
	for i, old := range options {
		if name, _, _ := strings.Cut(old, ":"); name == o.Name {
			options[i] = v
			return options
		}
	}
	return append(options, v)
}

// hostsFile is a pod's /etc/hosts: localhost, the pod's own name (and its
// name under a headless Service when it has a subdomain) and the pod's
// hostAliases.
func hostsFile(pod *corev1.Pod, ip netip.Addr) string {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	name := hostname(pod)
	if sub := pod.Spec.Subdomain; sub != "" {
		fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.%s\t%s\n", ip, name, sub, pod.Namespace, ClusterDomain, name)
	} else {
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
	}
	for _, a := range pod.Spec.HostAliases {
		fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
	return b.String()
}

// RemoveNetwork removes the host's links, route and namespace files of the
// isolated network numbered id, such as a killed process leaves behind.
// Without its bridge or a namespace file there is nothing to remove.
func RemoveNetwork(id int, services netip.Prefix) error {
	h := &hostNet{id: id, services: services.Masked()}
	files, _ := filepath.Glob(filepath.Join(netnsDir, h.netnsPrefix()+"*"))
	if _, err := netlink.LinkByName(h.bridgeName()); err != nil && len(files) == 0 {
		return nil
	}
	return h.tearDown()
}
