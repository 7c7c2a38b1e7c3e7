package devcluster

import (
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/util/cert"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stashplane/stashplane/internal/devcluster/processnode"
)

// Pod network modes (Options.PodNetwork).
const (
	// PodNetworkHost shares the host's network with the pods; each pod's IP
	// is a loopback address of its own. Services are not served.
	PodNetworkHost = "host"
	// PodNetworkIsolated gives each pod a network namespace of its own on a
	// bridge of the cluster's, proxies ClusterIP Services and answers DNS
	// for them. It needs root.
	PodNetworkIsolated = "isolated"
)

// netPlan is a cluster's address ranges, all taken from its network number
// N, which no other dev cluster on the machine holds (see claimPodNetwork).
// Every range is reserved for benchmarking: neither private nor public, so
// nothing outside the machine is ever addressed.
type netPlan struct {
	id       byte
	isolated bool
	// servingCA signs the API server's own serving certificate, made when
	// pods reach it at the kubernetes Service's address.
	servingCA []byte
}

// claimNetwork claims the cluster's network number and plans its ranges.
func (c *Cluster) claimNetwork() error {
	mode := c.opts.PodNetwork
	if mode != "" && mode != PodNetworkHost && mode != PodNetworkIsolated {
		return fmt.Errorf("pod network %q must be %q or %q", mode, PodNetworkHost, PodNetworkIsolated)
	}
	loopback, lock, err := claimPodNetwork()
	if err != nil {
		return err
	}
	c.podNetLock = lock
	c.net = &netPlan{id: loopback.Addr().As4()[1], isolated: mode == PodNetworkIsolated}
	// An isolated cluster killed outright leaves its bridge, veths, route
	// and namespaces, all named after its number; whoever claims the
	// number next removes them (an isolated node does so as it starts).
	if !c.net.isolated {
		if err := processnode.RemoveNetwork(int(c.net.id), c.net.services()); err != nil {
			c.opts.Log.Error(err, "cannot remove the network a killed dev cluster left")
		}
	}
	return nil
}

// services is the ClusterIP range: 198.18.N.0/24.
func (p *netPlan) services() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, p.id, 0}), 24)
}

// podIPs is 198.19.N.0/24 (the bridge is 198.19.N.1) for isolated pods,
// 127.N.0.0/16 for pods on the host's network.
func (p *netPlan) podIPs() netip.Prefix {
	if p.isolated {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, p.id, 0}), 24)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, p.id, 0, 0}), 16)
}

// PodSubnet is the range the cluster's pod IPs come from.
func (c *Cluster) PodSubnet() netip.Prefix { return c.net.podIPs() }

// kubernetesIP is the ClusterIP the API server gives the kubernetes
// Service: the range's first address.
func (p *netPlan) kubernetesIP() netip.Addr { return p.services().Addr().Next() }

// serveForPods gives an isolated cluster's API server a serving certificate
// that is also valid for the names and address pods reach it by, the
// kubernetes Service's; the CA that signed it replaces envtest's once the
// server runs (see useServingCA).
func (p *netPlan) serveForPods(args *envtest.Arguments, certDir string) error {
	if !p.isolated {
		return nil
	}
	dnsNames := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc." + processnode.ClusterDomain}
	ips := []net.IP{net.ParseIP("127.0.0.1"), p.kubernetesIP().AsSlice()}
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey("127.0.0.1", ips, dnsNames)
	if err != nil {
		return fmt.Errorf("cannot make API server serving certificate: %w", err)
	}
	// The PEM holds the serving certificate, then its CA.
	rest := certPEM
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		p.servingCA = pem.EncodeToMemory(b)
	}
	if p.servingCA == nil {
		return errors.New("cannot find the CA of the API server serving certificate")
	}
	certFile, keyFile := filepath.Join(certDir, "pod-serving.crt"), filepath.Join(certDir, "pod-serving.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return fmt.Errorf("cannot write API server serving certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("cannot write API server serving key: %w", err)
	}
	args.Set("tls-cert-file", certFile)
	args.Set("tls-private-key-file", keyFile)
	return nil
}

// useServingCA makes clients trust the serving certificate of
// serveForPods.
func (p *netPlan) useServingCA(s *envtest.SecureServing) {
	if p.servingCA != nil {
		s.CA = p.servingCA
	}
}

// nodeConfig sets the pod IPs and, for an isolated cluster, the network
// and the API server address pods see (the kubernetes Service's).
func (p *netPlan) nodeConfig(cfg *processnode.Config) {
	cfg.PodIPs = p.podIPs()
	if !p.isolated {
		return
	}
	cfg.Network = &processnode.NetworkConfig{
		ID: int(p.id), Services: p.services(),
		APIServer: net.JoinHostPort(cfg.APIServerHost, cfg.APIServerPort),
	}
	cfg.APIServerHost, cfg.APIServerPort = p.kubernetesIP().String(), strconv.Itoa(443)
}
