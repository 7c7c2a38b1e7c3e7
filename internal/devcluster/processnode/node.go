package processnode

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/cert"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// KubeletVersion is what the node reports as its kubelet version: the
// version of the control plane it runs with.
const KubeletVersion = "v1.37.2"

// Node is a running process node: the Node object, its pods and the
// kubelet API that serves logs.
type Node struct {
	*Provider
	vk *nodeutil.Node
}

// StartNode registers the node and runs its pods until ctx ends. The kubelet
// API listens on 127.0.0.1:port.
func StartNode(ctx context.Context, cfg Config, port int) (_ *Node, err error) {
	p, err := New(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			p.stopNetwork()
		}
	}()
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey("127.0.0.1", nil, []string{cfg.NodeName})
	if err != nil {
		return nil, fmt.Errorf("cannot make kubelet serving certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cannot load kubelet serving certificate: %w", err)
	}
	mux := http.NewServeMux()
	vk, err := nodeutil.NewNode(cfg.NodeName,
		func(pc nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
			describeNode(pc.Node, port)
			return p, nil, nil
		},
		nodeutil.WithClient(cfg.Client),
		func(c *nodeutil.NodeConfig) error {
			c.HTTPListenAddr = "127.0.0.1:" + strconv.Itoa(port)
			c.Handler = mux
			c.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
			c.NumWorkers = 4
			// The node resolves env itself, including status.podIP, which
			// the pod controller cannot know before the pod runs.
			c.SkipDownwardAPIResolution = true
			c.InformerResyncPeriod = 30 * time.Second
			return nil
		},
		nodeutil.AttachProviderRoutes(mux),
	)
	if err != nil {
		return nil, fmt.Errorf("cannot make process node: %w", err)
	}
	n := &Node{Provider: p, vk: vk}
	go func() {
		if err := vk.Run(ctx); err != nil && ctx.Err() == nil {
			cfg.Log.Error(err, "process node stopped")
		}
	}()
	if err := vk.WaitReady(ctx, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("process node did not become ready: %w", err)
	}
	return n, nil
}

// Done is closed when the node has stopped.
func (n *Node) Done() <-chan struct{} { return n.vk.Done() }

func describeNode(n *corev1.Node, port int) {
	n.Labels["kubernetes.io/os"] = "linux"
	n.Labels["kubernetes.io/arch"] = runtime.GOARCH
	n.Labels["stashplane.io/process-node"] = "true"
	n.Status.Capacity, n.Status.Allocatable = nodeAllocatable.DeepCopy(), nodeAllocatable.DeepCopy()
	for i, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			n.Status.Conditions[i].Status = corev1.ConditionFalse
			n.Status.Conditions[i].Reason = "ProcessNodeHasNo" + string(c.Type)
		}
	}
	n.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
		{Type: corev1.NodeHostName, Address: n.Name},
	}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	n.Status.NodeInfo = corev1.NodeSystemInfo{
		OperatingSystem: "linux", Architecture: runtime.GOARCH,
		KubeletVersion: KubeletVersion, ContainerRuntimeVersion: "stashplane-process://1",
	}
}

// GetStatsSummary reports the node and its pods without usage figures.
func (p *Provider) GetStatsSummary(ctx context.Context) (*statsv1alpha1.Summary, error) {
	pods, err := p.GetPods(ctx)
	if err != nil {
		return nil, err
	}
	s := &statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{NodeName: p.cfg.NodeName, StartTime: metav1.Now()}}
	for _, pod := range pods {
		s.Pods = append(s.Pods, statsv1alpha1.PodStats{PodRef: statsv1alpha1.PodReference{Name: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID)}})
	}
	return s, nil
}

// GetMetricsResource reports no resource metrics.
func (p *Provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, nil
}
