package processnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	utilexec "k8s.io/utils/exec"
)

// The kubelet API's streaming calls: exec runs a program beside a running
// container (its root and mounts, network, host name, user, environment
// and working directory), attach joins a running container's input and
// output, and port-forward connects to a port of the pod.

// RunInContainer runs cmd in a running container, as `kubectl exec` does.
// A program that exits non-zero returns an error carrying its exit code,
// which the API server hands to the client.
func (p *Provider) RunInContainer(ctx context.Context, ns, name, container string, cmd []string, attach api.AttachIO) error {
	r, err := p.run(ns, name)
	if err != nil {
		return err
	}
	return r.exec(ctx, container, cmd, attach)
}

// AttachToContainer joins a running container's output and, when the
// container keeps its stdin open (stdin: true), its input.
func (p *Provider) AttachToContainer(ctx context.Context, ns, name, container string, attach api.AttachIO) error {
	r, err := p.run(ns, name)
	if err != nil {
		return err
	}
	return r.attach(ctx, container, attach)
}

// PortForward connects stream to a port of the pod, dialled at its IP.
func (p *Provider) PortForward(ctx context.Context, ns, name string, port int32, stream io.ReadWriteCloser) error {
	r, err := p.run(ns, name)
	if err != nil {
		return err
	}
	defer stream.Close()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(r.ip.String(), strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("cannot connect to port %d of pod %s/%s: %w", port, ns, name, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, stream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

func (p *Provider) run(ns, name string) (*podRun, error) {
	p.mu.Lock()
	r, ok := p.pods[key(ns, name)]
	p.mu.Unlock()
	if !ok {
		return nil, errdefs.NotFoundf("pod %s/%s not found", ns, name)
	}
	return r, nil
}

// running returns a container of the pod and the process running it.
func (r *podRun) running(container string) (corev1.Container, *os.Process, error) {
	for _, c := range append(append([]corev1.Container{}, r.pod.Spec.InitContainers...), r.pod.Spec.Containers...) {
		if c.Name != container {
			continue
		}
		r.mu.Lock()
		proc := r.procs[container]
		r.mu.Unlock()
		if proc == nil {
			return c, nil, errdefs.InvalidInputf("container %q of pod %s/%s is not running", container, r.pod.Namespace, r.pod.Name)
		}
		return c, proc, nil
	}
	return corev1.Container{}, nil, errdefs.NotFoundf("container %q not found in pod %s/%s", container, r.pod.Namespace, r.pod.Name)
}

// execGrace is how long an exec'd program whose client went away gets
// between SIGTERM and SIGKILL.
const execGrace = 2 * time.Second

func (r *podRun) exec(ctx context.Context, container string, argv []string, aio api.AttachIO) error {
	c, proc, err := r.running(container)
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		return errdefs.InvalidInput("exec needs a command")
	}
	path, args, err := r.resolve(c, argv, nil)
	if err != nil {
		return errdefs.AsInvalidInput(err)
	}
	id, err := r.identity(c)
	if err != nil {
		return errdefs.AsInvalidInput(err)
	}
	env, err := r.env(ctx, c, homeOf(id))
	if err != nil {
		return err
	}
	specPath, err := r.writeExecSpec(sandboxSpec{Enter: proc.Pid, Path: path, Args: args, Env: env, Dir: c.WorkingDir, User: id})
	if err != nil {
		return err
	}
	defer os.Remove(specPath)
	cmd := exec.Command(r.p.cfg.SandboxBinary)
	cmd.Env = []string{envSandboxSpec + "=" + specPath}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Wait returns soon after the program ends even when the client's
	// input never closes.
	cmd.WaitDelay = time.Second
	var copies sync.WaitGroup
	if aio.TTY() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Pdeathsig: syscall.SIGKILL}
		tty, err := pty.Start(cmd)
		if err != nil {
			return fmt.Errorf("cannot start a terminal in container %q: %w", container, err)
		}
		defer tty.Close()
		go resizeTTY(tty, aio.Resize())
		if in := aio.Stdin(); in != nil {
			go func() { _, _ = io.Copy(tty, in) }()
		}
		if out := aio.Stdout(); out != nil {
			copies.Add(1)
			go func() { defer copies.Done(); _, _ = io.Copy(out, tty) }()
		}
	} else {
		if in := aio.Stdin(); in != nil {
			cmd.Stdin = in
		}
		if out := aio.Stdout(); out != nil {
			cmd.Stdout = out
		}
		if errOut := aio.Stderr(); errOut != nil {
			cmd.Stderr = errOut
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("cannot exec in container %q: %w", container, err)
		}
	}
	if !r.trackExec(cmd.Process) {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	defer r.untrackExec(cmd.Process)
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-stopped:
			case <-time.After(execGrace):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		case <-stopped:
		}
	}()
	werr := cmd.Wait()
	close(stopped)
	copies.Wait()
	if code := exitCode(cmd, werr); code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: int(code)}
	}
	return nil
}

