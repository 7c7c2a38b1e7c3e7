package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/resourcedump"
	"github.com/stashplane/stashplane/internal/verify"
)

// crdYAML defines the custom resource kind of group example.com, at v1,
// whose spec has one field of the given OpenAPI type.
func crdYAML(plural, kind, scope, field, fieldType string) string {
	return fmt.Sprintf(`
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[1]s.example.com}
spec:
  group: example.com
  scope: %[3]s
  names: {plural: %[1]s, kind: %[2]s, listKind: %[2]sList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              %[4]s: {type: %[5]s}
`, plural, kind, scope, field, fieldType)
}

// The custom resources dumps hold: a namespaced Widget and a
// cluster-scoped Region.
var (
	widgetCRD = crdYAML("widgets", "Widget", "Namespaced", "colour", "string")
	regionCRD = crdYAML("regions", "Region", "Cluster", "zones", "integer")
)

// unstructuredYAML reads one object from YAML.
func unstructuredYAML(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatalf("cannot read object: %v", err)
	}
	return u
}

// crdEstablished waits until the API server serves the kinds of the
// CustomResourceDefinition name.
func crdEstablished(t *testing.T, kube client.Client, name string) {
	t.Helper()
	poll(t, time.Minute, "CustomResourceDefinition "+name+" was not established", func(ctx context.Context) (bool, error) {
		crd := unstructuredYAML(t, widgetCRD)
		if err := kube.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

// A configuration without a target, with the kubedump-addon, dumps the
// whole cluster, in a namespace the provider lets do so
// (--cluster-dump-namespaces), running as the account its jobTemplate
// names, which the operator lets read the cluster: the dump holds the
// objects of every namespace not excluded (Secrets included) and the
// cluster-scoped ones, but not the API server's own roles nor what an
// excluded namespace holds. The same configuration in a namespace the
// provider does not list is refused, naming the flag, and runs nothing.
func TestClusterDump(t *testing.T) {
	t.Parallel()
	kube, _ := withProviderCluster(t, withClusterDumps("default"))
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupConfigurationList{})
	defer dumpOnFailure(t, kube, &batchv1.JobList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	storageDir := storageDir(t)
	storage := localStorage("shared", "default", storageDir, nil)
	storage.Spec.UsagePolicy = admitting("dr", "yes")
	web := deployment("web")
	web.Namespace, web.Spec.Replicas = "shop-b", ptr.To[int32](1)
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop-a", Labels: map[string]string{"dr": "yes"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop-b"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "prices", Namespace: "shop-a"}, Data: map[string]string{"apple": "3"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop-a"}, Data: map[string][]byte{"password": []byte("s3cret")}},
		web,
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "shop-viewer"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}},
		// What the operator grants the dump's account.
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "cluster-reader", Namespace: "default"}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "cluster-dump-reader"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "cluster-dump-reader"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-dump-reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "cluster-reader", Namespace: "default"}}},
		storage,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
	}
	dump := func(ns string) *corev1alpha1.BackupConfiguration {
		bc := configuration(`{}`)
		bc.Namespace, bc.Spec.Target = ns, nil
		bc.Spec.Sessions[0].Addon = &corev1alpha1.AddonInfo{Name: "kubedump-addon", JobTemplate: jobAccount("cluster-reader"), Tasks: []corev1alpha1.TaskReference{
			{Name: "manifest-backup", Params: &runtime.RawExtension{Raw: []byte(`{"excludeNamespaces": "kube-system,kube-public,kube-node-lease"}`)}},
		}}
		return bc
	}
	// A custom resource and its definition, and a PriorityClass: a dump
	// of the cluster holds them, and the verification's dry run may make
	// widgets in its namespace, as the operator lets it.
	widgets := unstructuredYAML(t, widgetCRD)
	for _, crd := range []*unstructured.Unstructured{widgets, unstructuredYAML(t, regionCRD)} {
		if err := kube.Create(ctx, crd); err != nil {
			t.Fatal(err)
		}
		crdEstablished(t, kube, crd.GetName())
	}
	blue := unstructuredYAML(t, "{apiVersion: example.com/v1, kind: Widget, metadata: {name: blue, namespace: shop-b}, spec: {colour: blue}}")
	north := unstructuredYAML(t, "{apiVersion: example.com/v1, kind: Region, metadata: {name: north}, spec: {zones: 3}}")
	objs = append(objs, blue, north,
		&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "shop-critical"}, Value: 1000},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "widget-maker"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{"example.com"}, Resources: []string{"widgets"}, Verbs: []string{"create"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "widget-makers", Namespace: "default"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "widget-maker"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts:default"}}})
	objs = append(objs, dump("default"), dump("other"))
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	first := firstSession(t, kube)
	poll(t, 3*time.Minute, "the cluster dump did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, first.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: naming.SnapshotName("app", first.Name)}, snap); err != nil {
		t.Fatal(err)
	}
	c := snap.Status.Components[storagev1alpha1.ComponentManifest]
	if c.Phase != storagev1alpha1.ComponentSucceeded || len(c.ResticStats) == 0 || c.ResticStats[0].Summary == nil {
		t.Fatalf("snapshot %s: component %+v", snap.Name, c)
	}
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentManifest))
	dumped, err := resourcedump.Decode(hostRestic(t, repoDir, "dump", c.ResticStats[0].Summary.ID, c.ResticStats[0].Summary.HostPath))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range dumped {
		names = append(names, u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName())
	}
	for _, want := range []string{"Namespace /shop-a", "Namespace /shop-b", "ConfigMap shop-a/prices", "Secret shop-a/db", "Deployment shop-b/web",
		"ClusterRole /shop-viewer", "ClusterRoleBinding /cluster-dump-reader", "ServiceAccount default/cluster-reader",
		"CustomResourceDefinition /widgets.example.com", "Widget shop-b/blue", "PriorityClass /shop-critical",
		"CustomResourceDefinition /regions.example.com", "Region /north"} {
		if !slices.Contains(names, want) {
			t.Errorf("the cluster dump lacks %s", want)
		}
	}
	for _, n := range names {
		if strings.Contains(n, " kube-system/") || strings.HasPrefix(n, "Namespace /kube-") || strings.Contains(n, "/system:") || n == "ClusterRole /cluster-admin" ||
			strings.HasPrefix(n, "PriorityClass /system-") || strings.Contains(n, ".stashplane.io") {
			t.Errorf("the cluster dump holds %s, which it leaves out", n)
		}
	}
	if i, j := slices.Index(names, "Namespace /shop-a"), slices.Index(names, "ConfigMap shop-a/prices"); i < 0 || j < i {
		t.Errorf("the dump does not list the namespaces before their objects: %v", names)
	}
	if i, j := slices.Index(names, "CustomResourceDefinition /widgets.example.com"), slices.Index(names, "Widget shop-b/blue"); i < 0 || j < i {
		t.Errorf("the dump does not list the custom resource's definition before it: %v", names)
	}
	t.Logf("the cluster dump holds %d objects: %s", len(names), strings.Join(names, ", "))

	// A verification checks every object of the dump by a dry run into
	// the verifier's namespace; the cluster-scoped ones, which its account
	// may not make even so, against the API's schema.
	verifier := &corev1alpha1.BackupVerifier{
		ObjectMeta: metav1.ObjectMeta{Name: "dump-verifier", Namespace: "default"},
		Spec: corev1alpha1.BackupVerifierSpec{
			Type: corev1alpha1.VerificationRestoreOnly,
			RestoreOption: corev1alpha1.RestoreOption{
				Target:    storagev1alpha1.TypedObjectReference{Kind: "Namespace", Name: "default"},
				AddonInfo: corev1alpha1.AddonInfo{Name: "kubedump-addon", Tasks: []corev1alpha1.TaskReference{{Name: "manifest-restore"}}},
			},
		},
	}
	check := verify.Session("default", verifier.Name, snap, time.Now())
	for _, o := range []client.Object{verifier, check} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	v := &verificationTest{t: t, kube: kube}
	verified := v.finished(check.Name)
	if verified.Status.Phase != corev1alpha1.VerificationSessionSucceeded || v.snapshot(snap.Name).Status.VerificationStatus != storagev1alpha1.SnapshotVerified {
		t.Fatalf("verification of the cluster dump: %s\n%s", verified.Status.Phase, verificationStory(kube, verified))
	}
	vrs := &corev1alpha1.RestoreSession{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: verified.Status.RestoreSession}, vrs); err != nil {
		t.Fatal(err)
	}
	checked := outcomes(vrs.Status.Components[storagev1alpha1.ComponentManifest])
	if len(checked) != len(names) || !slices.Contains(checked, "ClusterRole/shop-viewer=Accepted") || !slices.Contains(checked, "ConfigMap/prices=Accepted") ||
		!slices.Contains(checked, "Widget/blue=Accepted") || !slices.Contains(checked, "CustomResourceDefinition/widgets.example.com=Accepted") ||
		!slices.Contains(checked, "Region/north=Accepted") {
		t.Errorf("objects the verification checked: %v; want each of the dump's %d, accepted", checked, len(names))
	}

	// One namespace of the dump recreated where its objects were lost.
	for _, o := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "prices", Namespace: "shop-a"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop-a"}},
	} {
		if err := kube.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := kube.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "shop-a"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}}); err != nil {
		t.Fatal(err)
	}
	rs := restoreSession("from-cluster", "", snap.Name, "restic-password")
	rs.Namespace = "shop-a"
	rs.Spec.Target = &storagev1alpha1.TypedObjectReference{Kind: "Namespace", Name: "shop-a"}
	rs.Spec.DataSource.Namespace = "default"
	rs.Spec.Addon = &corev1alpha1.AddonInfo{Name: "kubedump-addon", Tasks: []corev1alpha1.TaskReference{
		{Name: "manifest-restore", Params: &runtime.RawExtension{Raw: []byte(`{"sourceNamespace": "shop-a"}`)}},
	}}
	if err := kube.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	done := finishedRestore(t, kube, "shop-a", rs.Name)
	if done.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("restoresession shop-a/%s: phase %s, components %+v, conditions %+v", rs.Name, done.Status.Phase, done.Status.Components, done.Status.Conditions)
	}
	if diff := cmp.Diff([]string{"ConfigMap/prices=Created", "Secret/db=Created"}, outcomes(done.Status.Components[storagev1alpha1.ComponentManifest])); diff != "" {
		t.Errorf("objects recreated from the cluster dump: -want +got:\n%s", diff)
	}
	prices := &corev1.ConfigMap{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "shop-a", Name: "prices"}, prices); err != nil || prices.Data["apple"] != "3" {
		t.Errorf("the recreated ConfigMap: %v, %v", prices.Data, err)
	}

	// The whole dump recreated where it was, from the namespace the
	// provider lists, as an account the operator lets write the cluster:
	// what was lost comes back, what exists is kept.
	// The custom resource goes with its definition.
	for _, o := range []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "shop-viewer"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop-b"}},
		widgets,
	} {
		if err := kube.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, time.Minute, "the CustomResourceDefinition was not deleted", func(ctx context.Context) (bool, error) {
		return kerrors.IsNotFound(kube.Get(ctx, client.ObjectKey{Name: "widgets.example.com"}, unstructuredYAML(t, widgetCRD))), nil
	})
	for _, o := range []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "cluster-writer", Namespace: "default"}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "cluster-dump-writer"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "cluster-dump-writer"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-dump-writer"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "cluster-writer", Namespace: "default"}}},
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	whole := restoreSession("whole", "", snap.Name, "")
	whole.Spec.Target = &storagev1alpha1.TypedObjectReference{Kind: "Namespace", Name: "default"}
	whole.Spec.Addon = &corev1alpha1.AddonInfo{Name: "kubedump-addon", JobTemplate: jobAccount("cluster-writer"), Tasks: []corev1alpha1.TaskReference{
		{Name: "manifest-restore", Params: &runtime.RawExtension{Raw: []byte(`{"sourceNamespace": "*"}`)}},
	}}
	if err := kube.Create(ctx, whole); err != nil {
		t.Fatal(err)
	}
	done = finishedRestore(t, kube, "default", whole.Name)
	got := outcomes(done.Status.Components[storagev1alpha1.ComponentManifest])
	if done.Status.Phase != corev1alpha1.RestoreSucceeded || !slices.Contains(got, "ClusterRole/shop-viewer=Created") || !slices.Contains(got, "Deployment/web=Created") ||
		!slices.Contains(got, "CustomResourceDefinition/widgets.example.com=Created") || !slices.Contains(got, "Widget/blue=Created") ||
		!slices.Contains(got, "ConfigMap/prices=Kept") || len(got) != len(names) {
		t.Fatalf("the whole dump recreated: %s, %v; want the lost ClusterRole, Deployment, definition and Widget Created, the rest Kept", done.Status.Phase, got)
	}
	back := unstructuredYAML(t, "{apiVersion: example.com/v1, kind: Widget}")
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "shop-b", Name: "blue"}, back); err != nil {
		t.Errorf("the recreated Widget: %v", err)
	} else if colour, _, _ := unstructured.NestedString(back.Object, "spec", "colour"); colour != "blue" {
		t.Errorf("the recreated Widget's colour is %q, want blue", colour)
	}
	if err := kube.Get(ctx, client.ObjectKey{Name: "shop-viewer"}, &rbacv1.ClusterRole{}); err != nil {
		t.Errorf("the recreated ClusterRole: %v", err)
	}
	poll(t, time.Minute, "the recreated Deployment was not released", func(ctx context.Context) (bool, error) {
		d := &appsv1.Deployment{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "shop-b", Name: "web"}, d); err != nil {
			return false, nil
		}
		_, held := d.Annotations[corev1alpha1.AnnotationHeldReplicas]
		return !held && ptr.Deref(d.Spec.Replicas, 0) == 1, nil
	})

	other := &corev1alpha1.BackupConfiguration{}
	poll(t, time.Minute, "the cluster dump of a namespace the provider does not list was not refused", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "other", Name: "app-backup"}, other); err != nil {
			return false, nil
		}
		v := other.GetCondition(corev1alpha1.TypeValidationPassed)
		return other.Status.Phase == corev1alpha1.BackupInvokerInvalid && strings.Contains(v.Message, "--cluster-dump-namespaces"), nil
	})
	sessions := &corev1alpha1.BackupSessionList{}
	if err := kube.List(ctx, sessions, client.InNamespace("other")); err != nil || len(sessions.Items) != 0 {
		t.Errorf("the refused configuration ran %d sessions (%v)", len(sessions.Items), err)
	}
}
