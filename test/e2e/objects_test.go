package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/verify"
)

// shopApp is a Deployment "app" in default and what it needs: its
// ServiceAccount with a Role bound to it, a ConfigMap it mounts, a Secret
// it reads into its environment, a Service and the claim holding its data.
// Its container refuses to start without the file marker in its data, so
// a pod started before its data was restored restarts.
func shopApp() []client.Object {
	labels := map[string]string{"app": "app"}
	app := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				ServiceAccountName: "app-sa",
				Containers: []corev1.Container{{
					Name: "app", Image: "busybox",
					Command: []string{"sh", "-c", "test -f /var/lib/app/marker || exit 3; exec sleep 3600"},
					Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "app-secret"}, Key: "token"}}}},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/app"}, {Name: "config", MountPath: "/etc/app"}},
				}},
				Volumes: []corev1.Volume{
					{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "app-data"}}},
					{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}},
				},
			}},
		},
	}
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: "default"} }
	return []client.Object{
		&corev1.ServiceAccount{ObjectMeta: meta("app-sa")},
		&rbacv1.Role{ObjectMeta: meta("app-reader"), Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"}}}},
		&rbacv1.RoleBinding{ObjectMeta: meta("app-reader"), RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "app-reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "app-sa", Namespace: "default"}}},
		&corev1.ConfigMap{ObjectMeta: meta("app-config"), Data: map[string]string{"greeting": "hello"}},
		&corev1.Secret{ObjectMeta: meta("app-secret"), Data: map[string][]byte{"token": []byte("s3cr3t-token")}},
		&corev1.ConfigMap{ObjectMeta: meta("unrelated"), Data: map[string]string{"x": "y"}},
		&corev1.Service{ObjectMeta: meta("app"), Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}}},
		&corev1.PersistentVolumeClaim{ObjectMeta: meta("app-data"), Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Mi")}},
		}},
		app,
	}
}

