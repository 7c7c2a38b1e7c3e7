package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/layout"
)

// A prune Job killed half way (SIGKILL to its pod's processes once restic
// has begun to change the restic repository, so restic leaves its
// exclusive lock) leaves a restic repository that restic's check passes;
// the next restore (reading the data first, as a verification does)
// removes the dead pod's lock and succeeds at once, not 30 minutes later,
// so does the next backup, and the next prune completes and frees the
// data.
func TestPruneKilledHalfWay(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defaultKeepLast(t, kube, 1)
	storageDir := storageDir(t)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	startRetention(t, kube, bc, localStorage("shared", "default", storageDir, nil))
	// The first run holds 48 MiB of random files, half of which the
	// second run no longer has: every pack is half unused, so the prune
	// repacks all of them and is long enough to be killed half way.
	removeHalf := writeHalved(t, appData(t, kube))
	start := time.Now()
	retentionRun(t, kube, bc, start.Add(time.Second))
	removeHalf()
	retentionRun(t, kube, bc, start.Add(2*time.Second))
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	before := repoFiles(t, repoDir)

	// Start a prune and kill it once restic has changed the repository.
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	cli := exec.Command(filepath.Join(bin, "stashplane"), "prune", "app", "-n", "default", "-o", "json", "--timeout", "2m")
	cli.Env = append(os.Environ(), "KUBECONFIG="+cluster.KubeconfigPath())
	var cliOut bytes.Buffer
	cli.Stdout, cli.Stderr = &cliOut, &cliOut
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	pod := prunePod(t, kube)
	pgid := podProcessGroup(t, pod)
	killHalfWay(t, pgid, repoDir, before)
	_ = cli.Wait()
	var res pruneResult
	if err := jsonDecode(cliOut.Bytes(), &res); err != nil || res.Succeeded {
		t.Fatalf("stashplane prune of the killed Job: %s (%v), want a failure", cliOut.String(), err)
	}
	locks := repoFiles(t, filepath.Join(repoDir, "locks"))
	if len(locks) != 1 {
		t.Fatalf("the killed prune left locks %v, want its exclusive lock", locks)
	}
	var lock struct {
		Exclusive bool   `json:"exclusive"`
		Hostname  string `json:"hostname"`
	}
	if err := jsonDecode(hostRestic(t, repoDir, "--no-lock", "cat", "lock", locks[0]), &lock); err != nil || !lock.Exclusive || lock.Hostname != pod {
		t.Fatalf("the lock left is %+v (%v), want the exclusive lock of pod %s", lock, err, pod)
	}
	hostRestic(t, repoDir, "--no-lock", "check", "--read-data")

	// A restore reading all of the data first, as a verification with
	// readDataSubset does, removes the dead pod's lock, which restic's
	// restore would otherwise meet for 30 minutes, and succeeds.
	if err := kube.Create(context.Background(), appWithHostDir("app-restored", t.TempDir())); err != nil {
		t.Fatal(err)
	}
	rs := restoreSession("after-kill", "app-restored", corev1alpha1.SnapshotLatest, "")
	rs.Spec.ReadDataSubset = "100%"
	if err := kube.Create(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	if rs = finishedRestore(t, kube, "default", rs.Name); rs.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("the restore after the killed prune ended %s: %+v", rs.Status.Phase, rs.Status.Conditions)
	}
	if got := repoFiles(t, filepath.Join(repoDir, "locks")); slices.Contains(got, locks[0]) {
		t.Errorf("the dead prune pod's lock %s is still there after a restore", locks[0])
	}

	// The next backup succeeds, and so does the next prune.
	t0 := time.Now()
	latest := retentionRun(t, kube, bc, start.Add(3*time.Second))
	t.Logf("the backup after the killed prune took %s", time.Since(t0).Round(time.Second))
	res = stashplaneJSON[pruneResult](t, cluster.KubeconfigPath(), "prune", "app", "-n", "default", "-o", "json")
	if !res.Succeeded {
		t.Errorf("stashplane prune after the killed one: %+v, want success", res)
	}
	// Between them, the killed prune and this one freed the 24 MiB only
	// the removed Snapshot held (how much each did depends on where the
	// first was killed).
	if size := dirSize(t, repoDir); size > 36<<20 {
		t.Errorf("the restic repository holds %d bytes after the prune, want the 24 MiB only the removed Snapshot held gone", size)
	}
	t.Logf("the prune after the killed one freed %s", res.Freed)
	if diff := cmp.Diff(resticIDsOf(t, kube, []string{latest}), resticIDs(t, repoDir)); diff != "" {
		t.Errorf("restic snapshots after the prune: -of the kept Snapshot +in the repository:\n%s", diff)
	}
	hostRestic(t, repoDir, "check", "--read-data")
}

