package processnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Container restarts back off as a kubelet's do, from 10s doubling to 5m.
const (
	backoffStart = 10 * time.Second
	backoffMax   = 5 * time.Minute
	// maxGrace bounds how long a deleted pod's processes get to stop.
	maxGrace = 10 * time.Second
)

// podRun is one pod on the node: its processes and the status reported for it.
type podRun struct {
	p   *Provider
	ip  netip.Addr
	dir string
	// netns is the file of the pod's network namespace; empty when the
	// pod shares the host's network.
	netns string
	// hostDNS is the cluster's resolv.conf for a pod on the host's network
	// that asks for the cluster's DNS (ClusterFirstWithHostNet); empty
	// otherwise.
	hostDNS string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	pod   *corev1.Pod
	procs map[string]*os.Process
	// execs are the programs exec'd in the pod's containers, by pid.
	execs map[int]*os.Process
	// stdins are the input of the containers that keep stdin open.
	stdins map[string]io.WriteCloser
	grace  time.Duration
	// pulled are the images of the containers run from their own root
	// file system (ImageStore), by container name.
	pulled map[string]*PulledImage
}

func newPodRun(p *Provider, pod *corev1.Pod, ip netip.Addr) *podRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &podRun{
		p: p, ip: ip, pod: pod, ctx: ctx, cancel: cancel,
		dir:    filepath.Join(p.cfg.Dir, "pods", string(pod.UID)),
		done:   make(chan struct{}),
		procs:  map[string]*os.Process{},
		execs:  map[int]*os.Process{},
		stdins: map[string]io.WriteCloser{},
		grace:  maxGrace,
		pulled: map[string]*PulledImage{},
	}
	now := metav1.Now()
	st := &pod.Status
	st.Phase = corev1.PodPending
	st.HostIP, st.PodIP = "127.0.0.1", ip.String()
	st.HostIPs = []corev1.HostIP{{IP: st.HostIP}}
	st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	st.StartTime = &now
	st.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionFalse, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: now},
	}
	st.InitContainerStatuses = waiting(pod.Spec.InitContainers, "PodInitializing")
	st.ContainerStatuses = waiting(pod.Spec.Containers, "ContainerCreating")
	return r
}

func waiting(cs []corev1.Container, reason string) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, 0, len(cs))
	for _, c := range cs {
		out = append(out, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}},
		})
	}
	return out
}

// snapshot returns a copy of the pod as last reported.
func (r *podRun) snapshot() *corev1.Pod {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pod.DeepCopy()
}

// update changes the pod's status under the lock and reports it.
func (r *podRun) update(f func(st *corev1.PodStatus)) {
	r.mu.Lock()
	f(&r.pod.Status)
	r.pod.Status.Phase = phase(r.pod)
	setConditions(r.pod)
	pod := r.pod.DeepCopy()
	r.mu.Unlock()
	r.p.report(pod)
}

// fail ends the pod Failed with a reason, as for a pod that cannot run.
func (r *podRun) fail(reason string, err error) {
	r.p.cfg.Log.Info("pod failed", "pod", r.pod.Namespace+"/"+r.pod.Name, "reason", reason, "error", err.Error())
	r.update(func(st *corev1.PodStatus) {
		st.Reason, st.Message = reason, err.Error()
		now := metav1.Now()
		for _, ss := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
			for i := range ss {
				if ss[i].State.Terminated == nil {
					ss[i].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
						ExitCode: 128, Reason: reason, Message: err.Error(), FinishedAt: now,
					}}
				}
			}
		}
	})
}

