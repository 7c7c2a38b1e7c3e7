package devcluster

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProviderProcess is Stashplane's provider running as a process of its own
// beside the cluster (`stashplane provider`), so that a test can kill it
// outright, start it again and measure its memory, as it would a pod.
type ProviderProcess struct {
	binary string
	args   []string
	log    string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartProvider starts `BINARY provider` against the cluster with extra
// flags; its output goes to logs/provider.log in the cluster's directory.
// The process dies with the one that started it.
func (c *Cluster) StartProvider(binary string, flags ...string) (*ProviderProcess, error) {
	p := &ProviderProcess{
		binary: binary,
		args:   append([]string{"provider", "--kubeconfig", c.KubeconfigPath(), "--metrics-address", "0", "--health-address", "0"}, flags...),
		log:    c.logPath("provider"),
	}
	return p, p.start()
}

func (p *ProviderProcess) start() error {
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open provider log: %w", err)
	}
	cmd := exec.Command(p.binary, p.args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("cannot start the provider: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(exited) }()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	return nil
}

// Pid is the running provider's process id.
func (p *ProviderProcess) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Running says whether the provider's process is alive.
func (p *ProviderProcess) Running() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// Kill ends the provider with SIGKILL, as an OOM kill or a lost node
// would, and waits until it is gone.
func (p *ProviderProcess) Kill() {
	p.signal(syscall.SIGKILL, 0)
}

// Stop asks the provider to stop (SIGTERM) and kills it after 10 s.
func (p *ProviderProcess) Stop() {
	p.signal(syscall.SIGTERM, 10*time.Second)
}

func (p *ProviderProcess) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-exited:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// Restart starts the provider again once it has stopped.
func (p *ProviderProcess) Restart() error {
	if p.Running() {
		return errors.New("cannot restart the provider: it is still running")
	}
	return p.start()
}

// RSS is the provider's resident memory in bytes, from /proc.
func (p *ProviderProcess) RSS() (int64, error) { return p.memory("VmRSS:") }

// PeakRSS is the most resident memory the provider has held since it
// started, in bytes, from /proc.
func (p *ProviderProcess) PeakRSS() (int64, error) { return p.memory("VmHWM:") }

// memory reads one field of the provider's /proc status, in bytes.
func (p *ProviderProcess) memory(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("cannot read the provider's memory: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cannot parse the provider's memory %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("cannot find %s in the provider's /proc status", strings.TrimSuffix(field, ":"))
}

// ResidentFile is how much of the provider's resident memory is pages of
// files (its binary's, mostly), in bytes, from /proc; the rest is its
// heap, stacks and the runtime's.
func (p *ProviderProcess) ResidentFile() (int64, error) { return p.memory("RssFile:") }

// clockTicks is the unit of a process's CPU times in /proc/PID/stat:
// USER_HZ, 100 on every Linux architecture Stashplane builds for.
const clockTicks = 100

// CPUTime is the processor time the provider has used since it started,
// in user and system mode together, from /proc.
func (p *ProviderProcess) CPUTime() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("cannot read the provider's processor time: %w", err)
	}
	// The command name, in parentheses, may hold spaces and parentheses:
	// the fields counted are those after its last ")" (utime and stime
	// are the 14th and 15th).
	end := strings.LastIndexByte(string(data), ')')
	fields := strings.Fields(string(data[end+1:]))
	if end < 0 || len(fields) < 13 {
		return 0, fmt.Errorf("cannot parse the provider's /proc stat %q", data)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cannot parse the provider's processor time %q: %w", f, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
