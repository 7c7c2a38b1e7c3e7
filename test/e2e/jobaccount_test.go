package e2e

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// jobAccount is a jobTemplate running an addon's Jobs as ServiceAccount sa.
func jobAccount(sa string) *corev1alpha1.AddonJobTemplate {
	t := &corev1alpha1.AddonJobTemplate{}
	t.Spec.ServiceAccountName = sa
	return t
}

// A jobTemplate that names a ServiceAccount of the user's, as KubeStash's
// guides write it, runs the backup and the restore Jobs as that account,
// and it is granted what they need (read the storage, report): the backup
// succeeds and the restore gives the files back, each Job's pod running
// as the named account.
func TestNamedJobAccounts(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &batchv1.JobList{})
	for _, sa := range []string{"backup-runner", "restore-runner"} {
		if err := kube.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: "default"}}); err != nil {
			t.Fatal(err)
		}
	}
	_, data := seedAppBackup(t, kube, 30, 23, func(_ *appsv1.Deployment, bc *corev1alpha1.BackupConfiguration) {
		bc.Spec.Sessions[0].Addon.JobTemplate = jobAccount("backup-runner")
	})
	snap := firstSnapshot(t, kube)
	if got := jobPodAccounts(t, kube, "default", client.HasLabels{corev1alpha1.LabelBackupSession}); !allAre(got, "backup-runner") {
		t.Errorf("the backup Jobs' pods ran as %v, want backup-runner", got)
	}

	restoredDir := t.TempDir()
	if err := kube.Create(ctx, appWithHostDir("restored", restoredDir)); err != nil {
		t.Fatal(err)
	}
	rs := restoreSession("named-account", "restored", snap, "")
	rs.Spec.Addon.JobTemplate = jobAccount("restore-runner")
	if err := kube.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	done := finishedRestore(t, kube, "default", rs.Name)
	if done.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("the restore as restore-runner: %s, conditions %+v, components %+v", done.Status.Phase, done.Status.Conditions, done.Status.Components)
	}
	if diff := cmp.Diff(digest(t, data), digest(t, restoredDir)); diff != "" {
		t.Errorf("restored files: -backed up +restored:\n%s", diff)
	}
	if got := jobPodAccounts(t, kube, "default", client.MatchingLabels{corev1alpha1.LabelRestoreSession: rs.Name}); !allAre(got, "restore-runner") {
		t.Errorf("the restore Jobs' pods ran as %v, want restore-runner", got)
	}
}

// jobPodAccounts are the ServiceAccounts of the pods of the Jobs the
// labels pick.
func jobPodAccounts(t *testing.T, kube client.Client, ns string, labels client.ListOption) []string {
	t.Helper()
	jobs := &batchv1.JobList{}
	if err := kube.List(context.Background(), jobs, client.InNamespace(ns), labels); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, j := range jobs.Items {
		out = append(out, j.Spec.Template.Spec.ServiceAccountName)
	}
	return out
}

func allAre(got []string, want string) bool {
	for _, g := range got {
		if g != want {
			return false
		}
	}
	return len(got) > 0
}
