package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/provider"
)

// daemonSet runs a pod on every node with a host directory mounted at
// /var/lib/app.
func daemonSet(name, dir string) *appsv1.DaemonSet {
	labels := map[string]string{"app": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/app"}}}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}}},
			}},
		},
	}
}

// A DaemonSet is backed up one node at a time: on the dev cluster's one
// process node it gives one component, dump-<node>, whose Job ran on that
// node with the host directory mounted; plain restic gives the bytes back,
// and a RestoreSession into the DaemonSet refills the wiped directory.
func TestDaemonSetPerNodeComponents(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &batchv1.JobList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	storageDir, data := storageDir(t), t.TempDir()
	generate(t, data, 50, 41)
	want := digest(t, data)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Target = &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "DaemonSet", Name: "agent"}
	for _, o := range []client.Object{
		localStorage("shared", "default", storageDir, nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		daemonSet("agent", data),
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var node string
	poll(t, 3*time.Minute, "the DaemonSet's pod did not run on a node", func(ctx context.Context) (bool, error) {
		pods := &corev1.PodList{}
		if err := kube.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{"app": "agent"}); err != nil || len(pods.Items) != 1 {
			return false, nil
		}
		node = pods.Items[0].Spec.NodeName
		return node != "" && pods.Items[0].Status.Phase == corev1.PodRunning, nil
	})

	if err := kube.Create(ctx, bc); err != nil {
		t.Fatal(err)
	}
	component := plan.NodeComponent(node)
	snap, jobs := componentsBackedUp(t, kube, component)
	var nodes []string
	for _, j := range jobs {
		nodes = append(nodes, j.Spec.Template.Spec.NodeName)
	}
	if diff := cmp.Diff([]string{node}, nodes); diff != "" {
		t.Errorf("nodes of the backup Jobs: -want +got:\n%s", diff)
	}
	resticHolds(t, storageDir, snap, component, want)

	wipe(t, data)
	restoreComponents(t, kube, "DaemonSet", "agent", component)
	if diff := cmp.Diff(want, digest(t, data)); diff != "" {
		t.Errorf("host directory after the restore: -backed up +now:\n%s", diff)
	}
}

// A DaemonSet deleted with its data is recreated from its Snapshot's
// resource manifests held, with a node selector no node matches, until
// its data is back on its node; then it runs its pod, which refuses to
// start without the data, once.
func TestDaemonSetRecreated(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &appsv1.DaemonSetList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	storageDir, data := storageDir(t), t.TempDir()
	generate(t, data, 30, 43)
	if err := os.WriteFile(filepath.Join(data, "marker"), []byte("restored before start\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := digest(t, data)
	ds := daemonSet("agent", data)
	ds.Spec.Template.Spec.Containers[0].Command = []string{"sh", "-c", "test -f /var/lib/app/marker || exit 3; exec sleep 3600"}
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Target = &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "DaemonSet", Name: "agent"}
	bc.Spec.Sessions[0].Addon.Tasks = append(bc.Spec.Sessions[0].Addon.Tasks, corev1alpha1.TaskReference{Name: "manifest-backup"})
	for _, o := range []client.Object{
		localStorage("shared", "default", storageDir, nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		ds, bc,
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	first := firstSession(t, kube)
	poll(t, 3*time.Minute, "the backup did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, first.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})

	// The DaemonSet and its data are lost.
	if err := kube.Delete(ctx, ds, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the DaemonSet's pods did not go", func(ctx context.Context) (bool, error) {
		pods := &corev1.PodList{}
		err := kube.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{"app": "agent"})
		return err == nil && len(pods.Items) == 0 && kerrors.IsNotFound(kube.Get(ctx, client.ObjectKeyFromObject(ds), &appsv1.DaemonSet{})), nil
	})
	wipe(t, data)

	rs := restoreSession("recreate", "agent", corev1alpha1.SnapshotLatest, "")
	rs.Spec.Target.Kind = "DaemonSet"
	rs.Spec.Addon.Tasks = append([]corev1alpha1.TaskReference{{Name: "manifest-restore"}}, rs.Spec.Addon.Tasks...)
	if err := kube.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	done := finishedRestore(t, kube, "default", "recreate")
	if done.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("restoresession recreate: phase %s, conditions %+v, components %+v", done.Status.Phase, done.Status.Conditions, done.Status.Components)
	}
	if diff := cmp.Diff(want, digest(t, data)); diff != "" {
		t.Errorf("host directory after the restore: -backed up +now:\n%s", diff)
	}
	got := &appsv1.DaemonSet{}
	poll(t, 2*time.Minute, "the recreated DaemonSet did not run its pod", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(ds), got); err != nil {
			return false, err
		}
		return got.Status.NumberReady == 1, nil
	})
	if _, held := got.Spec.Template.Spec.NodeSelector[corev1alpha1.LabelHeld]; held || got.Annotations[corev1alpha1.LabelHeld] != "" {
		t.Errorf("recreated DaemonSet still held: nodeSelector %v, annotations %v", got.Spec.Template.Spec.NodeSelector, got.Annotations)
	}
	startedOnce(t, kube, "default", map[string]string{"app": "agent"})
}
