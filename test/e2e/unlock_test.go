package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/layout"
)

// A prune killed half way leaves its exclusive lock; `stashplane unlock`
// removes it through a Job in the cluster (the CLI holds no storage
// credential), and the restic repository passes restic's check after.
func TestUnlockAfterKilledPrune(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defaultKeepLast(t, kube, 1)
	storageDir := storageDir(t)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	startRetention(t, kube, bc, localStorage("shared", "default", storageDir, nil))
	removeHalf := writeHalved(t, appData(t, kube))
	start := time.Now()
	retentionRun(t, kube, bc, start.Add(time.Second))
	removeHalf()
	retentionRun(t, kube, bc, start.Add(2*time.Second))
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	before := repoFiles(t, repoDir)

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
	killHalfWay(t, podProcessGroup(t, pod), repoDir, before)
	_ = cli.Wait()
	locks := repoFiles(t, filepath.Join(repoDir, "locks"))
	if len(locks) != 1 {
		t.Fatalf("the killed prune left locks %v, want its exclusive lock", locks)
	}
	// unlock keeps the lock of a prune pod the API server still shows
	// running; on a loaded node its status may lag the kill.
	poll(t, time.Minute, "the killed prune pod was not seen finished", func(ctx context.Context) (bool, error) {
		p := &corev1.Pod{}
		err := kube.Get(ctx, types.NamespacedName{Namespace: "default", Name: pod}, p)
		if kerrors.IsNotFound(err) {
			return true, nil
		}
		return err == nil && (p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded), nil
	})

	type unlockResult struct {
		Job       string `json:"job"`
		Succeeded bool   `json:"succeeded"`
		Message   string `json:"message"`
	}
	t0 := time.Now()
	res := stashplaneJSON[unlockResult](t, cluster.KubeconfigPath(), "unlock", "app", "-n", "default", "-o", "json")
	t.Logf("stashplane unlock took %s", time.Since(t0).Round(time.Second))
	if !res.Succeeded || res.Job != "app-unlock" {
		t.Fatalf("stashplane unlock: %+v, want job app-unlock Succeeded", res)
	}
	if got := repoFiles(t, filepath.Join(repoDir, "locks")); len(got) != 0 {
		t.Errorf("locks left after stashplane unlock: %v, want none", got)
	}
	hostRestic(t, repoDir, "--no-lock", "check")
}
