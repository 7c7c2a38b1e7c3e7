package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/controllers/backupblueprint"
	"github.com/stashplane/stashplane/internal/backend"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/verify"
)

// Workloads are protected by a BackupBlueprint without a configuration
// written for each: a Deployment annotated with the blueprint's name, and a
// Deployment created in a namespace whose label the blueprint's subjects
// select, each get a BackupConfiguration from the template with their
// variables written in, and back up; the verifier the template names
// verifies their Snapshots. A workload that opts out, and one
// whose annotations leave a variable unfilled, get none; the blueprint's
// status counts and names them. Removing the annotation removes the
// configuration and keeps its Snapshots and data.
func TestBlueprints(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupBlueprintList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupConfigurationList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	storageDir := t.TempDir()
	storage := localStorage("shared", "default", storageDir, nil)
	storage.Spec.UsagePolicy = &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromAll)}}
	blueprint := &corev1alpha1.BackupBlueprint{
		ObjectMeta: metav1.ObjectMeta{Name: "workloads", Namespace: "default"},
		Spec: corev1alpha1.BackupBlueprintSpec{
			UsagePolicy: &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromAll)}},
			Subjects: &corev1alpha1.BlueprintSubjects{
				NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"backup": "auto"}},
				Kinds:             []corev1alpha1.BlueprintKind{"Deployment"},
			},
			BackupConfigurationTemplate: corev1alpha1.BackupConfigurationTemplate{
				Backends: []corev1alpha1.BackendReference{{Name: "local", StorageRef: &storagev1alpha1.ObjectReference{Name: "shared", Namespace: "default"}}},
				Sessions: []corev1alpha1.Session{{
					Name:      "nightly",
					Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "0 2 * * *"},
					Addon: &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{
						Name: "logical-backup", Params: &runtime.RawExtension{Raw: []byte(`{"paths": "${paths}"}`)},
					}}},
					Repositories: []corev1alpha1.RepositoryInfo{{
						Name: "${targetName}", Backend: "local", Directory: "${namespace}/${targetName}",
						EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"},
						BackupVerifier:   &storagev1alpha1.ObjectReference{Name: "verifier"},
					}},
				}},
			},
		},
	}
	app := func(ns, name string, annotations map[string]string) *appsv1.Deployment {
		d := appWithHostDir(name, t.TempDir()).(*appsv1.Deployment)
		d.Namespace, d.Annotations = ns, annotations
		generate(t, d.Spec.Template.Spec.Volumes[0].HostPath.Path, 5, 3)
		return d
	}
	asks := map[string]string{corev1alpha1.AnnotationBlueprintName: "workloads", corev1alpha1.AnnotationVariablePrefix + "paths": "/var/lib/app"}
	paths := map[string]string{corev1alpha1.AnnotationVariablePrefix + "paths": "/var/lib/app"}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"backup": "auto"}}},
		storage,
		blueprint,
		app("default", "annotated", asks),
		app("default", "bare", nil),
		app("default", "unfilled", map[string]string{corev1alpha1.AnnotationBlueprintName: "workloads"}),
		app("team-a", "selected", paths),
		app("team-a", "opted-out", map[string]string{corev1alpha1.AnnotationBlueprintSkip: "true"}),
	}
	for _, ns := range []string{"default", "team-a"} {
		v := verifierWith("verifier", `{"mountPath": "/var/lib/app"}`)
		v.Namespace = ns
		objs = append(objs, v, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: ns}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}})
	}
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	// The blueprint protects the annotated and the selected Deployment,
	// and names the one whose variable it cannot fill.
	poll(t, time.Minute, "the blueprint did not protect its workloads", func(ctx context.Context) (bool, error) {
		err := kube.Get(ctx, client.ObjectKeyFromObject(blueprint), blueprint)
		return err == nil && blueprint.Status.Protected == 2 && len(blueprint.Status.Failures) == 1, nil
	})
	wantFailures := []corev1alpha1.BlueprintFailure{{Kind: "Deployment", Namespace: "default", Name: "unfilled",
		Reason: "backupblueprint default/workloads uses variables paths that Deployment default/unfilled does not give: annotate it with variables.stashplane.io/<name>"}}
	if diff := cmp.Diff(wantFailures, blueprint.Status.Failures); diff != "" {
		t.Errorf("blueprint failures (-want +got):\n%s", diff)
	}
	if c := blueprint.GetCondition(corev1alpha1.TypeWorkloadsProtected); c.Status != corev1.ConditionFalse || c.Reason != corev1alpha1.ReasonSomeUnprotected {
		t.Errorf("WorkloadsProtected: %s %s %q", c.Status, c.Reason, c.Message)
	}
	list := &corev1alpha1.BackupConfigurationList{}
	if err := kube.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	var made []string
	for _, bc := range list.Items {
		made = append(made, bc.Namespace+"/"+bc.Name)
	}
	if diff := cmp.Diff([]string{"default/deployment-annotated", "team-a/deployment-selected"}, made); diff != "" {
		t.Errorf("configurations (-want +got):\n%s", diff)
	}

	// Each made configuration backs its workload up into the directory its
	// variables name.
	for _, w := range []struct{ ns, name string }{{"default", "annotated"}, {"team-a", "selected"}} {
		cfg := backupblueprint.ConfigurationName("Deployment", w.name)
		poll(t, 3*time.Minute, fmt.Sprintf("the first backup of %s/%s did not succeed", w.ns, w.name), func(ctx context.Context) (bool, error) {
			sessions := &corev1alpha1.BackupSessionList{}
			if err := kube.List(ctx, sessions, client.InNamespace(w.ns), client.MatchingLabels{corev1alpha1.LabelInvokerName: cfg}); err != nil || len(sessions.Items) == 0 {
				return false, nil
			}
			if p := sessions.Items[0].Status.Phase; p == corev1alpha1.BackupSessionFailed {
				return false, fmt.Errorf("the first backup of %s/%s failed", w.ns, w.name)
			}
			return sessions.Items[0].Status.Phase == corev1alpha1.BackupSessionSucceeded, nil
		})
		key := backend.RepositoryKey(w.ns + "/" + w.name)
		if _, err := os.Stat(filepath.Join(storageDir, "backups", key)); err != nil {
			t.Errorf("the backup of %s/%s wrote no repository record at %s: %v", w.ns, w.name, key, err)
		}
	}

	// Each namespace's verifier, which the template names, verifies what
	// the made configurations backed up.
	for _, ns := range []string{"default", "team-a"} {
		started, err := verify.Now(ctx, kube, ns, "verifier", "", time.Now())
		if err != nil || len(started) != 1 {
			t.Fatalf("verify.Now in %s: %d sessions, %v", ns, len(started), err)
		}
		snapshot := started[0].Spec.Snapshot
		poll(t, 3*time.Minute, "the Snapshot "+ns+"/"+snapshot+" was not verified", func(ctx context.Context) (bool, error) {
			snap := &storagev1alpha1.Snapshot{}
			if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: snapshot}, snap); err != nil {
				return false, nil
			}
			if snap.Status.VerificationStatus == storagev1alpha1.SnapshotVerificationFailed {
				return false, fmt.Errorf("snapshot %s/%s failed its verification", ns, snapshot)
			}
			return snap.Status.VerificationStatus == storagev1alpha1.SnapshotVerified, nil
		})
	}

	// The annotation goes: so does the configuration; its Snapshot and
	// data stay.
	annotated := &appsv1.Deployment{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "annotated"}, annotated); err != nil {
		t.Fatal(err)
	}
	delete(annotated.Annotations, corev1alpha1.AnnotationBlueprintName)
	if err := kube.Update(ctx, annotated); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the configuration of the workload that stopped asking did not go", func(ctx context.Context) (bool, error) {
		err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "deployment-annotated"}, &corev1alpha1.BackupConfiguration{})
		return client.IgnoreNotFound(err) == nil && err != nil, nil
	})
	snaps := &storagev1alpha1.SnapshotList{}
	if err := kube.List(ctx, snaps, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	if len(snaps.Items) == 0 || snaps.Items[0].Status.Phase != storagev1alpha1.SnapshotSucceeded {
		t.Errorf("after the configuration went, default holds %d Snapshots", len(snaps.Items))
	}
	restored := t.TempDir()
	repoDir := filepath.Join(storageDir, "backups", backend.ResticPrefix("default/annotated", "nightly", storagev1alpha1.ComponentDump))
	hostRestic(t, repoDir, "restore", "latest", "--target", restored)
	if _, err := os.Stat(filepath.Join(restored, "var/lib/app")); err != nil {
		t.Errorf("the data of the removed configuration does not restore: %v", err)
	}
	poll(t, time.Minute, "the blueprint did not count the workload that stopped asking", func(ctx context.Context) (bool, error) {
		err := kube.Get(ctx, client.ObjectKeyFromObject(blueprint), blueprint)
		return err == nil && blueprint.Status.Protected == 1, nil
	})
}
