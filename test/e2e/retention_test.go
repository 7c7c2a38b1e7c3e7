package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/retention"
	"github.com/stashplane/stashplane/internal/sessionjob"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
	"github.com/stashplane/stashplane/internal/trigger"
)

// retentionRun starts a run of the app's nightly session and waits until it
// succeeded and its retention was applied. It returns the run's Snapshot.
func retentionRun(t *testing.T, kube client.Client, bc *corev1alpha1.BackupConfiguration, at time.Time) string {
	t.Helper()
	bs, err := trigger.Create(context.Background(), kube, bc, "nightly", at)
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, fmt.Sprintf("run %s did not succeed with its retention applied", bs.Name), func(ctx context.Context) (bool, error) {
		got := &corev1alpha1.BackupSession{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(bs), got); err != nil {
			return false, nil
		}
		if got.Status.Phase == corev1alpha1.BackupSessionFailed {
			return false, fmt.Errorf("run %s failed", bs.Name)
		}
		return got.Status.Phase == corev1alpha1.BackupSessionSucceeded &&
			got.GetCondition(corev1alpha1.TypeRetentionPolicyExecutorEnsured).Status == corev1.ConditionTrue, nil
	})
	return "app-" + bs.Name
}

// appSnapshots lists the app Repository's Snapshots by name.
func appSnapshots(t *testing.T, kube client.Client) []string {
	t.Helper()
	list := &storagev1alpha1.SnapshotList{}
	if err := kube.List(context.Background(), list, client.InNamespace("default"), client.MatchingLabels{storagev1alpha1.LabelRepository: "app"}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		if s.DeletionTimestamp == nil {
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return out
}

func sortedNames(names ...string) []string {
	sort.Strings(names)
	return names
}

// markVerified gives a Snapshot the verdict Verified, as a verification
// session does (a merge patch of the verdict alone).
func markVerified(t *testing.T, kube client.Client, name string) {
	t.Helper()
	s := &storagev1alpha1.Snapshot{}
	if err := kube.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, s); err != nil {
		t.Fatal(err)
	}
	orig := s.DeepCopy()
	s.Status.VerificationStatus = storagev1alpha1.SnapshotVerified
	if err := kube.Status().Patch(context.Background(), s, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
}

// resticIDs lists the restic snapshots of the app's dump component.
func resticIDs(t *testing.T, repoDir string) []string {
	t.Helper()
	var snaps []resticSnapshot
	if err := json.Unmarshal(hostRestic(t, repoDir, "snapshots", "--json"), &snaps); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range snaps {
		out = append(out, s.ID)
	}
	sort.Strings(out)
	return out
}

// resticIDsOf lists the restic snapshots the Snapshots recorded.
func resticIDsOf(t *testing.T, kube client.Client, names []string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		s := &storagev1alpha1.Snapshot{}
		if err := kube.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: n}, s); err != nil {
			t.Fatal(err)
		}
		for _, st := range s.Status.Components[storagev1alpha1.ComponentDump].ResticStats {
			out = append(out, st.Summary.ID)
		}
	}
	sort.Strings(out)
	return out
}

// stashplaneJSON runs the stashplane CLI against the cluster and decodes
// what it prints.
func stashplaneJSON[T any](t *testing.T, kubeconfig string, args ...string) T {
	t.Helper()
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "stashplane"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var v T
	if err != nil {
		t.Fatalf("stashplane %v: %v\n%s%s", args, err, out, stderr.String())
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("cannot decode the output of stashplane %v: %v\n%s", args, err, out)
	}
	return v
}

// pruneResult is what `stashplane prune -o json` prints.
type pruneResult struct {
	Succeeded     bool         `json:"succeeded"`
	Freed         string       `json:"freed"`
	LastPruneTime *metav1.Time `json:"lastPruneTime"`
	Message       string       `json:"message"`
}

// appData is the host directory the app Deployment's volume holds.
func appData(t *testing.T, kube client.Client) string {
	t.Helper()
	app := &appsv1.Deployment{}
	if err := kube.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "app"}, app); err != nil {
		t.Fatal(err)
	}
	return app.Spec.Template.Spec.Volumes[0].HostPath.Path
}

