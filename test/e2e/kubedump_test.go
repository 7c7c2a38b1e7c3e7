package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
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
	bs := localStorage("shared", "default", storageDir(t), nil)
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
	// What serves, shields and scales the app.
	pathType := networkingv1.PathTypePrefix
	objs = append(objs,
		&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "report", Namespace: "default"}, Spec: batchv1.CronJobSpec{Schedule: "0 0 1 1 *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "report", Image: "busybox", Command: []string{"true"}}}}}}}}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"}, Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: "shop.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &pathType, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "app", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}},
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "app-only", Namespace: "default"}, Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "app"}}}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"}, Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app"}}}},
		&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"}, Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"}, MinReplicas: ptr.To[int32](1), MaxReplicas: 3}},
	)
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
		"BackupConfiguration/app-backup=Created", "ConfigMap/app-config=Created", "ConfigMap/unrelated=Created", "CronJob/report=Created", "Deployment/app=Created",
		"HorizontalPodAutoscaler/app=Created", "Ingress/app=Created", "NetworkPolicy/app-only=Created",
		"PersistentVolumeClaim/app-data=Created", "PodDisruptionBudget/app=Created", "Role/app-reader=Created", "RoleBinding/app-reader=Created", "Secret/app-secret=Created",
		"Secret/restic-password=Kept", "ServiceAccount/app-sa=Created",
	}
	if diff := cmp.Diff(want, outcomes(done.Status.Components[storagev1alpha1.ComponentManifest])); diff != "" {
		t.Errorf("objects recreated from the namespace dump: -want +got:\n%s", diff)
	}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: copyNS, Name: "app"}, &corev1.Service{}); !kerrors.IsNotFound(err) {
		t.Errorf("the Service the dump left out is in namespace %s, or cannot be read: %v", copyNS, err)
	}
	// The CronJob, suspended while the restore ran, runs again as it did.
	poll(t, time.Minute, "the recreated CronJob was not released", func(ctx context.Context) (bool, error) {
		cj := &batchv1.CronJob{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: copyNS, Name: "report"}, cj); err != nil {
			return false, nil
		}
		_, held := cj.Annotations[corev1alpha1.LabelHeld]
		return !held && !ptr.Deref(cj.Spec.Suspend, false), nil
	})
	recreated := &corev1alpha1.BackupConfiguration{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: copyNS, Name: "app-backup"}, recreated); err != nil {
		t.Fatal(err)
	}
	if got := recreated.Spec.Target; got == nil || got.Kind != "Namespace" || got.Name != copyNS {
		t.Errorf("recreated configuration's target %+v, want namespace %s", got, copyNS)
	}
}