// TestWorkloadRecreated backs up a Deployment's data and its objects
// (the workload-addon's logical-backup and manifest-backup tasks), then
// restores both into a namespace that holds none of them, with the provider
// running on the package's rules only: every object is recreated there
// (the RoleBinding naming the new namespace's ServiceAccount), the claim's
// data is restored before the Deployment gets a pod, which then starts
// once, without a restart, seeing its data. A second restore that only
// recreates objects keeps what exists: a ConfigMap changed in between
// stays as changed, and each object is reported Kept.
func TestWorkloadRecreated(t *testing.T) {
	t.Parallel()
	kube := withPackageProvider(t, &corev1alpha1.RestoreSessionList{}, &batchv1.JobList{}, &corev1.PodList{})
	ctx := context.Background()
	const restored = "shop"
	storageDir := storageDir(t)
	bs := localStorage("shared", "default", storageDir, nil)
	bs.Spec.UsagePolicy = admitting("dr", "yes")
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Sessions[0].Addon.Tasks = append(bc.Spec.Sessions[0].Addon.Tasks, corev1alpha1.TaskReference{Name: "manifest-backup"})
	objs := append([]client.Object{
		bs,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
	}, shopApp()...)
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	data := claimDir(t, kube, "app-data")
	generate(t, data, 40, 31)
	if err := os.WriteFile(filepath.Join(data, "marker"), []byte("restored before start\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, bc); err != nil {
		t.Fatal(err)
	}
	first := firstSession(t, kube)
	poll(t, 3*time.Minute, "the first backup did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, first.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: naming.SnapshotName("app", first.Name)}, snap); err != nil {
		t.Fatal(err)
	}
	if c := snap.Status.Components[storagev1alpha1.ComponentManifest]; c.Phase != storagev1alpha1.ComponentSucceeded {
		t.Fatalf("snapshot %s: manifest component %+v, want Succeeded", snap.Name, c)
	}
	// The Secret's value is stored encrypted, like the data.
	err := filepath.WalkDir(storageDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(raw), "s3cr3t-token") {
			t.Errorf("%s holds the Secret's value in the clear", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// A verification of the Snapshot checks the objects by a dry run,
	// beside the data, while the restore below runs.
	v := &verificationTest{t: t, kube: kube}
	verifier := verifierWith("app-verifier", `{"mountPath": "/var/lib/app"}`)
	check := verify.Session("default", verifier.Name, snap, time.Now())
	for _, o := range []client.Object{verifier, check} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	// A namespace holding none of the app's objects, with the password.
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: restored, Labels: map[string]string{"dr": "yes"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "team-password", Namespace: restored}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	recreate := func(name string, tasks ...corev1alpha1.TaskReference) *corev1alpha1.RestoreSession {
		rs := restoreSession(name, "app", corev1alpha1.SnapshotLatest, "team-password")
		rs.Namespace = restored
		rs.Spec.DataSource.Namespace = "default"
		rs.Spec.Addon.Tasks = tasks
		return rs
	}
	dataTask := corev1alpha1.TaskReference{Name: "logical-backup-restore", Params: &runtime.RawExtension{Raw: []byte(`{"paths": ["/var/lib/app"]}`)}}
	if err := kube.Create(ctx, recreate("recreate", corev1alpha1.TaskReference{Name: "manifest-restore"}, dataTask)); err != nil {
		t.Fatal(err)
	}
	rs := finishedRestore(t, kube, restored, "recreate")
	if rs.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("restoresession %s/recreate: phase %s, components %+v, conditions %+v", restored, rs.Status.Phase, rs.Status.Components, rs.Status.Conditions)
	}
	objects := rs.Status.Components[storagev1alpha1.ComponentManifest]
	if diff := cmp.Diff(wantOutcomes(corev1alpha1.ResourceCreated), outcomes(objects)); diff != "" {
		t.Errorf("objects recreated: -want +got:\n%s", diff)
	}

	// The objects are there, in the new namespace.
	binding := &rbacv1.RoleBinding{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: restored, Name: "app-reader"}, binding); err != nil {
		t.Fatal(err)
	}
	if got := binding.Subjects; len(got) != 1 || got[0].Namespace != restored || got[0].Name != "app-sa" {
		t.Errorf("recreated rolebinding's subjects %+v, want ServiceAccount app-sa of namespace %q", got, restored)
	}
	secret := &corev1.Secret{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: restored, Name: "app-secret"}, secret); err != nil {
		t.Fatal(err)
	}
	if string(secret.Data["token"]) != "s3cr3t-token" {
		t.Errorf("recreated secret holds %q, want the backed-up token", secret.Data["token"])
	}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: restored, Name: "unrelated"}, &corev1.ConfigMap{}); err == nil {
		t.Errorf("a ConfigMap the app does not use was recreated")
	}
	// The data came back into the recreated claim before the pod started.
	if diff := cmp.Diff(digest(t, data), digest(t, claimDirIn(t, kube, restored, "app-data"))); diff != "" {
		t.Errorf("restored data: -backed up +restored:\n%s", diff)
	}
	app := &appsv1.Deployment{}
	poll(t, 2*time.Minute, "the recreated Deployment did not run its pod", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKey{Namespace: restored, Name: "app"}, app); err != nil {
			return false, err
		}
		return app.Status.ReadyReplicas == 1, nil
	})
	if _, held := app.Annotations[corev1alpha1.AnnotationHeldReplicas]; held || ptr.Deref(app.Spec.Replicas, 0) != 1 {
		t.Errorf("recreated deployment: replicas %d, annotations %v; want 1 and no held replicas", ptr.Deref(app.Spec.Replicas, 0), app.Annotations)
	}
	startedOnce(t, kube, restored, map[string]string{"app": "app"})

	// The verification judged the data and the objects, and made none.
	verified := v.finished(check.Name)
	if verified.Status.Phase != corev1alpha1.VerificationSessionSucceeded || v.snapshot(snap.Name).Status.VerificationStatus != storagev1alpha1.SnapshotVerified {
		t.Errorf("verification %s: phase %s, conditions %+v; want the snapshot Verified", check.Name, verified.Status.Phase, verified.Status.Conditions)
	}
	vrs := &corev1alpha1.RestoreSession{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: verified.Status.RestoreSession}, vrs); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantOutcomes(corev1alpha1.ResourceAccepted), outcomes(vrs.Status.Components[storagev1alpha1.ComponentManifest])); diff != "" {
		t.Errorf("objects the verification checked: -want +got:\n%s", diff)
	}

	// What exists is kept unless asked: a changed ConfigMap stays changed.
	cm := &corev1.ConfigMap{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: restored, Name: "app-config"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["greeting"] = "changed after the restore"
	if err := kube.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, recreate("again", corev1alpha1.TaskReference{Name: "manifest-restore"})); err != nil {
		t.Fatal(err)
	}
	rs = finishedRestore(t, kube, restored, "again")
	if rs.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("restoresession %s/again: phase %s, components %+v, conditions %+v", restored, rs.Status.Phase, rs.Status.Components, rs.Status.Conditions)
	}
	if diff := cmp.Diff(wantOutcomes(corev1alpha1.ResourceKept), outcomes(rs.Status.Components[storagev1alpha1.ComponentManifest])); diff != "" {
		t.Errorf("objects of the second restore: -want +got:\n%s", diff)
	}
	if c := rs.GetCondition(corev1alpha1.TypeObjectsKept); c.Status != corev1.ConditionTrue || !strings.Contains(c.Message, "9 objects") || !strings.Contains(c.Message, "overwriteResources") {
		t.Errorf("second restore's ObjectsKept: %s %s %q; want True counting the 9 kept objects and naming overwriteResources", c.Status, c.Reason, c.Message)
	}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: restored, Name: "app-config"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["greeting"] != "changed after the restore" {
		t.Errorf("a restore without overwriteResources replaced an existing ConfigMap: %q", cm.Data["greeting"])
	}

	// A dry run asks whether a namespace would accept the objects, and
	// makes none; with a data task it is refused, having no target.
	const precheck = "precheck"
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: precheck, Labels: map[string]string{"dr": "yes"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "team-password", Namespace: precheck}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	dry := corev1alpha1.TaskReference{Name: "manifest-restore", Params: &runtime.RawExtension{Raw: []byte(`{"dryRun": true}`)}}
	for _, tc := range []struct {
		name  string
		tasks []corev1alpha1.TaskReference
		want  corev1alpha1.RestorePhase
	}{
		{name: "dry", tasks: []corev1alpha1.TaskReference{dry}, want: corev1alpha1.RestoreSucceeded},
		{name: "dry-with-data", tasks: []corev1alpha1.TaskReference{dry, dataTask}, want: corev1alpha1.RestoreInvalid},
	} {
		s := recreate(tc.name, tc.tasks...)
		s.Namespace = precheck
		if err := kube.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		rs = finishedRestore(t, kube, precheck, tc.name)
		if rs.Status.Phase != tc.want {
			t.Errorf("restoresession %s/%s: phase %s, conditions %+v; want %s", precheck, tc.name, rs.Status.Phase, rs.Status.Conditions, tc.want)
		}
	}
	rs = finishedRestore(t, kube, precheck, "dry")
	if diff := cmp.Diff(wantOutcomes(corev1alpha1.ResourceAccepted), outcomes(rs.Status.Components[storagev1alpha1.ComponentManifest])); diff != "" {
		t.Errorf("objects of the dry run: -want +got:\n%s", diff)
	}
	for _, o := range rs.Status.Components[storagev1alpha1.ComponentManifest].Resources {
		if o.Kind == "RoleBinding" && !strings.Contains(o.Message, "without its Role") {
			t.Errorf("dry-run rolebinding's message %q, want it to say it was checked without its Role", o.Message)
		}
	}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: precheck, Name: "app"}, &appsv1.Deployment{}); !kerrors.IsNotFound(err) {
		t.Errorf("the dry run made Deployment app, or it cannot be read: %v", err)
	}
	if c := rs.GetCondition(corev1alpha1.TypeRestoreTargetFound); c.Reason != corev1alpha1.ReasonRestoreTargetRecreating {
		t.Errorf("dry run's RestoreTargetFound: %s %q", c.Reason, c.Message)
	}
}