func (r *podRun) run() {
	defer close(r.done)
	spec := r.pod.Spec
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if _, _, err := r.p.cfg.Images.Resolve(c.Image, c.Command, c.Args); err != nil {
			var nm *ErrImageNotMapped
			if errors.As(err, &nm) && r.p.cfg.Registry.Serves(c.Image) {
				if err := r.pull(c); err != nil {
					r.fail("ErrImagePull", err)
					return
				}
				continue
			}
			if errors.As(err, &nm) {
				r.fail("ImageNotMapped", err)
			} else {
				r.fail("ContainerCannotRun", err)
			}
			return
		}
	}
	if err := r.startNetwork(); err != nil {
		r.fail("NetworkSetupFailed", err)
		return
	}
	sources, err := r.volumes()
	if err != nil {
		if r.ctx.Err() == nil {
			r.fail("VolumeSetupFailed", err)
		}
		return
	}
	r.update(func(st *corev1.PodStatus) { st.Reason, st.Message = "", "" })
	stopRefresh, refreshed := make(chan struct{}), make(chan struct{})
	go func() { defer close(refreshed); r.keepVolumesFresh(stopRefresh) }()
	defer func() { close(stopRefresh); <-refreshed }()
	for i, c := range spec.InitContainers {
		if ok := r.runContainer(c, sources, func(st *corev1.PodStatus) *corev1.ContainerStatus { return &st.InitContainerStatuses[i] }, true); !ok {
			return
		}
	}
	r.update(func(st *corev1.PodStatus) {
		for i := range st.ContainerStatuses {
			st.ContainerStatuses[i].State.Waiting.Reason = "ContainerCreating"
		}
	})
	var wg sync.WaitGroup
	for i, c := range spec.Containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runContainer(c, sources, func(st *corev1.PodStatus) *corev1.ContainerStatus { return &st.ContainerStatuses[i] }, false)
		}()
	}
	wg.Wait()
}

// volumes sets up the pod's volumes, waiting while one is not ready yet.
func (r *podRun) volumes() (map[string]string, error) {
	for {
		sources, err := r.p.volumeSources(r.ctx, r.pod, r.dir)
		var nr *errVolumeNotReady
		if !errors.As(err, &nr) {
			return sources, err
		}
		r.update(func(st *corev1.PodStatus) { st.Reason, st.Message = "ContainerCreating", err.Error() })
		select {
		case <-r.ctx.Done():
			return nil, r.ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// volumeRefresh is how often a running pod's Secret, ConfigMap, downward
// API and projected volumes are written again from their sources.
const volumeRefresh = 5 * time.Second

// keepVolumesFresh refreshes the pod's projected volumes until stop closes.
func (r *podRun) keepVolumesFresh(stop <-chan struct{}) {
	t := time.NewTicker(volumeRefresh)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-r.ctx.Done():
			return
		case <-t.C:
			if err := r.p.refreshVolumes(r.ctx, r.snapshot(), r.dir, false); err != nil && r.ctx.Err() == nil {
				r.p.cfg.Log.V(1).Info("cannot refresh volumes; they keep their last content", "pod", r.pod.Namespace+"/"+r.pod.Name, "error", err.Error())
			}
		}
	}
}

// runContainer runs one container until it is done for good under the pod's
// restart policy. Init containers must succeed; it says whether the pod may
// go on.
func (r *podRun) runContainer(c corev1.Container, sources map[string]string, status func(*corev1.PodStatus) *corev1.ContainerStatus, init bool) bool {
	if _, err := r.identity(c); err != nil {
		// As a kubelet: the container waits with the reason, and the pod
		// stays Pending; nothing will change its mind.
		r.update(func(st *corev1.PodStatus) {
			status(st).State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}}
		})
		return false
	}
	policy := r.pod.Spec.RestartPolicy
	backoff := backoffStart
	for restarts := int32(0); ; restarts++ {
		code, err := r.attempt(c, sources, restarts, status)
		if nr := (*errVolumeNotReady)(nil); errors.As(err, &nr) {
			// As a kubelet: a Secret, ConfigMap or key the container's
			// environment names is missing; it waits, and is tried again
			// in case it comes.
			r.update(func(st *corev1.PodStatus) {
				status(st).State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}}
			})
			select {
			case <-r.ctx.Done():
				return false
			case <-time.After(2 * time.Second):
			}
			restarts--
			continue
		}
		if err != nil {
			r.fail("ContainerCannotRun", fmt.Errorf("container %q: %w", c.Name, err))
			return false
		}
		again := policy == corev1.RestartPolicyAlways && !init || policy != corev1.RestartPolicyNever && code != 0
		if r.ctx.Err() != nil || !again {
			return code == 0
		}
		select {
		case <-r.ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, backoffMax)
		r.update(func(st *corev1.PodStatus) { status(st).RestartCount = restarts + 1 })
	}
}

