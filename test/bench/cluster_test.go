package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/stdr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stashplane/stashplane/apis"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/devcluster"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/sessionjob"
	stashpkg "github.com/stashplane/stashplane/package"
)

// The helpers below set up what the session benchmark backs up on a dev
// cluster: the provider running beside it, a local BackupStorage on a host
// directory, workloads whose volume is a host directory, and
// BackupConfigurations that protect them.

const benchNamespace = "default"

// startProvider starts a dev cluster with Stashplane's CRDs and built-in
// addons and runs the provider in this process until the benchmark ends.
// The provider's log goes to a file, named on stdout, so that it does not
// drown the figures.
// startCluster starts a dev cluster with Stashplane's CRDs and returns a
// client whose requests are bounded by cfg's QPS and burst (the client's
// defaults when cfg is zero).
// clusterConfig reaches the benchmark's cluster, for what the
// controller-runtime client cannot read (pod logs).
var clusterConfig *rest.Config

// phasesLine is the "... phases" log line (the agent's time per step) of
// the Job pods of a session, or why it cannot be read.
func phasesLine(ctx context.Context, kube client.Client, session string) string {
	pods := &corev1.PodList{}
	if err := kube.List(ctx, pods, client.InNamespace(benchNamespace), client.MatchingLabels{"stashplane.io/session": session}); err != nil || len(pods.Items) == 0 {
		return fmt.Sprintf("(no pod of session %s: %v)", session, err)
	}
	cs, err := kubernetes.NewForConfig(clusterConfig)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			out, err := sessionjob.PodLogs{CS: cs}.Tail(ctx, p.Namespace, p.Name, c.Name, 20)
			if err != nil {
				lines = append(lines, err.Error())
				continue
			}
			for _, l := range strings.Split(out, "\n") {
				if i := strings.Index(l, " phases\""); i >= 0 {
					lines = append(lines, strings.TrimSpace(l[i+len(" phases\""):]))
				}
				// What restic and the hasher did: files restic found
				// unchanged, hashes taken over.
				for _, what := range []string{"\"took the hashes", "\"backed up\""} {
					if i := strings.Index(l, what); i >= 0 {
						lines = append(lines, strings.TrimSpace(l[i:]))
					}
				}
			}
		}
	}
	return strings.Join(lines, "; ")
}

func startCluster(b *testing.B, limits rest.Config) (*devcluster.Cluster, client.WithWatch) {
	b.Helper()
	crds, err := stashpkg.CRDs()
	if err != nil {
		b.Fatal(err)
	}
	c := devclustertest.Start(b, crds...)
	s, err := apis.Scheme()
	if err != nil {
		b.Fatal(err)
	}
	cfg := c.Config()
	clusterConfig = rest.CopyConfig(cfg)
	if limits.QPS > 0 {
		cfg.QPS, cfg.Burst = limits.QPS, limits.Burst
	}
	kube, err := client.NewWithWatch(cfg, client.Options{Scheme: s})
	if err != nil {
		b.Fatal(err)
	}
	return c, kube
}

func startProvider(b *testing.B) client.WithWatch {
	b.Helper()
	c, kube := startCluster(b, rest.Config{})
	logFile, err := os.CreateTemp("", "stashplane-bench-provider-*.log")
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("provider log: %s\n", logFile.Name())
	ctrl.SetLogger(stdr.New(log.New(logFile, "", log.Ltime|log.Lmicroseconds)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- provider.Run(ctx, c.Config(), provider.Options{
			Log: ctrl.Log.WithName("bench"), MetricsAddress: "0", HealthAddress: "0",
			PollInterval: 5 * time.Second, SkipControllerNameValidation: true,
		})
	}()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("provider stopped with an error: %v", err)
		}
		_ = logFile.Close()
	})
	if err := provider.InstallBuiltins(context.Background(), kube); err != nil {
		b.Fatal(err)
	}
	return kube
}

// createBenchObjects creates the local BackupStorage "local" on
// storageDir, the repositories' encryption Secret, and objs.
func createBenchObjects(b *testing.B, kube client.Client, storageDir string, objs ...client.Object) {
	b.Helper()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: benchNamespace},
		Data: map[string][]byte{"RESTIC_PASSWORD": []byte(benchPassword)}}
	for _, o := range append([]client.Object{benchStorage("local", storageDir), secret}, objs...) {
		if err := kube.Create(context.Background(), o); err != nil {
			b.Fatal(err)
		}
	}
}

