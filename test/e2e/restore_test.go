package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/provider"
)

// restoreSession restores the app repository's snapshot into a Deployment
// with the workload-addon's restore task.
func restoreSession(name, target, snapshot, secret string) *corev1alpha1.RestoreSession {
	rs := &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target:     &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: target},
			DataSource: corev1alpha1.RestoreDataSource{Repository: "app", Snapshot: snapshot},
			Addon: &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{
				Name: "logical-backup-restore", Params: &runtime.RawExtension{Raw: []byte(`{"paths": ["/var/lib/app"]}`)},
			}}},
			RestoreTimeout: &metav1.Duration{Duration: 2 * time.Minute},
		},
	}
	if secret != "" {
		rs.Spec.DataSource.EncryptionSecret = &storagev1alpha1.ObjectReference{Name: secret}
	}
	return rs
}

// appWithHostDir is a Deployment whose data volume is a host directory
// mounted at /var/lib/app.
func appWithHostDir(name, dir string) client.Object {
	app := deployment(name)
	app.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/app"}}
	app.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}}}
	return app
}

// restoreLogsOnFailure logs the restore Jobs' pods when the test failed.
func restoreLogsOnFailure(t *testing.T, kube client.Client, cfg *rest.Config, namespaces ...string) {
	if !t.Failed() {
		return
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return
	}
	if len(namespaces) == 0 {
		namespaces = []string{"default"}
	}
	for _, ns := range namespaces {
		pods := &corev1.PodList{}
		if err := kube.List(context.Background(), pods, client.InNamespace(ns), client.HasLabels{"stashplane.io/session"}); err != nil {
			return
		}
		for _, p := range pods.Items {
			if len(p.Spec.Containers) > 0 && p.Status.Phase != corev1.PodPending {
				t.Logf("pod %s/%s:\n%s", ns, p.Name, podLogs(t, cs, ns, p.Name, p.Spec.Containers[0].Name))
			}
		}
	}
}

// The restore flow after the seed backup: a RestoreSession of the latest
// Snapshot into a second Deployment succeeds with byte-identical files and
// the agent's report of its component; a missing target and a missing
// snapshot are refused with their reasons and no Job; a wrong password
// fails with restic's reason, never the password, and leaves the target's
// files as they were.
func TestRestoreEndToEnd(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &batchv1.JobList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	storageDir, data, restored, untouched := storageDir(t), t.TempDir(), t.TempDir(), t.TempDir()
	generate(t, data, 120, 11)
	if err := os.WriteFile(filepath.Join(untouched, "keep.txt"), []byte("existing data of the target\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := digest(t, untouched)
	const wrongPassword = "not the repository password 41d2"
	for _, o := range []client.Object{
		localStorage("shared", "default", storageDir, nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "wrong-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(wrongPassword)}},
		appWithHostDir("app", data),
		appWithHostDir("app-restored", restored),
		appWithHostDir("app-untouched", untouched),
		configuration(`{"paths": ["/var/lib/app"]}`),
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, 3*time.Minute, "the first backup did not succeed", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		return list.Items[0].Status.Phase == corev1alpha1.BackupSessionSucceeded, nil
	})

	for _, rs := range []*corev1alpha1.RestoreSession{
		restoreSession("latest", "app-restored", corev1alpha1.SnapshotLatest, ""),
		restoreSession("no-target", "app-missing", corev1alpha1.SnapshotLatest, ""),
		restoreSession("no-snapshot", "app-restored", "app-missing-snapshot", ""),
		restoreSession("wrong-password", "app-untouched", corev1alpha1.SnapshotLatest, "wrong-password"),
	} {
		if err := kube.Create(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	finished := func(name string) *corev1alpha1.RestoreSession {
		t.Helper()
		return finishedRestore(t, kube, "default", name)
	}
	jobsOf := func(name string) int {
		jobs := &batchv1.JobList{}
		if err := kube.List(ctx, jobs, client.InNamespace("default"), client.MatchingLabels{"core.stashplane.io/restoresession": name}); err != nil {
			t.Fatal(err)
		}
		return len(jobs.Items)
	}

	// (a) The latest snapshot, restored into a second Deployment.
	rs := finished("latest")
	comp := rs.Status.Components[storagev1alpha1.ComponentDump]
	if rs.Status.Phase != corev1alpha1.RestoreSucceeded || comp.Phase != corev1alpha1.RestoreSucceeded || comp.Duration == "" {
		t.Fatalf("restoresession latest: phase %s, component %+v, conditions %+v", rs.Status.Phase, comp, rs.Status.Conditions)
	}
	if diff := cmp.Diff(digest(t, data), digest(t, restored)); diff != "" {
		t.Errorf("restored files: -backed up +restored:\n%s", diff)
	}

	// (b) and (c): refused, with their reasons, and no Job.
	for name, want := range map[string]struct {
		ct     xpv2.ConditionType
		reason xpv2.ConditionReason
	}{
		"no-target":   {corev1alpha1.TypeRestoreTargetFound, corev1alpha1.ReasonRestoreTargetNotFound},
		"no-snapshot": {corev1alpha1.TypeRestoreExecutorEnsured, corev1alpha1.ReasonRestoreSnapshotNotFound},
	} {
		rs := finished(name)
		c := rs.GetCondition(want.ct)
		if rs.Status.Phase == corev1alpha1.RestoreSucceeded || c.Status != corev1.ConditionFalse || c.Reason != want.reason {
			t.Errorf("restoresession %s: phase %s, %s %s %s (%s), want False %s", name, rs.Status.Phase, want.ct, c.Status, c.Reason, c.Message, want.reason)
		}
		if n := jobsOf(name); n != 0 {
			t.Errorf("restoresession %s made %d jobs, want none", name, n)
		}
	}

	// (d) A wrong password fails with restic's reason and writes nothing.
	rs = finished("wrong-password")
	comp = rs.Status.Components[storagev1alpha1.ComponentDump]
	if rs.Status.Phase != corev1alpha1.RestoreFailed || comp.Phase != corev1alpha1.RestoreFailed || !strings.Contains(comp.Error, "WrongPassword") {
		t.Errorf("restoresession wrong-password: phase %s, component %+v", rs.Status.Phase, comp)
	}
	if c := rs.GetCondition(corev1alpha1.TypeRestoreIncomplete); c.Status != corev1.ConditionTrue || !strings.Contains(c.Message, "WrongPassword") {
		t.Errorf("restoresession wrong-password: RestoreIncomplete %s %s (%s), want True naming WrongPassword", c.Status, c.Reason, c.Message)
	}
	b, _ := yaml.Marshal(rs)
	if strings.Contains(string(b), wrongPassword) || strings.Contains(string(b), agentPassword) {
		t.Errorf("restoresession wrong-password shows a password:\n%s", b)
	}
	if diff := cmp.Diff(before, digest(t, untouched)); diff != "" {
		t.Errorf("the target of a refused restore changed: -before +after:\n%s", diff)
	}
}