func writeRandom(t *testing.T, name string, n int) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startRetention creates the app Deployment over generated files, the
// repository password, objs (the storage and what it needs) and the
// configuration bc, and waits until bc and its Repository are Ready and
// the first backup, which a Ready configuration starts at once, ended with
// its retention applied: the runs after it are the test's, started with
// trigger. (A paused configuration would skip them too.)
func startRetention(t *testing.T, kube client.Client, bc *corev1alpha1.BackupConfiguration, objs ...client.Object) {
	t.Helper()
	ctx := context.Background()
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	generate(t, data, 50, 11)
	app := deployment("app")
	app.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/app"}}
	app.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: data}}}}
	objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}}, app, bc)
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, 2*time.Minute, "the configuration did not become Ready", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(bc), bc); err != nil {
			return false, nil
		}
		return bc.Status.Phase == corev1alpha1.BackupInvokerReady && len(bc.Status.Repositories) == 1 &&
			bc.Status.Repositories[0].Phase == storagev1alpha1.RepositoryReady, nil
	})
	poll(t, 2*time.Minute, "the first backup did not end with its retention applied", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace(bc.Namespace)); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		for _, s := range list.Items {
			if s.Status.Phase != corev1alpha1.BackupSessionSucceeded || s.GetCondition(corev1alpha1.TypeRetentionPolicyExecutorEnsured).Status != corev1.ConditionTrue {
				return false, nil
			}
		}
		return true, nil
	})
}

// defaultKeepLast creates keep-N, the default RetentionPolicy of the
// default namespace, keeping the last n Succeeded Snapshots.
func defaultKeepLast(t *testing.T, kube client.Client, n int32) {
	t.Helper()
	if err := kube.Create(context.Background(), &storagev1alpha1.RetentionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("keep-%d", n), Namespace: "default"},
		Spec: storagev1alpha1.RetentionPolicySpec{Default: true,
			SuccessfulSnapshots: &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To(n)}},
	}); err != nil {
		t.Fatal(err)
	}
}