// attempt runs a container's program once and returns its exit code.
func (r *podRun) attempt(c corev1.Container, sources map[string]string, restarts int32, status func(*corev1.PodStatus) *corev1.ContainerStatus) (int32, error) {
	if r.ctx.Err() != nil {
		return 137, nil
	}
	if err := r.p.refreshVolumes(r.ctx, r.snapshot(), r.dir, true); err != nil {
		r.p.cfg.Log.Info("cannot refresh volumes before a container starts; they keep their last content", "pod", r.pod.Namespace+"/"+r.pod.Name, "error", err.Error())
	}
	cmd, logFile, err := r.command(c, sources, restarts)
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	var stdin io.WriteCloser
	if c.Stdin {
		rd, w, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		defer rd.Close()
		cmd.Stdin, stdin = rd, w
	}
	r.mu.Lock()
	if r.ctx.Err() != nil {
		r.mu.Unlock()
		return 137, nil
	}
	err = cmd.Start()
	if err == nil {
		r.procs[c.Name] = cmd.Process
		if stdin != nil {
			r.stdins[c.Name] = stdin
		}
	}
	r.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("cannot start sandbox: %w", err)
	}
	started := metav1.Now()
	r.update(func(st *corev1.PodStatus) {
		cs := status(st)
		if cs.State.Terminated != nil {
			cs.LastTerminationState = cs.State
		}
		cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}
		cs.Ready, cs.Started = true, ptr.To(true)
		cs.ContainerID = fmt.Sprintf("process://%d", cmd.Process.Pid)
	})
	werr := cmd.Wait()
	r.mu.Lock()
	delete(r.procs, c.Name)
	if stdin != nil {
		stdin.Close()
		delete(r.stdins, c.Name)
	}
	r.mu.Unlock()
	code := exitCode(cmd, werr)
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	r.update(func(st *corev1.PodStatus) {
		cs := status(st)
		cs.Ready = false
		cs.Started = ptr.To(false)
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, StartedAt: started, FinishedAt: metav1.Now(), ContainerID: cs.ContainerID,
		}}
	})
	return code, nil
}

func exitCode(cmd *exec.Cmd, err error) int32 {
	if cmd.ProcessState == nil {
		return 128
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int32(ws.Signal())
	}
	return int32(cmd.ProcessState.ExitCode())
}

// command prepares the sandbox of one container attempt.
func (r *podRun) command(c corev1.Container, sources map[string]string, restarts int32) (*exec.Cmd, *os.File, error) {
	img := r.pulledImage(c.Name)
	path, argv, err := r.resolve(c, c.Command, c.Args)
	if err != nil {
		return nil, nil, err
	}
	mounts, err := r.mounts(c, sources)
	if err != nil {
		return nil, nil, err
	}
	mounts = append(mounts, r.networkMounts()...)
	root := filepath.Join(r.dir, "rootfs", c.Name)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, nil, err
	}
	id, err := r.identity(c)
	if err != nil {
		return nil, nil, err
	}
	env, err := r.env(r.ctx, c, homeOf(id))
	if err != nil {
		return nil, nil, err
	}
	// Command and args may refer to the container's variables, as $(VAR).
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	for i := 1; i < len(argv); i++ {
		argv[i] = expand(argv[i], vars)
	}
	dir := c.WorkingDir
	spec := sandboxSpec{Root: root, Mounts: mounts, Path: path, Args: argv, Env: env, Hostname: hostname(r.pod), User: id, NetNS: r.netns}
	if img != nil {
		// A fresh writable layer per start, as a runtime gives a
		// restarted container.
		layer := filepath.Join(r.dir, "layers", c.Name)
		if err := os.RemoveAll(layer); err != nil {
			return nil, nil, err
		}
		spec.Image, spec.Upper, spec.Work = img.Root, filepath.Join(layer, "upper"), filepath.Join(layer, "work")
		for _, d := range []string{spec.Upper, spec.Work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, nil, err
			}
		}
		if dir == "" {
			dir = img.Config.WorkingDir
		}
	}
	spec.Dir = dir
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, nil, err
	}
	specPath := filepath.Join(r.dir, "sandbox-"+c.Name+".json")
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		return nil, nil, err
	}
	logPath := r.logPath(c.Name, restarts)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(r.p.cfg.SandboxBinary)
	cmd.Env = []string{envSandboxSpec + "=" + specPath}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd, logFile, nil
}

func (r *podRun) logPath(container string, attempt int32) string {
	return filepath.Join(r.dir, "logs", container, fmt.Sprintf("%d.log", attempt))
}

