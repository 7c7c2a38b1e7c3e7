package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
)

// envHoldCluster makes TestHoldCluster start a cluster with the pod network
// it names ("1" for the default), print its pod subnet and directory and
// wait to be killed.
const envHoldCluster = "STASHPLANE_E2E_HOLD_CLUSTER"

// TestHoldCluster is the child of the tests that kill a cluster's process;
// on its own it does nothing.
func TestHoldCluster(t *testing.T) {
	mode := os.Getenv(envHoldCluster)
	if mode == "" {
		return
	}
	opts := devclustertest.Options{}
	if mode != "1" {
		opts.PodNetwork = mode
	}
	c := devclustertest.StartWith(t, opts)
	fmt.Printf("pod-subnet=%s\n", c.PodSubnet())
	fmt.Printf("cluster-dir=%s\n", c.Dir())
	time.Sleep(5 * time.Minute)
}

// holdCluster starts a child process running a cluster with the pod network
// mode and returns it with its pod subnet and directory.
func holdCluster(t *testing.T, mode string) (cmd *exec.Cmd, subnet, dir string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(self, "-test.run", "^TestHoldCluster$", "-test.v")
	cmd.Env = append(os.Environ(), envHoldCluster+"="+mode)
	// A pipe of its own rather than cmd.StdoutPipe, which Wait closes
	// under a reader: the child's log is read until it ends, whenever the
	// child is waited for.
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	// The child's own account of a failed start (its test log is on
	// stdout, a panic on stderr) is what explains it.
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		_ = out.Close()
		t.Fatal(err)
	}
	var said []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		said = append(said, sc.Text())
		if len(said) > 80 {
			said = said[1:]
		}
		if s, ok := strings.CutPrefix(sc.Text(), "pod-subnet="); ok {
			subnet = s
		}
		if d, ok := strings.CutPrefix(sc.Text(), "cluster-dir="); ok {
			dir = d
			break
		}
	}
	if dir == "" {
		_ = cmd.Process.Kill()
		werr := cmd.Wait()
		t.Fatalf("the child did not start its cluster (%v); the last of its output:\n%s\nits stderr:\n%s", werr, strings.Join(said, "\n"), stderr.String())
	}
	// The child goes on writing its log; a full pipe would stop it.
	go func() {
		_, _ = io.Copy(io.Discard, out)
		_ = out.Close()
	}()
	return cmd, subnet, dir
}

// A process that runs a dev cluster and is killed outright (no cleanup at
// all) takes every component with it: etcd, the API server, the controller
// manager and the scheduler.
func TestKilledProcessLeavesNoComponent(t *testing.T) {
	t.Parallel()
	cmd, _, dir := holdCluster(t, "1")
	defer os.RemoveAll(dir)
	if len(processesMentioning(dir)) == 0 {
		t.Fatal("no component of the child's cluster is running: the test would prove nothing")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	poll(t, time.Minute, "components of a killed process's cluster are still running", func(context.Context) (bool, error) {
		return len(processesMentioning(dir)) == 0, nil
	})
}
