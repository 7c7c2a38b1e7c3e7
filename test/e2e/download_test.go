package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
)

// `stashplane download` copies a Snapshot's files to this machine through
// a Job in the cluster: the files equal the backed-up ones, the command
// prints its progress and result (-o yaml), and its Job is gone
// afterwards. A directory that is not empty, and a component the Snapshot
// does not have, are refused before any Job.
func TestDownload(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defer dumpOnFailure(t, kube, &batchv1.JobList{})
	_, data := seedAppBackup(t, kube, 80, 31)
	snap := firstSnapshot(t, kube)
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	download := func(args ...string) (string, string, error) {
		cmd := exec.Command(filepath.Join(bin, "stashplane"), append([]string{"download", snap, "-n", "default"}, args...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.KubeconfigPath())
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	to := filepath.Join(t.TempDir(), "download")
	out, progress, err := download("--to", to, "-o", "yaml")
	if err != nil {
		t.Fatalf("stashplane download: %v\n%s%s", err, out, progress)
	}
	t.Logf("stashplane download:\n%s%s", progress, out)
	if diff := cmp.Diff(digest(t, data), digest(t, filepath.Join(to, "var", "lib", "app"))); diff != "" {
		t.Errorf("downloaded files: -backed up +downloaded:\n%s", diff)
	}
	res := map[string]any{}
	if err := yaml.Unmarshal([]byte(out), &res); err != nil || res["files"] != float64(80) || res["component"] != storagev1alpha1.ComponentDump {
		t.Errorf("-o yaml: %v, %v; want 80 files of component %s", res, err, storagev1alpha1.ComponentDump)
	}
	if !strings.Contains(progress, "waiting for download job") || !strings.Contains(progress, "received ") {
		t.Errorf("progress on standard error: %q", progress)
	}
	poll(t, time.Minute, "the download job was not removed", func(ctx context.Context) (bool, error) {
		jobs := &batchv1.JobList{}
		if err := kube.List(ctx, jobs, client.InNamespace("default"), client.HasLabels{"storage.stashplane.io/download-of"}); err != nil {
			return false, nil
		}
		return len(jobs.Items) == 0, nil
	})

	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"NotEmpty":    {args: []string{"--to", to}, want: "it is not empty"},
		"NoComponent": {args: []string{"--to", filepath.Join(t.TempDir(), "x"), "--component", "dump-pod-9"}, want: `has no component "dump-pod-9"`},
	} {
		_, msg, err := download(tc.args...)
		if err == nil || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %v, %q; want a refusal saying %q", name, err, msg, tc.want)
		}
	}
	jobs := &batchv1.JobList{}
	if err := kube.List(ctx, jobs, client.InNamespace("default"), client.HasLabels{"storage.stashplane.io/download-of"}); err != nil || len(jobs.Items) != 0 {
		t.Errorf("refused downloads made jobs: %d, %v", len(jobs.Items), err)
	}
}
