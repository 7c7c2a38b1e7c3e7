package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/controllers/backupblueprint"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/verify"
)

// tieredBlueprint is examples/blueprints' "workloads" blueprint, named
// "tiered", without subjects, its directory needing the variable tier.
func tieredBlueprint(t *testing.T) client.Object {
	t.Helper()
	for _, o := range example(t, "blueprints/blueprints.yaml", nil) {
		if o.GetKind() != "BackupBlueprint" || o.GetName() != "workloads" {
			continue
		}
		o.SetName("tiered")
		unstructured.RemoveNestedField(o.Object, "spec", "subjects")
		sessions, _, _ := unstructured.NestedSlice(o.Object, "spec", "backupConfigurationTemplate", "sessions")
		sessions[0].(map[string]any)["repositories"].([]any)[0].(map[string]any)["directory"] = "${tier}/${targetName}"
		_ = unstructured.SetNestedSlice(o.Object, sessions, "spec", "backupConfigurationTemplate", "sessions")
		return o
	}
	t.Fatal("examples/blueprints/blueprints.yaml has no blueprint workloads")
	return nil
}

// protectedWorkload is a workload a blueprint made a configuration and a
// verifier for, with the component its Snapshots hold.
type protectedWorkload struct {
	kind, ns, name, component string
}

