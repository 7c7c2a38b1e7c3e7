// Package devcluster runs a small but real Kubernetes cluster on this
// machine: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// built from source, plus a process node that runs pods as local processes.
// It is the proving ground of Stashplane's tests and its embedded default
// (`stashplane dev up`).
package devcluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stashplane/stashplane/internal/devcluster/processnode"
)

// NodeName is the name of the process node.
const NodeName = "process-node"

// controllers are the kube-controller-manager controllers the dev cluster
// runs: enough for Jobs, CronJobs, workloads, claims, garbage collection and
// ResourceQuota usage (the API server's ResourceQuota and LimitRanger
// admission plugins are on by default, and quota admission needs the usage
// this controller computes), the EndpointSlices of Services, and the
// aggregation of ClusterRoles (edit and view gain the rules of roles that
// aggregate to them; Crossplane's roles are made that way).
var controllers = []string{
	"job-controller", "cronjob-controller", "garbage-collector-controller",
	"persistentvolume-binder-controller", "persistentvolume-protection-controller",
	"persistentvolumeclaim-protection-controller", "serviceaccount-controller",
	"root-ca-certificate-publisher-controller", "namespace-controller",
	"ttl-after-finished-controller", "pod-garbage-collector-controller",
	"deployment-controller", "replicaset-controller", "statefulset-controller",
	"daemonset-controller", "resourcequota-controller", "endpointslice-controller",
	"clusterrole-aggregation-controller",
}

// Options configure a dev cluster.
type Options struct {
	// Dir holds the cluster's state: kubeconfig, logs, certificates, etcd
	// data, pods and volumes. It is created if missing; what the cluster
	// makes in it is removed by Stop.
	Dir string
	// BinDir holds etcd, kube-apiserver, kube-controller-manager and
	// kube-scheduler (what `make tools` builds into bin/).
	BinDir string
	// StashplaneBinary and ResticBinary are the programs the project's
	// images map to on the process node; empty leaves them unmapped.
	StashplaneBinary string
	ResticBinary     string
	// ImageMirrors rewrite image reference prefixes to loopback registries
	// (processnode.ImageStore): images the node does not map to host
	// programs are pulled from there and run from their own root file
	// systems.
	ImageMirrors map[string]string
	// CRDs are installed once the API server is up.
	CRDs []*apiextensionsv1.CustomResourceDefinition
	// Log receives the cluster's own messages; the components log to files
	// under Dir/logs.
	Log logr.Logger
	// PodNetwork is PodNetworkHost (the default when empty) or
	// PodNetworkIsolated.
	PodNetwork string
}

// Cluster is a running dev cluster.
type Cluster struct {
	opts   Options
	cp     *envtest.ControlPlane
	config *rest.Config
	procs  []*component
	node   *processnode.Node
	cancel context.CancelFunc
	made   []string

	reaper *reaper
	// podNetLock holds this cluster's pod IP range against other clusters.
	podNetLock *os.File
	net        *netPlan
	stopOnce   sync.Once
	stopErr    error
}

// The entries a cluster makes in its directory, removed again by Stop.
const (
	kubeconfigFile = "kubeconfig"
	logsDir        = "logs"
	pkiDir         = "pki"
	etcdDir        = "etcd"
	nodeDir        = "node"
	volumesDir     = "volumes"
)

// Start brings a cluster up and returns once the node is Ready and pods can
// be created in the default namespace. On failure nothing is left running.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve cluster directory: %w", err)
	}
	opts.Dir = dir
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, b)); err != nil {
			return nil, fmt.Errorf("cannot find %s in %q (run `make tools`): %w", b, opts.BinDir, err)
		}
	}
	c = &Cluster{opts: opts}
	defer func() {
		if err != nil {
			_ = c.Stop()
			c = nil
		}
	}()
	for _, d := range []string{logsDir, pkiDir, etcdDir, nodeDir, volumesDir} {
		if err := c.mkdir(d); err != nil {
			return c, err
		}
	}
	if err := c.claimNetwork(); err != nil {
		return c, err
	}
	if c.reaper, err = startReaper(c.podNetLock); err != nil {
		return c, err
	}
	if err := c.startControlPlane(); err != nil {
		return c, err
	}
	c.reaper.watch(c.opts.Dir)
	if c.net.isolated {
		c.reaper.watchNetwork(c.net.id)
	}
	if err := c.startControllers(); err != nil {
		return c, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if err := c.startNode(runCtx); err != nil {
		return c, err
	}
	if len(opts.CRDs) > 0 {
		if _, err := envtest.InstallCRDs(c.config, envtest.CRDInstallOptions{CRDs: opts.CRDs}); err != nil {
			return c, fmt.Errorf("cannot install CRDs: %w", err)
		}
	}
	return c, c.waitUsable(ctx)
}

