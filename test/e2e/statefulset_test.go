package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/provider"
)

// statefulSet runs replicas pods, each with its own claim "data" from a
// claim template, mounted at /var/lib/app.
// statefulSetSetup installs the built-in addons and creates a local
// storage, the repositories' password Secret, a two-replica StatefulSet
// "db" and the extra objects; it returns the storage's directory and a
// configuration (not created) that backs "db" up.
func statefulSetSetup(t *testing.T, kube client.Client, extra ...client.Object) (string, *corev1alpha1.BackupConfiguration) {
	t.Helper()
	ctx := context.Background()
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	storageDir := storageDir(t)
	objs := append([]client.Object{
		localStorage("shared", "default", storageDir, nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		statefulSet("db", 2),
	}, extra...)
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Target = &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: "db"}
	return storageDir, bc
}

func statefulSet(name string, replicas int32) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(replicas),
			ServiceName:         name,
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/app"}}}},
			}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Mi")}},
				},
			}},
		},
	}
}

// claimDir waits for a claim to be bound and returns the host directory of
// its volume.
func claimDir(t *testing.T, kube client.Client, name string) string {
	t.Helper()
	return claimDirIn(t, kube, "default", name)
}

// claimDirIn is claimDir for a claim of namespace ns.
func claimDirIn(t *testing.T, kube client.Client, ns, name string) string {
	t.Helper()
	var dir string
	poll(t, 3*time.Minute, "claim "+ns+"/"+name+" was not bound to a host directory", func(ctx context.Context) (bool, error) {
		pvc := &corev1.PersistentVolumeClaim{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pvc); err != nil || pvc.Spec.VolumeName == "" {
			return false, nil
		}
		pv := &corev1.PersistentVolume{}
		if err := kube.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, pv); err != nil || pv.Spec.HostPath == nil {
			return false, nil
		}
		dir = pv.Spec.HostPath.Path
		return pvc.Status.Phase == corev1.ClaimBound, nil
	})
	return dir
}

// A StatefulSet is backed up one pod at a time: two replicas whose claims
// hold different data give a Snapshot of two components, dump-pod-0 and
// dump-pod-1, that succeeds once both did. Plain restic on each
// component's repository gives back the bytes of that pod's claim. A
// RestoreSession into the StatefulSet, after ordinal 1's data was wiped,
// writes each component back into the claim of its own ordinal.
func TestStatefulSetPerPodComponents(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &batchv1.JobList{})
	storageDir, bc := statefulSetSetup(t, kube)

	// Each ordinal's claim gets data of its own, while its pod runs.
	dirs := []string{claimDir(t, kube, "data-db-0"), claimDir(t, kube, "data-db-1")}
	want := make([]map[string]string, len(dirs))
	for i, dir := range dirs {
		generate(t, dir, 40+20*i, uint64(31+i))
		want[i] = digest(t, dir)
	}
	if cmp.Equal(want[0], want[1]) {
		t.Fatal("the two ordinals hold the same data; the test could not tell them apart")
	}
	poll(t, 3*time.Minute, "the StatefulSet's two pods did not become ready", func(ctx context.Context) (bool, error) {
		sts := &appsv1.StatefulSet{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "db"}, sts); err != nil {
			return false, nil
		}
		return sts.Status.ReadyReplicas == 2, nil
	})

	if err := kube.Create(ctx, bc); err != nil {
		t.Fatal(err)
	}
	snap, jobs := componentsBackedUp(t, kube, "dump-pod-0", "dump-pod-1")
	if len(jobs) != 2 {
		t.Errorf("the backup ran %d Jobs, want one per pod", len(jobs))
	}

	// Plain restic, on each component's repository on the host.
	for i := range dirs {
		resticHolds(t, storageDir, snap, fmt.Sprintf("dump-pod-%d", i), want[i])
	}

	// Wipe ordinal 1 and restore both components into the StatefulSet.
	wipe(t, dirs[1])
	restoreComponents(t, kube, "StatefulSet", "db", "dump-pod-0", "dump-pod-1")
	for i, dir := range dirs {
		if diff := cmp.Diff(want[i], digest(t, dir)); diff != "" {
			t.Errorf("ordinal %d after the restore: -backed up +now:\n%s", i, diff)
		}
	}
}