// Workloads of every kind are protected by the BackupBlueprints of
// examples/blueprints, as written, without a configuration or a verifier
// written for any: a Deployment, a StatefulSet
// and a DaemonSet annotated with the blueprint "workloads" (workload-addon),
// a claim annotated with "claims" (pvc-addon), and a Deployment created in
// a namespace whose label the workloads blueprint's subjects select, each
// get a BackupConfiguration and a BackupVerifier from the templates; each
// backs up (a StatefulSet pod by pod, a DaemonSet node by node) and its
// Snapshot is Verified by the made verifier, the blueprint's retention
// policy applied. A workload that opts out, and
// one whose annotations leave a variable unfilled, get none; the
// blueprints' status counts and names them. Removing the annotation
// removes the configuration and the verifier and keeps the Snapshot and
// data, which plain restic restores.
func TestBlueprints(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config(), "default", "team-a")
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupBlueprintList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupConfigurationList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defer dumpOnFailure(t, kube, &batchv1.JobList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	storageDir := localExampleStorage(t, kube)
	var examples []client.Object
	for _, o := range example(t, "blueprints/blueprints.yaml", nil) {
		examples = append(examples, o)
	}
	workloads := &corev1alpha1.BackupBlueprint{ObjectMeta: metav1.ObjectMeta{Name: "workloads", Namespace: "default"}}
	claims := &corev1alpha1.BackupBlueprint{ObjectMeta: metav1.ObjectMeta{Name: "claims", Namespace: "default"}}
	tiered := &corev1alpha1.BackupBlueprint{ObjectMeta: metav1.ObjectMeta{Name: "tiered", Namespace: "default"}}
	app := func(ns, name string, annotations map[string]string) *appsv1.Deployment {
		d := appWithHostDir(name, t.TempDir()).(*appsv1.Deployment)
		d.Namespace, d.Annotations = ns, annotations
		generate(t, d.Spec.Template.Spec.Volumes[0].HostPath.Path, 5, 3)
		return d
	}
	asks := func(blueprint string) map[string]string {
		return map[string]string{corev1alpha1.AnnotationBlueprintName: blueprint}
	}
	agentDir := t.TempDir()
	generate(t, agentDir, 7, 5)
	files := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "files", Namespace: "default"}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Mi")}},
	}}
	objs := append(examples,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"backup": "auto"}}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "demo-restic-password", Namespace: "team-a"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		tieredBlueprint(t),
		statefulSet("db", 1), daemonSet("agent", agentDir), files,
		app("default", "annotated", asks("workloads")),
		app("default", "bare", nil),
		app("default", "unfilled", asks("tiered")),
		app("team-a", "selected", nil),
		app("team-a", "opted-out", map[string]string{corev1alpha1.AnnotationBlueprintSkip: "true"}),
	)
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	// The StatefulSet, DaemonSet and claim are annotated once their data
	// is in place: the StatefulSet's pod runs with its claim, the
	// DaemonSet's pod runs on the node, the claim is bound.
	generate(t, claimDir(t, kube, "data-db-0"), 6, 4)
	generate(t, claimDir(t, kube, "files"), 8, 6)
	var node string
	poll(t, 3*time.Minute, "the StatefulSet's and DaemonSet's pods did not run", func(ctx context.Context) (bool, error) {
		sts := &appsv1.StatefulSet{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "db"}, sts); err != nil || sts.Status.ReadyReplicas != 1 {
			return false, nil
		}
		pods := &corev1.PodList{}
		if err := kube.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{"app": "agent"}); err != nil || len(pods.Items) != 1 {
			return false, nil
		}
		node = pods.Items[0].Spec.NodeName
		return node != "" && pods.Items[0].Status.Phase == corev1.PodRunning, nil
	})
	for _, a := range []struct {
		obj       client.Object
		blueprint string
	}{
		{&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"}}, "workloads"},
		{&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"}}, "workloads"},
		{&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "files"}}, "claims"},
	} {
		a.obj.SetNamespace("default")
		update(t, kube, a.obj, func() { a.obj.SetAnnotations(asks(a.blueprint)) })
	}

	// The blueprints protect the annotated and the selected workloads, and
	// name the one whose variable they cannot fill.
	protected := func(bp *corev1alpha1.BackupBlueprint, n int32, failures int) {
		poll(t, time.Minute, "blueprint "+bp.Name+" did not protect its workloads", func(ctx context.Context) (bool, error) {
			err := kube.Get(ctx, client.ObjectKeyFromObject(bp), bp)
			return err == nil && bp.Status.Protected == n && len(bp.Status.Failures) == failures, nil
		})
	}
	protected(workloads, 4, 0)
	protected(claims, 1, 0)
	protected(tiered, 0, 1)
	wantFailures := []corev1alpha1.BlueprintFailure{{Kind: "Deployment", Namespace: "default", Name: "unfilled",
		Reason: "backupblueprint default/tiered uses variables tier that Deployment default/unfilled does not give: annotate it with variables.stashplane.io/<name>"}}
	if diff := cmp.Diff(wantFailures, tiered.Status.Failures); diff != "" {
		t.Errorf("blueprint failures (-want +got):\n%s", diff)
	}
	if c := tiered.GetCondition(corev1alpha1.TypeWorkloadsProtected); c.Status != corev1.ConditionFalse || c.Reason != corev1alpha1.ReasonSomeUnprotected {
		t.Errorf("WorkloadsProtected: %s %s %q", c.Status, c.Reason, c.Message)
	}
	wantMade := []string{"default/daemonset-agent", "default/deployment-annotated", "default/persistentvolumeclaim-files", "default/statefulset-db", "team-a/deployment-selected"}
	configs := &corev1alpha1.BackupConfigurationList{}
	verifiers := &corev1alpha1.BackupVerifierList{}
	if err := kube.List(ctx, configs); err != nil {
		t.Fatal(err)
	}
	if err := kube.List(ctx, verifiers); err != nil {
		t.Fatal(err)
	}
	var madeConfigs, madeVerifiers []string
	for _, bc := range configs.Items {
		madeConfigs = append(madeConfigs, bc.Namespace+"/"+bc.Name)
	}
	for _, v := range verifiers.Items {
		madeVerifiers = append(madeVerifiers, v.Namespace+"/"+v.Name)
	}
	if diff := cmp.Diff(wantMade, madeConfigs); diff != "" {
		t.Errorf("configurations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantMade, madeVerifiers); diff != "" {
		t.Errorf("verifiers (-want +got):\n%s", diff)
	}

	// Each made configuration backs its workload up, in the components of
	// its kind, into the directory its variables name; each made verifier
	// verifies the Snapshot.
	protects := []protectedWorkload{
		{"Deployment", "default", "annotated", storagev1alpha1.ComponentDump},
		{"StatefulSet", "default", "db", "dump-pod-0"},
		{"DaemonSet", "default", "agent", plan.NodeComponent(node)},
		{"PersistentVolumeClaim", "default", "files", storagev1alpha1.ComponentDump},
		{"Deployment", "team-a", "selected", storagev1alpha1.ComponentDump},
	}
	for _, w := range protects {
		snap := blueprintBackup(t, kube, w)
		dir := w.ns + "/" + w.kind + "/" + w.name
		if _, err := os.Stat(filepath.Join(storageDir, "backups", layout.RepositoryKey(dir))); err != nil {
			t.Errorf("the backup of %s %s/%s wrote no repository record in %s: %v", w.kind, w.ns, w.name, dir, err)
		}
		if got, want := strings.TrimSuffix(snap.Status.Components[w.component].Path, "/"), strings.TrimSuffix(layout.ResticPrefix(dir, "nightly", w.component), "/"); got != want {
			t.Errorf("the backup of %s %s/%s is at %q, want %q", w.kind, w.ns, w.name, got, want)
		}
		started, err := verify.Now(ctx, kube, w.ns, backupblueprint.ConfigurationName(w.kind, w.name), "", time.Now())
		if err != nil || len(started) != 1 {
			t.Fatalf("verify.Now of %s %s/%s: %d sessions, %v", w.kind, w.ns, w.name, len(started), err)
		}
		poll(t, 3*time.Minute, fmt.Sprintf("the Snapshot %s/%s was not verified", w.ns, snap.Name), func(ctx context.Context) (bool, error) {
			if err := kube.Get(ctx, client.ObjectKeyFromObject(snap), snap); err != nil {
				return false, nil
			}
			if snap.Status.VerificationStatus == storagev1alpha1.SnapshotVerificationFailed {
				return false, fmt.Errorf("snapshot %s/%s failed its verification", w.ns, snap.Name)
			}
			return snap.Status.VerificationStatus == storagev1alpha1.SnapshotVerified, nil
		})
	}

	// The annotation goes: so do the configuration and the verifier; the
	// Snapshot and data stay.
	annotated := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "annotated"}}
	update(t, kube, annotated, func() { delete(annotated.Annotations, corev1alpha1.AnnotationBlueprintName) })
	poll(t, time.Minute, "the configuration and verifier of the workload that stopped asking did not go", func(ctx context.Context) (bool, error) {
		key := client.ObjectKey{Namespace: "default", Name: "deployment-annotated"}
		errC := kube.Get(ctx, key, &corev1alpha1.BackupConfiguration{})
		errV := kube.Get(ctx, key, &corev1alpha1.BackupVerifier{})
		return client.IgnoreNotFound(errC) == nil && errC != nil && client.IgnoreNotFound(errV) == nil && errV != nil, nil
	})
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "annotated-" + madeSession(t, kube, "default", "deployment-annotated")}, snap); err != nil ||
		snap.Status.Phase != storagev1alpha1.SnapshotSucceeded || snap.Status.VerificationStatus != storagev1alpha1.SnapshotVerified {
		t.Errorf("after the configuration went, its Snapshot is %s, %s (%v); want Succeeded and Verified", snap.Status.Phase, snap.Status.VerificationStatus, err)
	}
	restored := t.TempDir()
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/Deployment/annotated", "nightly", storagev1alpha1.ComponentDump))
	hostRestic(t, repoDir, "restore", "latest", "--target", restored)
	if _, err := os.Stat(filepath.Join(restored, "var/lib/app")); err != nil {
		t.Errorf("the data of the removed configuration does not restore: %v", err)
	}
	protected(workloads, 3, 0)
}