// wantOutcomes are the objects of shopApp and its configuration, each
// with result r.
func wantOutcomes(r corev1alpha1.ResourceResult) []string {
	out := []string{"BackupConfiguration/app-backup", "ConfigMap/app-config", "Deployment/app", "PersistentVolumeClaim/app-data",
		"Role/app-reader", "RoleBinding/app-reader", "Secret/app-secret", "Service/app", "ServiceAccount/app-sa"}
	for i := range out {
		out[i] += "=" + string(r)
	}
	return out
}

// outcomes lists a component's object outcomes as Kind/name=result.
func outcomes(c corev1alpha1.ComponentRestoreStatus) []string {
	var out []string
	for _, o := range c.Resources {
		out = append(out, o.Kind+"/"+o.Name+"="+string(o.Result))
	}
	sort.Strings(out)
	return out
}

// startedOnce fails the test when a pod of namespace ns with the labels
// restarted: a workload that refuses to start without its data was
// started before its data was restored.
func startedOnce(t *testing.T, kube client.Client, ns string, labels map[string]string) {
	t.Helper()
	pods := &corev1.PodList{}
	if err := kube.List(context.Background(), pods, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount != 0 {
				t.Errorf("pod %s restarted %d times: it started before its data was restored", p.Name, cs.RestartCount)
			}
		}
	}
}