// componentsBackedUp waits for the first backup to succeed and returns its
// Snapshot, checked to hold exactly the given components, all Succeeded and
// all expected from the start, and the session's Jobs.
func componentsBackedUp(t *testing.T, kube client.Client, components ...string) (*storagev1alpha1.Snapshot, []batchv1.Job) {
	t.Helper()
	ctx := context.Background()
	var session corev1alpha1.BackupSession
	poll(t, 5*time.Minute, "the first backup did not succeed", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		session = list.Items[0]
		if session.Status.Phase == corev1alpha1.BackupSessionFailed {
			return false, fmt.Errorf("backupsession %s failed", session.Name)
		}
		return session.Status.Phase == corev1alpha1.BackupSessionSucceeded, nil
	})
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-" + session.Name}, snap); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n, c := range snap.Status.Components {
		names = append(names, n)
		if c.Phase != storagev1alpha1.ComponentSucceeded {
			t.Errorf("component %s is %s: %s", n, c.Phase, c.Error)
		}
	}
	sort.Strings(names)
	if diff := cmp.Diff(components, names); diff != "" || int(snap.Status.TotalComponents) != len(components) || snap.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Fatalf("snapshot %s: phase %s, totalComponents %d, components -want +got:\n%s", snap.Name, snap.Status.Phase, snap.Status.TotalComponents, diff)
	}
	jobs := &batchv1.JobList{}
	if err := kube.List(ctx, jobs, client.InNamespace("default"), client.MatchingLabels{"core.stashplane.io/backupsession": session.Name}); err != nil {
		t.Fatal(err)
	}
	return snap, jobs.Items
}

// resticHolds checks with plain restic that a component's repository on
// the host holds one snapshot of /var/lib/app with the wanted files.
func resticHolds(t *testing.T, storageDir string, snap *storagev1alpha1.Snapshot, component string, want map[string]string) {
	t.Helper()
	repoDir := filepath.Join(storageDir, "backups", snap.Status.Components[component].Path)
	var snaps []resticSnapshot
	if err := json.Unmarshal(hostRestic(t, repoDir, "snapshots", "--json"), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || !cmp.Equal(snaps[0].Paths, []string{"/var/lib/app"}) {
		t.Fatalf("restic lists %+v in the repository of %s", snaps, component)
	}
	restored := t.TempDir()
	hostRestic(t, repoDir, "restore", snaps[0].ID, "--target", restored)
	if diff := cmp.Diff(want, digest(t, filepath.Join(restored, "var/lib/app"))); diff != "" {
		t.Errorf("restic restore of %s: -backed up +restored:\n%s", component, diff)
	}
}

// wipe empties a directory.
func wipe(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// restoreComponents restores the latest Snapshot of the app repository
// into a workload and waits for every given component to succeed.
func restoreComponents(t *testing.T, kube client.Client, kind, name string, components ...string) {
	t.Helper()
	rs := restoreSession(name+"-restore", name, corev1alpha1.SnapshotLatest, "")
	rs.Spec.Target.Kind = kind
	rs.Spec.RestoreTimeout = &metav1.Duration{Duration: 4 * time.Minute}
	if err := kube.Create(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Minute, "the restore into "+kind+" "+name+" did not finish", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(rs), rs); err != nil {
			return false, nil
		}
		return rs.Status.Phase == corev1alpha1.RestoreSucceeded || rs.Status.Phase == corev1alpha1.RestoreFailed, nil
	})
	ok := rs.Status.Phase == corev1alpha1.RestoreSucceeded && int(rs.Status.TotalComponents) == len(components)
	for _, c := range components {
		ok = ok && rs.Status.Components[c].Phase == corev1alpha1.RestoreSucceeded
	}
	if !ok {
		t.Fatalf("restoresession: phase %s, %d components %+v, conditions %+v", rs.Status.Phase, rs.Status.TotalComponents, rs.Status.Components, rs.Status.Conditions)
	}
}
