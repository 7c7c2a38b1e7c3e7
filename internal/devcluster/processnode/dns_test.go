package processnode

import (
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// fakeDNS is a DNS server whose listers hold the objects given.
func fakeDNS(t *testing.T, objs ...any) *dnsServer {
	t.Helper()
	svcs := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	slices := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *corev1.Service:
			err = svcs.Add(o)
		case *discoveryv1.EndpointSlice:
			err = slices.Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &dnsServer{services: corelisters.NewServiceLister(svcs), slices: discoverylisters.NewEndpointSliceLister(slices), log: logr.Discard()}
}

// reply sums up an answer: its code and the addresses of its A records.
type reply struct {
	Rcode string
	A     []string
}

func query(d *dnsServer, name string, qtype uint16) reply {
	req := new(dns.Msg)
	req.SetQuestion(name, qtype)
	m := d.answer(req)
	r := reply{Rcode: dns.RcodeToString[m.Rcode]}
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			r.A = append(r.A, a.A.String())
		}
	}
	return r
}

func TestDNSAnswer(t *testing.T) {
	headlessPod := endpoint("198.19.20.8", ptr.To(true))
	headlessPod.Hostname = ptr.To("db-0")
	d := fakeDNS(t,
		service("shop", "web", "198.18.20.10"),
		service("shop", "db", "None"),
		endpointSlice("shop", "db", "pg", 5432, headlessPod, endpoint("198.19.20.9", ptr.To(false)), endpoint("198.19.20.7", nil)),
	)
	cases := map[string]struct {
		reason string
		name   string
		qtype  uint16
		want   reply
	}{
		"ClusterIP": {
			reason: "A Service's name is its ClusterIP.",
			name:   "web.shop.svc.cluster.local.", qtype: dns.TypeA,
			want: reply{Rcode: "NOERROR", A: []string{"198.18.20.10"}},
		},
		"CaseInsensitive": {
			reason: "Names match whatever their case.",
			name:   "Web.Shop.SVC.cluster.local.", qtype: dns.TypeA,
			want: reply{Rcode: "NOERROR", A: []string{"198.18.20.10"}},
		},
		"AAAA": {
			reason: "Another type of a known name has no records, but the name exists.",
			name:   "web.shop.svc.cluster.local.", qtype: dns.TypeAAAA,
			want: reply{Rcode: "NOERROR"},
		},
		"Headless": {
			reason: "A headless Service's name is its ready endpoints' addresses.",
			name:   "db.shop.svc.cluster.local.", qtype: dns.TypeA,
			want: reply{Rcode: "NOERROR", A: []string{"198.19.20.7", "198.19.20.8"}},
		},
		"PodOfHeadless": {
			reason: "A pod of a headless Service is found by its host name.",
			name:   "db-0.db.shop.svc.cluster.local.", qtype: dns.TypeA,
			want: reply{Rcode: "NOERROR", A: []string{"198.19.20.8"}},
		},
		"UnknownPod": {
			reason: "An unknown host name under a Service does not exist.",
			name:   "db-1.db.shop.svc.cluster.local.", qtype: dns.TypeA,
			want: reply{Rcode: "NXDOMAIN"},
		},
		"OtherNamespace": {
			reason: "A Service is only found in its own namespace.",
			name:   "web.other.svc.cluster.local.", qtype: dns.TypeA,
			want: reply{Rcode: "NXDOMAIN"},
		},
		"SearchCandidate": {
			reason: "A short name expanded by a search domain that does not fit is unknown.",
			name:   "web.shop.svc.cluster.local.shop.svc.cluster.local.", qtype: dns.TypeA,
			want: reply{Rcode: "NXDOMAIN"},
		},
		"External": {
			reason: "Names outside the cluster are never resolved or forwarded.",
			name:   "example.com.", qtype: dns.TypeA,
			want: reply{Rcode: "NXDOMAIN"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, query(d, tc.name, tc.qtype)); diff != "" {
				t.Errorf("%s\nanswer(%s): -want +got:\n%s", tc.reason, tc.name, diff)
			}
		})
	}
}
