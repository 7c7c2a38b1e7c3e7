package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
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
	storageDir, data := t.TempDir(), t.TempDir()
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
