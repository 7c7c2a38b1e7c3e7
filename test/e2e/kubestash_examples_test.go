package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
	"github.com/stashplane/stashplane/internal/verify"
)

// kubestashExample reads a manifest of examples/kubestash, written with
// KubeStash's API group, changing only the group and, through change, the
// host paths, the S3 server and its keys, which are the test's.
func kubestashExample(t *testing.T, file string, change func(*unstructured.Unstructured)) []*unstructured.Unstructured {
	t.Helper()
	return example(t, filepath.Join("kubestash", file), func(u *unstructured.Unstructured) {
		if g := u.GroupVersionKind().Group; strings.HasSuffix(g, ".kubestash.com") {
			gvk := u.GroupVersionKind()
			gvk.Group = strings.TrimSuffix(g, "kubestash.com") + "stashplane.io"
			u.SetGroupVersionKind(gvk)
		}
		if change != nil {
			change(u)
		}
	})
}

// KubeStash's guides as examples/kubestash writes them, with only the API
// group changed: a Deployment, a StatefulSet, a DaemonSet and a claim are
// backed up to local and S3 storage (KubeStash's directories with a leading
// slash, comma-separated params, targetVolumes.volumeMounts, retention
// references, a repository deletionPolicy Retain, a backend that names no
// storage and gets the default one); the Deployment's backup is verified by
// a RestoreOnly BackupVerifier restoring with pvc-addon, without restating
// the backup's path, into a scratch claim of namespace verify; then the
// data is wiped and RestoreSessions put every backup back.
func TestKubeStashExamples(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config(), "demo", "verify")
	for _, l := range []client.ObjectList{&corev1alpha1.BackupConfigurationList{}, &corev1alpha1.BackupSessionList{}, &storagev1alpha1.SnapshotList{},
		&corev1alpha1.BackupVerificationSessionList{}, &corev1alpha1.RestoreSessionList{}, &batchv1.JobList{}} {
		defer dumpOnFailure(t, kube, l)
	}
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "kubestash-demo")
	storageDir, nodeDir := storageDir(t), t.TempDir()
	ours := func(u *unstructured.Unstructured) {
		switch u.GetKind() + "/" + u.GetName() {
		case "BackupStorage/local-storage":
			_ = unstructured.SetNestedField(u.Object, storageDir, "spec", "storage", "local", "hostPath", "path")
		case "BackupStorage/s3-storage":
			_ = unstructured.SetNestedField(u.Object, s3.Endpoint, "spec", "storage", "s3", "endpoint")
		case "Secret/s3-secret":
			_ = unstructured.SetNestedStringMap(u.Object, map[string]string{
				storagev1alpha1.SecretKeyAWSAccessKeyID: s3.AccessKey, storagev1alpha1.SecretKeyAWSSecretAccessKey: s3.SecretKey}, "stringData")
		case "DaemonSet/node-agent":
			vols, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "volumes")
			_ = unstructured.SetNestedField(vols[0].(map[string]any), nodeDir, "hostPath", "path")
			_ = unstructured.SetNestedSlice(u.Object, vols, "spec", "template", "spec", "volumes")
		}
	}
	apply := func(file string, kinds func(kind string) bool) {
		t.Helper()
		for _, o := range kubestashExample(t, file, ours) {
			if kinds(o.GetKind()) {
				if err := kube.Create(ctx, o); err != nil {
					t.Fatalf("%s: %s %s: %v", file, o.GetKind(), o.GetName(), err)
				}
			}
		}
	}
	all := func(string) bool { return true }
	workloads := func(k string) bool { return k != "BackupConfiguration" }
	configurations := func(k string) bool { return k == "BackupConfiguration" }
	files := []string{"deployment.yaml", "statefulset.yaml", "daemonset.yaml", "pvc.yaml"}
	for _, f := range []string{"namespaces.yaml", "storage.yaml", "s3-storage.yaml"} {
		apply(f, all)
	}
	for _, f := range files {
		apply(f, workloads)
	}

	// What each workload writes, where the test finds it on the host.
	want := map[string]string{
		filepath.Join(claimDirIn(t, kube, "demo", "web-data"), "index.html"):            "served by web\n",
		filepath.Join(claimDirIn(t, kube, "demo", "source-data-db-0"), "table.dat"):     "rows of db-0\n",
		filepath.Join(claimDirIn(t, kube, "demo", "source-data-db-1"), "table.dat"):     "rows of db-1\n",
		filepath.Join(nodeDir, "state.txt"):                                             "state of this node\n",
		filepath.Join(claimDirIn(t, kube, "demo", "shared-files"), "reports", "q1.txt"): "quarterly figures\n",
	}
	checkData := func(when string) {
		t.Helper()
		poll(t, 3*time.Minute, "the workloads' data is not "+when, func(context.Context) (bool, error) {
			for path, content := range want {
				if b, err := os.ReadFile(path); err != nil || string(b) != content {
					return false, nil
				}
			}
			return true, nil
		})
	}
	checkData("written")

	apply("verifier.yaml", all)
	for _, f := range files {
		apply(f, configurations)
	}
	backups := map[string]bool{"web-backup": false, "db-backup": false, "node-agent-backup": false, "shared-files-backup": false}
	poll(t, 6*time.Minute, "the first backups did not all succeed", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("demo")); err != nil {
			return false, nil
		}
		for _, bs := range list.Items {
			name := bs.Spec.Invoker.Name
			if bs.Status.Phase == corev1alpha1.BackupSessionFailed {
				t.Fatalf("backupsession %s of %s failed", bs.Name, name)
			}
			if bs.Status.Phase == corev1alpha1.BackupSessionSucceeded {
				backups[name] = true
			}
		}
		for _, ok := range backups {
			if !ok {
				return false, nil
			}
		}
		return true, nil
	})

	// The backend that named no storage got the namespace's default, in its
	// spec; a leading slash names the same directory; Retain is a
	// Repository whose deletion keeps its data.
	ds := &corev1alpha1.BackupConfiguration{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "node-agent-backup"}, ds); err != nil {
		t.Fatal(err)
	}
	if got := ds.Spec.Backends[0].Storage(); got != (storagev1alpha1.ObjectReference{Namespace: "demo", Name: "local-storage"}) {
		t.Errorf("spec.backends[0].storageRef of node-agent-backup is %+v, want the default demo/local-storage", got)
	}
	repo := &storagev1alpha1.Repository{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "node-agent-repo"}, repo); err != nil {
		t.Fatal(err)
	}
	if repo.Spec.Path != "demo/node-agent" || repo.Spec.DeletionPolicy != storagev1alpha1.DeletionPolicyDelete || repo.Spec.StorageRef.Name != "local-storage" {
		t.Errorf("repository node-agent-repo: path %q, deletionPolicy %q, storage %q; want demo/node-agent, Delete (Retain), local-storage",
			repo.Spec.Path, repo.Spec.DeletionPolicy, repo.Spec.StorageRef.Name)
	}

	// The verifier restores the Deployment's backup into namespace verify
	// with pvc-addon, which takes /source/data without being told.
	started, err := verify.Now(ctx, kube, "demo", "dep-verifier", "", time.Now())
	if err != nil || len(started) != 1 {
		t.Fatalf("verify.Now: %d sessions, %v", len(started), err)
	}
	s := &corev1alpha1.BackupVerificationSession{}
	poll(t, 4*time.Minute, "the verification in namespace verify did not end", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(started[0]), s); err != nil {
			return false, nil
		}
		p := s.Status.Phase
		return p == corev1alpha1.VerificationSessionSucceeded || p == corev1alpha1.VerificationSessionFailed || p == corev1alpha1.VerificationSessionSkipped, nil
	})
	if s.Status.Phase != corev1alpha1.VerificationSessionSucceeded || s.Status.RestoreSessionNamespace != "verify" {
		t.Fatalf("verification session %s: %s, restored in %q; conditions %+v", s.Name, s.Status.Phase, s.Status.RestoreSessionNamespace, s.Status.Conditions)
	}
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "demo", Name: s.Spec.Snapshot}, snap); err != nil {
		t.Fatal(err)
	}
	if snap.Status.VerificationStatus != storagev1alpha1.SnapshotVerified || s.Status.FilesChecked == 0 {
		t.Errorf("snapshot %s: %q after %d files checked, want Verified", snap.Name, snap.Status.VerificationStatus, s.Status.FilesChecked)
	}
	poll(t, 2*time.Minute, "the scratch claim in namespace verify was not removed", func(ctx context.Context) (bool, error) {
		claims := &corev1.PersistentVolumeClaimList{}
		if err := kube.List(ctx, claims, client.InNamespace("verify"), client.MatchingLabels{corev1alpha1.LabelBackupVerificationSession: s.Name}); err != nil {
			return false, nil
		}
		return len(claims.Items) == 0, nil
	})

	// Wipe the data and put every backup back.
	for path := range want {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	apply("restore.yaml", all)
	for _, name := range []string{"web-restore", "db-restore", "node-agent-restore", "shared-files-restore"} {
		rs := &corev1alpha1.RestoreSession{}
		poll(t, 4*time.Minute, "restoresession "+name+" did not end", func(ctx context.Context) (bool, error) {
			if err := kube.Get(ctx, client.ObjectKey{Namespace: "demo", Name: name}, rs); err != nil {
				return false, nil
			}
			return rs.Status.Phase == corev1alpha1.RestoreSucceeded || rs.Status.Phase == corev1alpha1.RestoreFailed || rs.Status.Phase == corev1alpha1.RestoreInvalid, nil
		})
		if rs.Status.Phase != corev1alpha1.RestoreSucceeded {
			t.Errorf("restoresession %s is %s: %+v", name, rs.Status.Phase, rs.Status.Conditions)
		}
	}
	checkData("back after the restores")
}
