package e2e

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/sessionjob"
	"github.com/stashplane/stashplane/internal/verify"
)

// A restore and a verification that start while a prune of their
// Repository runs wait, as a backup does: the RestoreSession stays Pending
// with WaitingForPrune and makes no Job, the verification session shows
// the wait in RestoreSucceeded; once the prune has ended both go on and
// succeed. The prune is stood in for by a Job that sleeps under the prune
// Job's name and label.
func TestRestoreAndVerificationWaitForPrune(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Sessions[0].Repositories[0].BackupVerifier = &storagev1alpha1.ObjectReference{Name: "app-verifier"}
	verifier := verifierWith("app-verifier", `{"mountPath": "/var/lib/app"}`)
	startRetention(t, kube, bc, localStorage("shared", "default", storageDir(t), nil), verifier)
	snaps := appSnapshots(t, kube)
	if len(snaps) != 1 {
		t.Fatalf("snapshots after the first backup: %v, want one", snaps)
	}

	prune := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: naming.PruneJob("app"), Namespace: "default", Labels: map[string]string{plan.LabelPruneOf: "app"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{busybox("prune", "sleep 600")}}}},
	}
	// Labelled as the prune Jobs Stashplane makes are, for the provider's
	// cache to hold it.
	sessionjob.Mark(prune)
	if err := kube.Create(ctx, prune); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, appWithHostDir("app-restored", t.TempDir())); err != nil {
		t.Fatal(err)
	}
	rs := restoreSession("during-prune", "app-restored", corev1alpha1.SnapshotLatest, "")
	if err := kube.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	vt := &verificationTest{t: t, kube: kube}
	bvs := verify.Session("default", verifier.Name, vt.snapshot(snaps[0]), time.Now())
	if err := kube.Create(ctx, bvs); err != nil {
		t.Fatal(err)
	}

	poll(t, 2*time.Minute, "the restore and the verification did not wait for the prune", func(ctx context.Context) (bool, error) {
		got := &corev1alpha1.RestoreSession{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(rs), got); err != nil {
			return false, nil
		}
		v := &corev1alpha1.BackupVerificationSession{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(bvs), v); err != nil {
			return false, nil
		}
		c := got.GetCondition(corev1alpha1.TypeRestoreExecutorEnsured)
		vc := v.GetCondition(corev1alpha1.TypeRestoreSucceeded)
		return got.Status.Phase == corev1alpha1.RestorePending && c.Reason == corev1alpha1.ReasonWaitingForPrune &&
			v.Status.Phase == corev1alpha1.VerificationSessionRunning && vc.Reason == corev1alpha1.ReasonWaitingForPrune, nil
	})
	time.Sleep(5 * time.Second)
	got := &corev1alpha1.RestoreSession{}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(rs), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1alpha1.RestorePending {
		t.Fatalf("the restore is %s while the prune runs, want Pending", got.Status.Phase)
	}
	jobs := &batchv1.JobList{}
	if err := kube.List(ctx, jobs, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		if j.Name != prune.Name && j.CreationTimestamp.After(prune.CreationTimestamp.Time) && j.Labels[plan.LabelPruneOf] == "" {
			t.Errorf("job %s was made while the prune runs", j.Name)
		}
	}

	if err := kube.Delete(ctx, prune, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	if got = finishedRestore(t, kube, "default", rs.Name); got.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Errorf("the restore after the prune ended %s: %+v", got.Status.Phase, got.Status.Conditions)
	}
	if v := vt.finished(bvs.Name); v.Status.Phase != corev1alpha1.VerificationSessionSucceeded {
		t.Errorf("the verification after the prune ended %s: %+v", v.Status.Phase, v.Status.Conditions)
	}
}
