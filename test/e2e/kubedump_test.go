package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// TestNamespaceDump backs up the objects of a namespace with the
// kubedump-addon (leaving its Services out), with the provider on the
// package's rules only, and recreates them in a namespace that holds
// none: every object of the namespace the filter picks is there,
// unrelated ones included, the Service is not, an object that exists
// is kept, and the recreated configuration dumps its new namespace.
func TestNamespaceDump(t *testing.T) {
	t.Parallel()
	kube := withPackageProvider(t, &corev1alpha1.RestoreSessionList{}, &batchv1.JobList{}, &corev1.PodList{})
	ctx := context.Background()
	const copyNS = "copy"
	bs := localStorage("shared", "default", t.TempDir(), nil)
	bs.Spec.UsagePolicy = admitting("dr", "yes")
	bc := configuration(`{}`)
	bc.Spec.Target = &storagev1alpha1.TypedObjectReference{Kind: "Namespace", Name: "default"}
	bc.Spec.Sessions[0].Addon = &corev1alpha1.AddonInfo{Name: "kubedump-addon", Tasks: []corev1alpha1.TaskReference{
		{Name: "manifest-backup", Params: &runtime.RawExtension{Raw: []byte(`{"excludeResources": "services"}`)}},
	}}
	objs := append([]client.Object{
		bs,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
	}, shopApp()...)
	objs = append(objs, bc)
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	first := firstSession(t, kube)
	poll(t, 3*time.Minute, "the namespace dump did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, first.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: naming.SnapshotName("app", first.Name)}, snap); err != nil {
		t.Fatal(err)
	}
	if c := snap.Status.Components[storagev1alpha1.ComponentManifest]; c.Phase != storagev1alpha1.ComponentSucceeded || len(snap.Status.Components) != 1 {
		t.Fatalf("snapshot %s: components %+v, want the manifest component alone, Succeeded", snap.Name, snap.Status.Components)
	}

	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: copyNS, Labels: map[string]string{"dr": "yes"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: copyNS}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	rs := restoreSession("namespace", "", corev1alpha1.SnapshotLatest, "restic-password")
	rs.Namespace = copyNS
	rs.Spec.Target = &storagev1alpha1.TypedObjectReference{Kind: "Namespace", Name: copyNS}
	rs.Spec.DataSource.Namespace = "default"
	rs.Spec.Addon = &corev1alpha1.AddonInfo{Name: "kubedump-addon", Tasks: []corev1alpha1.TaskReference{{Name: "manifest-restore"}}}
	if err := kube.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	done := finishedRestore(t, kube, copyNS, "namespace")
	if done.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("restoresession %s/namespace: phase %s, components %+v, conditions %+v", copyNS, done.Status.Phase, done.Status.Components, done.Status.Conditions)
	}
	want := []string{
		"BackupConfiguration/app-backup=Created", "ConfigMap/app-config=Created", "ConfigMap/unrelated=Created", "Deployment/app=Created",
		"PersistentVolumeClaim/app-data=Created", "Role/app-reader=Created", "RoleBinding/app-reader=Created", "Secret/app-secret=Created",
		"Secret/restic-password=Kept", "ServiceAccount/app-sa=Created",
	}
	if diff := cmp.Diff(want, outcomes(done.Status.Components[storagev1alpha1.ComponentManifest])); diff != "" {
		t.Errorf("objects recreated from the namespace dump: -want +got:\n%s", diff)
	}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: copyNS, Name: "app"}, &corev1.Service{}); !kerrors.IsNotFound(err) {
		t.Errorf("the Service the dump left out is in namespace %s, or cannot be read: %v", copyNS, err)
	}
	recreated := &corev1alpha1.BackupConfiguration{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: copyNS, Name: "app-backup"}, recreated); err != nil {
		t.Fatal(err)
	}
	if got := recreated.Spec.Target; got == nil || got.Kind != "Namespace" || got.Name != copyNS {
		t.Errorf("recreated configuration's target %+v, want namespace %s", got, copyNS)
	}
}