func resizeTTY(tty *os.File, sizes <-chan api.TermSize) {
	for s := range sizes {
		_ = pty.Setsize(tty, &pty.Winsize{Rows: s.Height, Cols: s.Width})
	}
}

// writeExecSpec writes the spec of one exec'd program beside the pod's
// container specs.
func (r *podRun) writeExecSpec(spec sandboxSpec) (string, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(r.dir, "exec-*.json")
	if err != nil {
		return "", fmt.Errorf("cannot write exec spec: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return "", fmt.Errorf("cannot write exec spec: %w", err)
	}
	return filepath.Clean(f.Name()), nil
}

// trackExec records an exec'd program so that stopping the pod stops it
// too; it returns false when the pod is stopping already.
func (r *podRun) trackExec(proc *os.Process) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		return false
	}
	r.execs[proc.Pid] = proc
	return true
}

func (r *podRun) untrackExec(proc *os.Process) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.execs, proc.Pid)
}

// errNoStdin is returned when a client attaches its input to a container
// that does not keep stdin open.
var errNoStdin = errors.New("the container does not keep stdin open (stdin: true)")

func (r *podRun) attach(ctx context.Context, container string, aio api.AttachIO) error {
	c, _, err := r.running(container)
	if err != nil {
		return err
	}
	if aio.TTY() {
		return errdefs.InvalidInput("attach with a terminal is not supported on the process node; attach without -t")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if in := aio.Stdin(); in != nil {
		if !c.Stdin {
			return errdefs.AsInvalidInput(errNoStdin)
		}
		r.mu.Lock()
		w := r.stdins[container]
		r.mu.Unlock()
		go func() {
			_, _ = io.Copy(w, in)
			if c.StdinOnce {
				w.Close()
			}
		}()
	}
	out := aio.Stdout()
	if out == nil {
		out = aio.Stderr()
	}
	if out == nil {
		<-ctx.Done()
		return nil
	}
	seen := r.logSize(container)
	logs, err := r.logs(ctx, container, api.ContainerLogOpts{Follow: true})
	if err != nil {
		return err
	}
	defer logs.Close()
	_, err = io.Copy(out, skipExisting(logs, seen))
	return err
}

// logSize is how much the container's current attempt has logged so far:
// attach shows what follows, not what came before.
func (r *podRun) logSize(container string) int64 {
	r.mu.Lock()
	attempt := int32(0)
	for _, cs := range r.pod.Status.ContainerStatuses {
		if cs.Name == container {
			attempt = cs.RestartCount
		}
	}
	r.mu.Unlock()
	fi, err := os.Stat(r.logPath(container, attempt))
	if err != nil {
		return 0
	}
	return fi.Size()
}

func skipExisting(rd io.Reader, n int64) io.Reader {
	if n > 0 {
		_, _ = io.CopyN(io.Discard, rd, n)
	}
	return rd
}