// The namespace's default RetentionPolicy keeps the last two Snapshots of a
// WipeOut Repository over five runs started with trigger: the newest
// Verified Snapshot stays until a newer one is Verified; removed Snapshots
// take their restic snapshots, records and manifests with them; restic's
// check passes. Deleting the configuration then keeps the Repository, the
// Snapshots and the data.
func TestRetentionLastTwo(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defaultKeepLast(t, kube, 2)
	storageDir := storageDir(t)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Sessions[0].Repositories[0].DeletionPolicy = corev1alpha1.RepositoryDeletionPolicyWipeOut
	startRetention(t, kube, bc, localStorage("shared", "default", storageDir, nil))
	start := time.Now()
	run := func(i int) string { return retentionRun(t, kube, bc, start.Add(time.Duration(i)*time.Second)) }

	// The newest Verified Snapshot stays while last: 2 would remove it.
	// Only the first run holds a file of random data, so pruning once its
	// Snapshot is gone frees it.
	once := filepath.Join(appData(t, kube), "once.bin")
	writeRandom(t, once, 1<<20)
	s1 := run(1)
	if err := os.Remove(once); err != nil {
		t.Fatal(err)
	}
	markVerified(t, kube, s1)
	s2 := run(2)
	s3 := run(3)
	if diff := cmp.Diff(sortedNames(s1, s2, s3), appSnapshots(t, kube)); diff != "" {
		t.Errorf("after three runs with the first Verified: -want +got Snapshots:\n%s", diff)
	}
	// A newer Verified Snapshot releases the older one.
	markVerified(t, kube, s3)
	s4 := run(4)
	markVerified(t, kube, s4)
	s5 := run(5)
	kept := appSnapshots(t, kube)
	if diff := cmp.Diff(sortedNames(s4, s5), kept); diff != "" {
		t.Fatalf("after five runs: -want +got Snapshots:\n%s", diff)
	}

	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	if diff := cmp.Diff(resticIDsOf(t, kube, kept), resticIDs(t, repoDir)); diff != "" {
		t.Errorf("restic snapshots: -of the kept Snapshots +in the repository:\n%s", diff)
	}
	hostRestic(t, repoDir, "check")
	for _, gone := range []string{s1, s2, s3} {
		for _, key := range []string{layout.SnapshotKey("default/app", gone), layout.ManifestKey("default/app", gone, storagev1alpha1.ComponentDump)} {
			if _, err := os.Stat(filepath.Join(storageDir, "backups", key)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s of removed snapshot %s is still in the storage (%v)", key, gone, err)
			}
		}
	}
	for _, s := range kept {
		for _, key := range []string{layout.SnapshotKey("default/app", s), layout.ManifestKey("default/app", s, storagev1alpha1.ComponentDump)} {
			if _, err := os.Stat(filepath.Join(storageDir, "backups", key)); err != nil {
				t.Errorf("%s of kept snapshot %s is not in the storage: %v", key, s, err)
			}
		}
		snap := &storagev1alpha1.Snapshot{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: s}, snap); err != nil {
			t.Fatal(err)
		}
		if snap.Spec.DeletionPolicy != storagev1alpha1.DeletionPolicyWipeOut {
			t.Errorf("snapshot %s has deletionPolicy %q, want its Repository's WipeOut", s, snap.Spec.DeletionPolicy)
		}
	}

	// The dry run names the rule that keeps each Snapshot, and changes
	// nothing.
	want := []retention.RepositoryPlan{{Session: "nightly", Repository: "app", Policy: &storagev1alpha1.ObjectReference{Namespace: "default", Name: "keep-2"},
		Decisions: []retention.Decision{{Name: s5, Keep: true, Rules: []string{"last"}}, {Name: s4, Keep: true, Rules: []string{"newest Verified"}}}}}
	if diff := cmp.Diff(want, stashplaneJSON[[]retention.RepositoryPlan](t, cluster.KubeconfigPath(), "retention", "plan", "app-backup", "-n", "default", "-o", "json")); diff != "" {
		t.Errorf("stashplane retention plan: -want +got:\n%s", diff)
	}
	if diff := cmp.Diff(kept, appSnapshots(t, kube)); diff != "" {
		t.Errorf("Snapshots after the dry run: -want +got:\n%s", diff)
	}

	// A prune frees the data only the removed Snapshots held; what the
	// kept ones reference stays and restic's check passes.
	res := stashplaneJSON[pruneResult](t, cluster.KubeconfigPath(), "prune", "app", "-n", "default", "-o", "json")
	if freed, err := storagev1alpha1.ParseSize(res.Freed); !res.Succeeded || err != nil || freed < 512<<10 || res.LastPruneTime == nil {
		t.Errorf("stashplane prune app: %+v, want success freeing the 1 MiB only the first run held", res)
	}
	if diff := cmp.Diff(resticIDsOf(t, kube, kept), resticIDs(t, repoDir)); diff != "" {
		t.Errorf("restic snapshots after the prune: -want +got:\n%s", diff)
	}
	hostRestic(t, repoDir, "check", "--read-data")
	// The verdict s4 got before the prune is shown as such.
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "stashplane"), "snapshots", "app", "-n", "default")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.KubeconfigPath())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("stashplane snapshots: %v\n%s", err, out)
	}
	verdicts := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 2 {
			verdicts[f[0]] = f[2]
		}
	}
	if diff := cmp.Diff(map[string]string{s4: "Verified*", s5: "<none>"}, map[string]string{s4: verdicts[s4], s5: verdicts[s5]}); diff != "" {
		t.Errorf("verdicts in stashplane snapshots after the prune: -want +got:\n%s\n%s", diff, out)
	}

	// Deleting the configuration keeps the Repository, its Snapshots and
	// its data, while what it owns (its CronJob) is collected.
	if err := kube.Delete(ctx, bc); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the configuration's CronJob was not collected", func(ctx context.Context) (bool, error) {
		list := &batchv1.CronJobList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil {
			return false, nil
		}
		err := kube.Get(ctx, client.ObjectKeyFromObject(bc), &corev1alpha1.BackupConfiguration{})
		return len(list.Items) == 0 && kerrors.IsNotFound(err), nil
	})
	time.Sleep(5 * time.Second) // give the garbage collector time to get things wrong
	repo := &storagev1alpha1.Repository{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app"}, repo); err != nil || repo.DeletionTimestamp != nil {
		t.Fatalf("the Repository did not outlive its configuration: %v, deletion %v", err, repo.DeletionTimestamp)
	}
	if diff := cmp.Diff(kept, appSnapshots(t, kube)); diff != "" {
		t.Errorf("Snapshots after the configuration was deleted: -want +got:\n%s", diff)
	}
	if diff := cmp.Diff(resticIDsOf(t, kube, kept), resticIDs(t, repoDir)); diff != "" {
		t.Errorf("restic snapshots after the configuration was deleted: -want +got:\n%s", diff)
	}
}