func (c *Cluster) mkdir(name string) error {
	p := filepath.Join(c.opts.Dir, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("cannot make %q: %w", p, err)
	}
	c.made = append(c.made, p)
	return nil
}

func (c *Cluster) logFile(name string) (*os.File, error) {
	return os.OpenFile(c.logPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

func (c *Cluster) logPath(name string) string {
	return filepath.Join(c.opts.Dir, logsDir, name+".log")
}

func (c *Cluster) startControlPlane() error {
	etcdLog, err := c.logFile("etcd")
	if err != nil {
		return err
	}
	apiLog, err := c.logFile("kube-apiserver")
	if err != nil {
		return err
	}
	c.cp = &envtest.ControlPlane{
		Etcd: &envtest.Etcd{
			Path: filepath.Join(c.opts.BinDir, "etcd"), DataDir: filepath.Join(c.opts.Dir, etcdDir),
			Out: etcdLog, Err: etcdLog, StartTimeout: time.Minute,
		},
		APIServer: &envtest.APIServer{
			Path: filepath.Join(c.opts.BinDir, "kube-apiserver"), CertDir: filepath.Join(c.opts.Dir, pkiDir),
			Out: apiLog, Err: apiLog, StartTimeout: 2 * time.Minute,
			// Draining many watches (Crossplane core's, one per kind) may
			// outlast envtest's 20 s on a loaded machine.
			StopTimeout: time.Minute,
		},
	}
	args := c.cp.GetAPIServer().Configure()
	args.Set("service-cluster-ip-range", c.net.services().String())
	args.Set("advertise-address", "127.0.0.1")
	args.Set("endpoint-reconciler-type", "none")
	args.Set("kubelet-preferred-address-types", "InternalIP")
	// Pods get their service-account token, as in a real cluster. The
	// process node is never tainted not-ready: no node lifecycle controller
	// runs to lift the taint, and the node is ready once it is registered.
	args.Set("disable-admission-plugins", "TaintNodesByCondition")
	if err := c.net.serveForPods(args, filepath.Join(c.opts.Dir, pkiDir)); err != nil {
		return err
	}
	if err := c.cp.Start(); err != nil {
		return fmt.Errorf("cannot start control plane (logs in %s): %w", filepath.Join(c.opts.Dir, logsDir), err)
	}
	c.net.useServingCA(&c.cp.GetAPIServer().SecureServing)
	admin, err := c.cp.AddUser(envtest.User{Name: "stashplane-dev-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("cannot add admin user: %w", err)
	}
	c.config = admin.Config()
	kc, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("cannot write kubeconfig: %w", err)
	}
	kcPath := filepath.Join(c.opts.Dir, kubeconfigFile)
	if err := os.WriteFile(kcPath, kc, 0o600); err != nil {
		return fmt.Errorf("cannot write kubeconfig: %w", err)
	}
	c.made = append(c.made, kcPath)
	return os.WriteFile(c.caPath(), c.cp.GetAPIServer().SecureServing.CA, 0o644)
}

func (c *Cluster) caPath() string { return filepath.Join(c.opts.Dir, pkiDir, "cluster-ca.crt") }

func (c *Cluster) startControllers() error {
	kc := c.KubeconfigPath()
	if err := c.run("kube-controller-manager",
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc,
		"--leader-elect=false", "--secure-port=0",
		"--controllers="+strings.Join(controllers, ","),
		"--root-ca-file="+c.caPath(),
		"--service-cluster-ip-range="+c.net.services().String(),
		"--concurrent-gc-syncs=5",
	); err != nil {
		return err
	}
	return c.run("kube-scheduler",
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc,
		"--leader-elect=false", "--secure-port=0",
	)
}

// run starts a control-plane component that dies with this process.
func (c *Cluster) run(name string, args ...string) error {
	out, err := c.logFile(name)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(c.opts.BinDir, name), args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("cannot start %s: %w", name, err)
	}
	comp := &component{cmd: cmd, exited: make(chan struct{})}
	c.procs = append(c.procs, comp)
	go func() { _ = cmd.Wait(); out.Close(); close(comp.exited) }()
	return nil
}

// component is a control-plane process the cluster started.
type component struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func (c *Cluster) startNode(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(c.config)
	if err != nil {
		return fmt.Errorf("cannot make client: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	listen := c.cp.GetAPIServer().SecureServing.ListenAddr
	cfg := processnode.Config{
		NodeName:      NodeName,
		Dir:           filepath.Join(c.opts.Dir, nodeDir),
		Images:        processnode.DefaultImageTable(c.opts.StashplaneBinary, c.opts.ResticBinary),
		Registry:      &processnode.ImageStore{Dir: filepath.Join(c.opts.Dir, nodeDir, "images"), Mirrors: c.opts.ImageMirrors},
		Client:        client,
		APIServerHost: listen.Address,
		APIServerPort: listen.Port,
		Log:           c.opts.Log.WithName("process-node"),
	}
	c.net.nodeConfig(&cfg)
	if c.node, err = processnode.StartNode(ctx, cfg, port); err != nil {
		return err
	}
	prov := &processnode.Provisioner{Client: client, Dir: filepath.Join(c.opts.Dir, volumesDir), Log: c.opts.Log.WithName("provisioner")}
	return prov.Run(ctx)
}

// waitUsable waits until the default service account exists (pods can be
// admitted) and the node is Ready.
func (c *Cluster) waitUsable(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(c.config)
	if err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return false, nil
		}
		if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
			return false, nil
		}
		n, err := client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("cluster did not become usable (logs in %s): %w", filepath.Join(c.opts.Dir, logsDir), err)
	}
	return nil
}