// mounts turns a container's volumeMounts into bind mounts.
func (r *podRun) mounts(c corev1.Container, sources map[string]string) ([]mount, error) {
	readOnlyKind := map[string]bool{}
	for _, v := range r.pod.Spec.Volumes {
		readOnlyKind[v.Name] = v.Secret != nil || v.ConfigMap != nil || v.Projected != nil || v.DownwardAPI != nil
	}
	out := make([]mount, 0, len(c.VolumeMounts))
	for _, vm := range c.VolumeMounts {
		src, ok := sources[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volume mount %q names no volume of the pod", vm.Name)
		}
		if vm.SubPath != "" {
			if filepath.IsAbs(vm.SubPath) || strings.Contains(vm.SubPath, "..") {
				return nil, fmt.Errorf("subPath %q must be relative and stay in the volume", vm.SubPath)
			}
			src = filepath.Join(src, vm.SubPath)
			if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, mount{Source: src, Target: vm.MountPath, ReadOnly: vm.ReadOnly || readOnlyKind[vm.Name]})
	}
	return out, nil
}

// stop ends the pod's processes: SIGTERM, then SIGKILL after the grace period.
func (r *podRun) stop(pod *corev1.Pod) {
	r.mu.Lock()
	if pod != nil && pod.DeletionGracePeriodSeconds != nil {
		r.grace = min(time.Duration(*pod.DeletionGracePeriodSeconds)*time.Second, maxGrace)
	}
	grace := r.grace
	r.cancel()
	for _, proc := range r.procs {
		_ = syscall.Kill(-proc.Pid, syscall.SIGTERM)
	}
	for _, proc := range r.execs {
		_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
	}
	r.mu.Unlock()
	select {
	case <-r.done:
		return
	case <-time.After(grace):
	}
	r.mu.Lock()
	for _, proc := range r.procs {
		_ = syscall.Kill(-proc.Pid, syscall.SIGKILL)
	}
	r.mu.Unlock()
}

// cleanup removes the pod's files from the node.
func (r *podRun) cleanup() {
	r.stopNetwork()
	if err := os.RemoveAll(r.dir); err != nil {
		r.p.cfg.Log.Error(err, "cannot remove pod directory", "dir", r.dir)
	}
}

// phase derives a pod's phase from its containers, as a kubelet does.
func phase(pod *corev1.Pod) corev1.PodPhase {
	st := pod.Status
	if st.Phase == corev1.PodFailed || st.Phase == corev1.PodSucceeded {
		return st.Phase
	}
	if st.Reason != "" && st.Reason != "ContainerCreating" {
		return corev1.PodFailed
	}
	for _, cs := range st.InitContainerStatuses {
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		if t := cs.State.Terminated; t == nil || t.ExitCode != 0 {
			return corev1.PodPending
		}
	}
	var running, failed, waiting int
	for _, cs := range st.ContainerStatuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
			failed++
		case cs.State.Waiting != nil:
			waiting++
		}
	}
	switch {
	case waiting > 0 && running == 0 && failed == 0:
		return corev1.PodPending
	case running > 0 || waiting > 0:
		return corev1.PodRunning
	case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
		return corev1.PodRunning
	case failed > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure:
		return corev1.PodRunning
	case failed > 0:
		return corev1.PodFailed
	}
	return corev1.PodSucceeded
}

// setConditions keeps the pod's conditions in line with its containers.
func setConditions(pod *corev1.Pod) {
	st := &pod.Status
	initialized := true
	for _, cs := range st.InitContainerStatuses {
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			initialized = false
		}
	}
	ready := len(st.ContainerStatuses) > 0
	for _, cs := range st.ContainerStatuses {
		ready = ready && cs.Ready
	}
	set := func(t corev1.PodConditionType, ok bool) {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		for i := range st.Conditions {
			if st.Conditions[i].Type == t && st.Conditions[i].Status != s {
				st.Conditions[i].Status, st.Conditions[i].LastTransitionTime = s, metav1.Now()
			}
		}
	}
	set(corev1.PodInitialized, initialized)
	set(corev1.ContainersReady, ready)
	set(corev1.PodReady, ready)
}

// hostname is a pod's host name: spec.hostname when set, else its name.
func hostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	return pod.Name
}
