package devcluster

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stashplane/stashplane/internal/devcluster/processnode"
)

// The control plane's etcd and kube-apiserver are started by envtest, which
// does not tie them to this process: if it is killed (a test binary hit by
// SIGKILL, a crashed `dev up`), they would live on. A reaper — this binary
// re-run with envReaper set — holds the read end of a pipe whose write end
// only this process has; when the pipe closes without a "release" line,
// however this process ended, the reaper kills the components it was told
// about.
const envReaper = "STASHPLANE_DEVCLUSTER_REAPER"

func init() {
	if os.Getenv(envReaper) != "" {
		reap()
		os.Exit(0)
	}
}

// reap reads one pid per line until "release" (nothing to do) or the end of
// input (the parent is gone: kill them all, then remove the pod network
// named by a "net N" line).
func reap() {
	var pids []int
	netID := -1
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "release" {
			return
		}
		if id, ok := strings.CutPrefix(line, "net "); ok {
			netID, _ = strconv.Atoi(id)
		}
		if pid, err := strconv.Atoi(line); err == nil {
			pids = append(pids, pid)
		}
	}
	defer removeNetwork(netID)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	time.Sleep(5 * time.Second)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// reaper is the parent's side of a reaper process.
type reaper struct {
	cmd *exec.Cmd
	w   *os.File
}

// startReaper starts the reaper; it holds claim (the cluster's network
// number) too, until it has removed what is named by it.
func startReaper(claim *os.File) (*reaper, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the running binary: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("cannot make reaper pipe: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = []string{envReaper + "=1"}
	cmd.Stdin = r
	cmd.ExtraFiles = []*os.File{claim}
	// Its own process group: a signal to the parent's group must not take
	// the reaper with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("cannot start reaper: %w", err)
	}
	r.Close()
	go func() { _ = cmd.Wait() }()
	return &reaper{cmd: cmd, w: w}, nil
}

// watch tells the reaper about the processes whose command line names a
// path inside dir.
func (r *reaper) watch(dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		// The separator keeps /tmp/spdev-12 from matching /tmp/spdev-123.
		if err != nil || !strings.Contains(string(b), dir+"/") {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || pid == os.Getpid() || pid == r.cmd.Process.Pid {
			continue
		}
		fmt.Fprintln(r.w, pid)
	}
}

// watchNetwork tells the reaper about the isolated pod network numbered id.
func (r *reaper) watchNetwork(id byte) {
	fmt.Fprintln(r.w, "net", id)
}

// release ends the reaper without killing anything: the cluster stopped
// cleanly.
func (r *reaper) release() {
	fmt.Fprintln(r.w, "release")
	r.w.Close()
}

// removeNetwork removes the links, route and namespace files of an isolated
// pod network whose cluster was killed.
func removeNetwork(id int) {
	if id < 0 || id > 255 {
		return
	}
	plan := &netPlan{id: byte(id), isolated: true}
	if err := processnode.RemoveNetwork(id, plan.services()); err != nil {
		fmt.Fprintln(os.Stderr, "dev cluster reaper:", err)
	}
}