// prunePod waits for the pod of the app Repository's prune Job to run.
func prunePod(t *testing.T, kube client.Client) string {
	t.Helper()
	var name string
	poll(t, time.Minute, "the prune Job's pod did not run", func(ctx context.Context) (bool, error) {
		pods := &corev1.PodList{}
		if err := kube.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{"job-name": naming.PruneJob("app")}); err != nil {
			return false, nil
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				name = p.Name
				return true, nil
			}
		}
		return false, nil
	})
	return name
}

// podProcessGroup finds the process group of the pod's container: the
// process node runs it as a local process with HOSTNAME set to the pod's
// name, in a group of its own that restic, its child, shares.
func podProcessGroup(t *testing.T, pod string) int {
	t.Helper()
	var pgid int
	poll(t, 30*time.Second, "the prune pod's process was not found", func(context.Context) (bool, error) {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return false, err
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			if err != nil || !bytes.Contains(env, []byte("\x00HOSTNAME="+pod+"\x00")) && !bytes.HasPrefix(env, []byte("HOSTNAME="+pod+"\x00")) {
				continue
			}
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if !bytes.Contains(cmdline, []byte("prune-agent")) {
				continue
			}
			if pgid, err = syscall.Getpgid(pid); err != nil {
				return false, nil
			}
			return true, nil
		}
		return false, nil
	})
	return pgid
}

// killHalfWay lets the process group run in slices of 20 ms, stopped in
// between, until restic has taken its lock and added or removed a file of
// the restic repository's data or index, and then kills the group with
// SIGKILL, so restic has no chance to remove its lock.
func killHalfWay(t *testing.T, pgid int, repoDir string, before []string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
			t.Fatalf("the prune ended before it changed the restic repository: %v", err)
		}
		now := repoFiles(t, repoDir)
		locked := len(repoFiles(t, filepath.Join(repoDir, "locks"))) > 0
		if changed := changedData(before, now); locked && changed != "" {
			if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			t.Logf("killed the prune after it %s", changed)
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			t.Fatal("the prune did not change the restic repository in 2 minutes")
		}
		if err := syscall.Kill(-pgid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		// A small repository's prune on a fast machine changes it and
		// ends within tens of milliseconds: look again soon.
		time.Sleep(2 * time.Millisecond)
	}
}

// changedData says which data or index file was added or removed between
// two listings of a restic repository, or "".
func changedData(before, now []string) string {
	for _, f := range now {
		if (strings.HasPrefix(f, "data/") || strings.HasPrefix(f, "index/")) && !slices.Contains(before, f) {
			return "wrote " + f
		}
	}
	for _, f := range before {
		if (strings.HasPrefix(f, "data/") || strings.HasPrefix(f, "index/")) && !slices.Contains(now, f) {
			return "removed " + f
		}
	}
	return ""
}

// writeHalved writes 48 MiB of random files of 384 KiB each (one restic
// blob a file) into dir and returns what removes every other one: the
// blobs kept and those removed then share every pack.
func writeHalved(t *testing.T, dir string) func() {
	t.Helper()
	const files = 128
	for i := range files {
		writeRandom(t, filepath.Join(dir, fmt.Sprintf("part-%03d.bin", i)), 384<<10)
	}
	return func() {
		for i := 1; i < files; i += 2 {
			if err := os.Remove(filepath.Join(dir, fmt.Sprintf("part-%03d.bin", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// dirSize sums the sizes of the files under dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, f := range repoFiles(t, dir) {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// repoFiles lists the files under dir, relative to it.
func repoFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("cannot list %s: %v", dir, err)
	}
	return out
}

func jsonDecode(b []byte, v any) error {
	i := bytes.IndexByte(b, '{')
	if i < 0 {
		return fmt.Errorf("no JSON object in %q", b)
	}
	return json.NewDecoder(bytes.NewReader(b[i:])).Decode(v)
}
