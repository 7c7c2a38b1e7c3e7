package devcluster

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stashplane/stashplane/internal/devcluster/processnode"
)

// nodeNet is the part of a node's configuration the network plan sets.
type nodeNet struct {
	APIServer, PodIPs       string
	ID                      int
	Services, ServiceTarget string
}

func TestNetPlanNodeConfig(t *testing.T) {
	cases := map[string]struct {
		reason string
		plan   netPlan
		want   nodeNet
	}{
		"Host": {
			reason: "Pods on the host's network take loopback IPs and reach the API server at its own address.",
			plan:   netPlan{id: 20},
			want:   nodeNet{APIServer: "127.0.0.1:40123", PodIPs: "127.20.0.0/16"},
		},
		"Isolated": {
			reason: "Isolated pods take IPs of 198.19.N.0/24 and reach the API server through the kubernetes Service, which leads to its own address.",
			plan:   netPlan{id: 20, isolated: true},
			want: nodeNet{
				APIServer: "198.18.20.1:443", PodIPs: "198.19.20.0/24",
				ID: 20, Services: "198.18.20.0/24", ServiceTarget: "127.0.0.1:40123",
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := processnode.Config{APIServerHost: "127.0.0.1", APIServerPort: "40123"}
			tc.plan.nodeConfig(&cfg)
			got := nodeNet{APIServer: cfg.APIServerHost + ":" + cfg.APIServerPort, PodIPs: cfg.PodIPs.String()}
			if n := cfg.Network; n != nil {
				got.ID, got.Services, got.ServiceTarget = n.ID, n.Services.String(), n.APIServer
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nnodeConfig(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