// madeSession names the one BackupSession of a configuration.
func madeSession(t *testing.T, kube client.Client, ns, config string) string {
	t.Helper()
	sessions := &corev1alpha1.BackupSessionList{}
	if err := kube.List(context.Background(), sessions, client.InNamespace(ns), client.MatchingLabels{corev1alpha1.LabelInvokerName: config}); err != nil || len(sessions.Items) == 0 {
		t.Fatalf("no backupsession of %s/%s: %v", ns, config, err)
	}
	return sessions.Items[0].Name
}

// blueprintBackup waits for the first backup of w's made configuration to
// succeed, with the RetentionPolicy keep-7 applied, and returns its
// Snapshot, which must hold w's component alone.
func blueprintBackup(t *testing.T, kube client.Client, w protectedWorkload) *storagev1alpha1.Snapshot {
	t.Helper()
	cfg := backupblueprint.ConfigurationName(w.kind, w.name)
	poll(t, 3*time.Minute, fmt.Sprintf("the first backup of %s %s/%s did not succeed", w.kind, w.ns, w.name), func(ctx context.Context) (bool, error) {
		sessions := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, sessions, client.InNamespace(w.ns), client.MatchingLabels{corev1alpha1.LabelInvokerName: cfg}); err != nil || len(sessions.Items) == 0 {
			return false, nil
		}
		if p := sessions.Items[0].Status.Phase; p == corev1alpha1.BackupSessionFailed {
			return false, fmt.Errorf("the first backup of %s %s/%s failed", w.kind, w.ns, w.name)
		}
		if sessions.Items[0].Status.Phase != corev1alpha1.BackupSessionSucceeded {
			return false, nil
		}
		applied := sessions.Items[0].Status.RetentionPolicy
		return len(applied) == 1 && applied[0].Ref.Name == "keep-7" && applied[0].Phase == corev1alpha1.RetentionPolicyApplied, nil
	})
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: w.name + "-" + madeSession(t, kube, w.ns, cfg)}, snap); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range snap.Status.Components {
		names = append(names, n)
	}
	if diff := cmp.Diff([]string{w.component}, names); diff != "" || snap.Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Fatalf("snapshot %s/%s of %s: phase %s, components -want +got:\n%s", w.ns, snap.Name, w.kind, snap.Status.Phase, diff)
	}
	return snap
}
