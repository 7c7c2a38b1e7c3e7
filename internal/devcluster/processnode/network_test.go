package processnode

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestResolvConf(t *testing.T) {
	server := netip.MustParseAddr("198.19.20.1")
	cases := map[string]struct {
		reason string
		pod    corev1.PodSpec
		want   string
	}{
		"ClusterFirst": {
			reason: "A pod gets the cluster's server, its namespace's domains to search and ndots:5, as from a kubelet.",
			pod:    corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst},
			want:   "nameserver 198.19.20.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
		},
		"Unset": {
			reason: "No policy is ClusterFirst.",
			want:   "nameserver 198.19.20.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
		},
		"DNSConfig": {
			reason: "dnsConfig adds searches and servers and overrides options by name.",
			pod: corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{
				Nameservers: []string{"198.19.20.9"}, Searches: []string{"example.test"},
				Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}},
			}},
			want: "nameserver 198.19.20.1\nnameserver 198.19.20.9\nsearch shop.svc.cluster.local svc.cluster.local cluster.local example.test\noptions ndots:2 edns0\n",
		},
		"None": {
			reason: "The None policy takes dnsConfig alone.",
			pod: corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{
				Nameservers: []string{"198.19.20.9"}, Searches: []string{"example.test"},
			}},
			want: "nameserver 198.19.20.9\nsearch example.test\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: tc.pod}
			if diff := cmp.Diff(tc.want, resolvConf(pod, server)); diff != "" {
				t.Errorf("%s\nresolvConf(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestHostsFile(t *testing.T) {
	ip := netip.MustParseAddr("198.19.20.5")
	const head = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	cases := map[string]struct {
		reason string
		pod    corev1.PodSpec
		want   string
	}{
		"Name": {
			reason: "A pod finds its own name.",
			want:   head + "198.19.20.5\tweb-0\n",
		},
		"Subdomain": {
			reason: "A pod with a hostname and subdomain finds its name under the headless Service too.",
			pod:    corev1.PodSpec{Hostname: "db", Subdomain: "dbs"},
			want:   head + "198.19.20.5\tdb.dbs.shop.svc.cluster.local\tdb\n",
		},
		"HostAliases": {
			reason: "hostAliases are appended.",
			pod:    corev1.PodSpec{HostAliases: []corev1.HostAlias{{IP: "198.19.20.7", Hostnames: []string{"a", "b"}}}},
			want:   head + "198.19.20.5\tweb-0\n\n# Entries added by HostAliases.\n198.19.20.7\ta\tb\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop"}, Spec: tc.pod}
			if diff := cmp.Diff(tc.want, hostsFile(pod, ip)); diff != "" {
				t.Errorf("%s\nhostsFile(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestIPPoolRanges(t *testing.T) {
	cases := map[string]struct {
		reason  string
		prefix  string
		reserve []string
		give    []int
		takes   int
		want    []string
	}{
		"Loopback": {
			reason: "Loopback pod IPs start after the network address.",
			prefix: "127.20.0.0/16", takes: 2,
			want: []string{"127.20.0.1", "127.20.0.2"},
		},
		"SubnetSkipsBridge": {
			reason: "The bridge's address is never handed out.",
			prefix: "198.19.20.0/24", reserve: []string{"198.19.20.1"}, takes: 2,
			want: []string{"198.19.20.2", "198.19.20.3"},
		},
		"NoBroadcast": {
			reason: "The last address of the subnet is not a pod's.",
			prefix: "198.19.20.0/30", reserve: []string{"198.19.20.1"}, takes: 3,
			want: []string{"198.19.20.2", "error"},
		},
		"Reuse": {
			reason: "An address given back is taken again.",
			prefix: "198.19.20.0/24", reserve: []string{"198.19.20.1"}, give: []int{0}, takes: 2,
			want: []string{"198.19.20.2", "198.19.20.2"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := newIPPool(netip.MustParsePrefix(tc.prefix))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.reserve {
				p.reserve(netip.MustParseAddr(r))
			}
			var got []string
			for i := 0; i < tc.takes; i++ {
				a, err := p.take()
				if err != nil {
					got = append(got, "error")
					break
				}
				got = append(got, a.String())
				for _, g := range tc.give {
					if g == i {
						p.give(a)
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\ntake(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestHostNetNames(t *testing.T) {
	h, err := newHostNet(20, netip.MustParsePrefix("198.19.20.0/24"), netip.MustParsePrefix("198.18.20.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("198.19.20.7")
	got := []string{h.bridgeName(), h.vethName(ip), h.netnsPath(ip), h.gateway.String()}
	want := []string{"spbr20", "spv20-7", "/run/netns/spdev20-7", "198.19.20.1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names: -want +got:\n%s", diff)
	}
}