// benchStorage is a local BackupStorage on a host directory, under
// backups/ as the agent and the accessor see it.
func benchStorage(name, hostDir string) *storagev1alpha1.BackupStorage {
	return &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace},
		Spec: storagev1alpha1.BackupStorageSpec{
			Storage: storagev1alpha1.Backend{
				Provider: storagev1alpha1.ProviderLocal,
				Local: &storagev1alpha1.LocalSpec{
					VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}},
					MountPath:    "/stashplane/storage",
					SubPath:      "backups",
				},
			},
			DeletionPolicy: storagev1alpha1.DeletionPolicyWipeOut,
		},
	}
}

// workload is a Deployment with no replicas whose pod template mounts a
// host directory at mountPath: the backup Job mounts the same volume.
func workload(name, hostDir, mountPath string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{
					Name: "app", Image: "busybox", Command: []string{"sleep", "3600"},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: mountPath}},
				}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}}},
			}},
		},
	}
}

// protect is a BackupConfiguration of one session, "bench", that backs the
// Deployment's path up with the workload-addon into repository repo
// (directory default/<repo>) of the storage. Its schedule is far away: the
// benchmark starts sessions itself, after the configuration's own first
// one.
func protect(name, deployment, storage, repo, path string) *corev1alpha1.BackupConfiguration {
	params, _ := json.Marshal(map[string]any{"paths": []string{path}})
	return &corev1alpha1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target:   &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: deployment},
			Backends: []corev1alpha1.BackendReference{{Name: "local", StorageRef: &storagev1alpha1.ObjectReference{Name: storage}}},
			Sessions: []corev1alpha1.Session{{
				Name:      benchSession,
				Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "0 2 1 1 *"},
				Addon: &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{
					Name: "logical-backup", Params: &runtime.RawExtension{Raw: params},
				}}},
				Repositories: []corev1alpha1.RepositoryInfo{{
					Name: repo, Backend: "local", Directory: benchNamespace + "/" + repo,
					EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"},
				}},
			}},
		},
	}
}

const benchSession = "bench"

// waitFor polls f every 250 ms until it says done, fails or the timeout
// passes.
func waitFor(b *testing.B, timeout time.Duration, what string, f func(ctx context.Context) (bool, error)) {
	b.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, f); err != nil {
		b.Fatalf("%s: %v", what, err)
	}
}

// resticTimes is restic's own account of one backup, as the snapshot in
// the repository records it: when the backup started and ended, and how
// much it read.
type resticTimes struct {
	Start, End time.Time
	Bytes      uint64
}

func (t resticTimes) duration() time.Duration { return t.End.Sub(t.Start) }

// snapshotTimes asks plain restic on the host for the summary of snapshot
// id in the repository at dir. restic keeps the start and end of a backup
// to the nanosecond there, where the Snapshot's status rounds to seconds.
func snapshotTimes(b *testing.B, bin, dir, id string) resticTimes {
	b.Helper()
	cmd := exec.Command(bin, "-r", dir, "--no-cache", "snapshots", "--json", id)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+benchPassword)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("cannot list restic snapshot %q in %s: %v\n%s", id, dir, err, stderr.String())
	}
	var snaps []struct {
		Summary *struct {
			BackupStart         time.Time `json:"backup_start"`
			BackupEnd           time.Time `json:"backup_end"`
			TotalBytesProcessed uint64    `json:"total_bytes_processed"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(out, &snaps); err != nil {
		b.Fatalf("cannot decode restic snapshot %q: %v", id, err)
	}
	if len(snaps) != 1 || snaps[0].Summary == nil {
		b.Fatalf("restic snapshot %q in %s has no summary: %s", id, dir, out)
	}
	s := snaps[0].Summary
	return resticTimes{Start: s.BackupStart, End: s.BackupEnd, Bytes: s.TotalBytesProcessed}
}

// resticDir is the host directory of the restic repository that the
// session's dump component writes for repository repo.
func resticDir(storageDir, repo string) string {
	return filepath.Join(storageDir, "backups", layout.ResticPrefix(benchNamespace+"/"+repo, benchSession, storagev1alpha1.ComponentDump))
}
