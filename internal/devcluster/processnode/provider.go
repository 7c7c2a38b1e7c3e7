// Package processnode is the dev cluster's node: a virtual-kubelet provider
// that runs each pod's containers as local processes, each in a private
// mount namespace that shows it its volumes at their mountPath.
//
// It is sandbox and test infrastructure, not part of the product: it trusts
// the pods it runs and runs them as the node's own user. Pods share the
// host's network, each with a loopback address of its own as its IP, or,
// with Config.Network, each have a network namespace of their own (see
// NetworkConfig).
package processnode

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-logr/logr"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Config configures a process node.
type Config struct {
	// NodeName is the name of the Node object.
	NodeName string
	// Dir holds the pods' volumes, logs and sandboxes.
	Dir string
	// Images maps container images to programs.
	Images ImageTable
	// Registry pulls the images Images does not map, from loopback
	// registries, to run each from its own root file system; nil runs
	// only mapped images.
	Registry *ImageStore
	// Client talks to the cluster's API server.
	Client kubernetes.Interface
	// APIServerHost and APIServerPort are what pods find in
	// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT.
	APIServerHost string
	APIServerPort string
	// PodIPs is the range pod IPs are taken from: a loopback range when
	// pods share the host's network, the pod subnet with Network.
	PodIPs netip.Prefix
	// Network, when set, gives pods a network of their own (see
	// NetworkConfig); nil shares the host's network with them.
	Network *NetworkConfig
	// SandboxBinary is the program that starts containers (see
	// MaybeRunSandbox); by default the running binary.
	SandboxBinary string
	Log           logr.Logger
}

// Provider runs pods as local processes.
type Provider struct {
	cfg Config

	mu     sync.Mutex
	pods   map[types.NamespacedName]*podRun
	notify func(*corev1.Pod)
	ips    *ipPool
	// net is the isolated pod network; nil when pods share the host's.
	net *isolatedNet
}

// New returns a process node provider.
func New(cfg Config) (*Provider, error) {
	if cfg.SandboxBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("cannot find the running binary: %w", err)
		}
		cfg.SandboxBinary = exe
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "pods"), 0o755); err != nil {
		return nil, fmt.Errorf("cannot make pod directory: %w", err)
	}
	ips, err := newIPPool(cfg.PodIPs)
	if err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, pods: map[types.NamespacedName]*podRun{}, ips: ips, notify: func(*corev1.Pod) {}}
	if err := p.startNetwork(); err != nil {
		return nil, err
	}
	return p, nil
}

// NotifyPods registers the callback that reports pod status changes.
func (p *Provider) NotifyPods(_ context.Context, f func(*corev1.Pod)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notify = f
}

func key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

// CreatePod starts running a pod.
func (p *Provider) CreatePod(_ context.Context, pod *corev1.Pod) error {
	k := key(pod.Namespace, pod.Name)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.pods[k]; ok {
		return errdefs.AsInvalidInput(fmt.Errorf("pod %s already runs", k))
	}
	ip, err := p.takeIP(pod)
	if err != nil {
		return err
	}
	r := newPodRun(p, pod.DeepCopy(), ip)
	p.pods[k] = r
	go r.run()
	return nil
}

// UpdatePod takes note of a pod's new labels and annotations, which its
// downward API volumes show at their next refresh; running containers are
// not changed otherwise.
func (p *Provider) UpdatePod(_ context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	r, ok := p.pods[key(pod.Namespace, pod.Name)]
	p.mu.Unlock()
	if ok {
		r.mu.Lock()
		r.pod.Labels, r.pod.Annotations = pod.Labels, pod.Annotations
		r.mu.Unlock()
	}
	return nil
}

// DeletePod stops a pod's processes and reports it terminated.
func (p *Provider) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	k := key(pod.Namespace, pod.Name)
	p.mu.Lock()
	r, ok := p.pods[k]
	p.mu.Unlock()
	if !ok {
		return errdefs.NotFoundf("pod %s not found", k)
	}
	r.stop(pod)
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	delete(p.pods, k)
	p.mu.Unlock()
	// The address goes back once its veth and namespace are gone.
	r.cleanup()
	p.ips.give(r.ip)
	p.report(r.snapshot())
	return nil
}

// StopAll stops every pod's processes and removes their files; the node is
// going away.
func (p *Provider) StopAll() {
	p.mu.Lock()
	runs := make([]*podRun, 0, len(p.pods))
	for _, r := range p.pods {
		runs = append(runs, r)
	}
	p.pods = map[types.NamespacedName]*podRun{}
	p.mu.Unlock()
	for _, r := range runs {
		r.stop(nil)
		<-r.done
		r.cleanup()
	}
	p.stopNetwork()
}

// GetPod returns a pod the node runs.
func (p *Provider) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	r, ok := p.pods[key(ns, name)]
	p.mu.Unlock()
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s not found", ns, name)
	}
	return r.snapshot(), nil
}

// GetPodStatus returns the status of a pod the node runs.
func (p *Provider) GetPodStatus(ctx context.Context, ns, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods lists the pods the node runs.
func (p *Provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(p.pods))
	for _, r := range p.pods {
		out = append(out, r.snapshot())
	}
	return out, nil
}

// GetContainerLogs returns a container's output.
func (p *Provider) GetContainerLogs(ctx context.Context, ns, name, container string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	p.mu.Lock()
	r, ok := p.pods[key(ns, name)]
	p.mu.Unlock()
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s not found", ns, name)
	}
	return r.logs(ctx, container, opts)
}

func (p *Provider) report(pod *corev1.Pod) {
	p.mu.Lock()
	f := p.notify
	p.mu.Unlock()
	f(pod)
}