// Config is an admin client configuration for the cluster.
func (c *Cluster) Config() *rest.Config { return rest.CopyConfig(c.config) }

// KubeconfigPath is the admin kubeconfig written for kubectl.
func (c *Cluster) KubeconfigPath() string { return filepath.Join(c.opts.Dir, kubeconfigFile) }

// Dir is the cluster's state directory.
func (c *Cluster) Dir() string { return c.opts.Dir }

// Stop ends every pod, component and server of the cluster and removes what
// it made in its directory.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Cluster) stop() error {
	var errs []error
	if c.node != nil {
		c.node.StopAll()
	}
	if c.cancel != nil {
		c.cancel()
		if c.node != nil {
			select {
			case <-c.node.Done():
			case <-time.After(10 * time.Second):
			}
		}
	}
	for _, p := range c.procs {
		p.stop()
	}
	if c.cp != nil {
		if err := c.cp.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("cannot stop control plane: %w", err))
		}
	}
	if c.reaper != nil {
		c.reaper.release()
	}
	if c.podNetLock != nil {
		_ = os.Remove(c.podNetLock.Name())
		c.podNetLock.Close()
	}
	for _, p := range c.made {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stop sends SIGTERM, then SIGKILL if the process outlives 10s.
func (p *component) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// claimPodNetwork picks the loopback /16 its pods take their IPs from, one
// that no other dev cluster on this machine holds: two clusters sharing a
// range would give two pods the same address, and their servers the same
// port. The claim is a lock on a file, which the kernel drops if this
// process dies.
func claimPodNetwork() (netip.Prefix, *os.File, error) {
	for _, i := range rand.Perm(200) {
		n := byte(16 + i)
		f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("stashplane-devcluster-podnet-%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return netip.Prefix{}, nil, fmt.Errorf("cannot claim a pod network: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, n, 0, 0}), 16), f, nil
	}
	return netip.Prefix{}, nil, errors.New("cannot claim a pod network: every range is held by another dev cluster")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cannot find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// RestartAPIServer stops the API server and starts it again on the same
// address, with the same certificates, users and etcd: every client sees it
// go away and come back, as in a control-plane upgrade.
func (c *Cluster) RestartAPIServer() error {
	as := c.cp.GetAPIServer()
	// Stop sends SIGTERM and, when the API server is slow to drain its
	// streams, SIGKILL after StopTimeout, returning an error without
	// waiting: wait until its port is free either way.
	stopErr := as.Stop()
	addr := net.JoinHostPort(as.SecureServing.Address, as.SecureServing.Port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("cannot stop the API server: it still listens on %s: %v", addr, stopErr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := as.Start(); err != nil {
		return fmt.Errorf("cannot start the API server again (log in %s): %w", c.logPath("kube-apiserver"), err)
	}
	return nil
}