// On an S3 storage, a policy the backend names (last: 1) removes the older
// Snapshots of three runs, forgetting their restic snapshots in the bucket
// and removing their records; restic's check passes.
func TestRetentionS3(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "backups")
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Backends[0].RetentionPolicy = &storagev1alpha1.ObjectReference{Name: "keep-1"}
	startRetention(t, kube, bc,
		&storagev1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "keep-1", Namespace: "default"},
			Spec: storagev1alpha1.RetentionPolicySpec{SuccessfulSnapshots: &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](1)}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: "default"}, Data: map[string][]byte{
			storagev1alpha1.SecretKeyAWSAccessKeyID: []byte(s3.AccessKey), storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(s3.SecretKey),
		}},
		s3Storage("shared", s3.Endpoint, "backups"))
	start := time.Now()
	var runs []string
	for i := 1; i <= 3; i++ {
		runs = append(runs, retentionRun(t, kube, bc, start.Add(time.Duration(i)*time.Second)))
	}
	if diff := cmp.Diff([]string{runs[2]}, appSnapshots(t, kube)); diff != "" {
		t.Fatalf("after three runs: -want +got Snapshots:\n%s", diff)
	}
	// versitygw keeps a bucket as a directory.
	root := filepath.Join(s3.Dir, "backups", "stashplane")
	repoDir := filepath.Join(root, layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	if diff := cmp.Diff(resticIDsOf(t, kube, runs[2:]), resticIDs(t, repoDir)); diff != "" {
		t.Errorf("restic snapshots: -of the kept Snapshot +in the bucket:\n%s", diff)
	}
	hostRestic(t, repoDir, "check")
	for _, gone := range runs[:2] {
		if _, err := os.Stat(filepath.Join(root, layout.SnapshotKey("default/app", gone))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the record of removed snapshot %s is still in the bucket (%v)", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, layout.SnapshotKey("default/app", runs[2]))); err != nil {
		t.Errorf("the record of the kept snapshot is not in the bucket: %v", err)
	}
	bs := &corev1alpha1.BackupSession{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: strings.TrimPrefix(runs[2], "app-")}, bs); err != nil {
		t.Fatal(err)
	}
	want := []corev1alpha1.RetentionPolicyApplyStatus{{Ref: storagev1alpha1.ObjectReference{Namespace: "default", Name: "keep-1"}, Repository: "app",
		Phase: corev1alpha1.RetentionPolicyApplied, Removed: []corev1alpha1.RetentionRemoval{{Snapshot: runs[1], Rule: "successfulSnapshots of retentionpolicy default/keep-1"}}}}
	if diff := cmp.Diff(want, bs.Status.RetentionPolicy); diff != "" {
		t.Errorf("status.retentionPolicy of the last run: -want +got:\n%s", diff)
	}
}

// A backup that starts while a prune of its Repository runs waits, Pending
// with WaitingForPrune, takes no Snapshot meanwhile, and succeeds once the
// prune has ended. The prune is stood in for by a Job that sleeps under the
// prune Job's name and label.
func TestBackupWaitsForPrune(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	prune := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: naming.PruneJob("app"), Namespace: "default", Labels: map[string]string{plan.LabelPruneOf: "app"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{busybox("prune", "sleep 600")}}}},
	}
	// Labelled as the prune Jobs Stashplane makes are, for the provider's
	// cache to hold it.
	sessionjob.Mark(prune)
	if err := kube.Create(ctx, prune); err != nil {
		t.Fatal(err)
	}
	seedAppBackup(t, kube, 20, 5)
	var name string
	poll(t, 2*time.Minute, "the first backup did not wait for the prune", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		bs := list.Items[0]
		name = bs.Name
		c := bs.GetCondition(corev1alpha1.TypeSnapshotsEnsured)
		return bs.Status.Phase == corev1alpha1.BackupSessionPending && c.Reason == corev1alpha1.ReasonWaitingForPrune, nil
	})
	time.Sleep(5 * time.Second)
	if p := sessionPhase(ctx, kube, name); p != corev1alpha1.BackupSessionPending {
		t.Fatalf("the backup is %s while the prune runs, want Pending", p)
	}
	if got := appSnapshots(t, kube); len(got) != 0 {
		t.Fatalf("the waiting backup made Snapshots %v", got)
	}
	if err := kube.Delete(ctx, prune, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the backup did not succeed after the prune", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, name) == corev1alpha1.BackupSessionSucceeded, nil
	})
}
