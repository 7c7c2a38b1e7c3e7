package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestDebugTarget(t *testing.T) {
	cases := map[string]struct {
		reason  string
		arg     string
		kind    string
		name    string
		wantErr bool
	}{
		"Bare":        {"a bare name is a BackupSession, as before", "app-backup-nightly-1", "BackupSession", "app-backup-nightly-1", false},
		"Restore":     {"kubectl's TYPE/NAME names a RestoreSession", "restoresession/app-restore", "RestoreSession", "app-restore", false},
		"Plural":      {"the plural and the group suffix are accepted", "backupverificationsessions.core.stashplane.io/v-1", "BackupVerificationSession", "v-1", false},
		"UnknownKind": {"a kind debug cannot explain is refused", "pod/x", "", "", true},
		"MissingName": {"a kind without a name is refused", "restoresession/", "", "", true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kind, n, err := debugTarget(tc.arg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("%s: error %v, want error %v", tc.reason, err, tc.wantErr)
			}
			if diff := cmp.Diff([]string{tc.kind, tc.name}, []string{kind, n}); diff != "" {
				t.Errorf("%s: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestDebugVerification reads the chain of a failed verification from a
// real API server: the session's verdict, the RestoreSession it made in a
// scratch namespace with its failed component, the Snapshot it restores,
// the restore Job's pod and its last log lines. What cannot be read (the
// verifier, the Repository, the verifier Job) is reported in its link.
func TestDebugVerification(t *testing.T) {
	kube := apiServer(t)
	ctx := context.Background()
	ns, scratch := "cli-debug-verify", "cli-debug-scratch"
	namespace(t, kube, ns)
	namespace(t, kube, scratch)
	now := metav1.Now()
	bvs := &corev1alpha1.BackupVerificationSession{
		ObjectMeta: metav1.ObjectMeta{Name: "check-1", Namespace: ns},
		Spec: corev1alpha1.BackupVerificationSessionSpec{
			Invoker: storagev1alpha1.TypedObjectReference{APIGroup: corev1alpha1.Group, Kind: "BackupVerifier", Name: "check"},
			Session: "nightly", Repository: "app", Snapshot: "app-nightly-1",
		},
	}
	rs := &corev1alpha1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "check-1", Namespace: scratch},
		Spec: corev1alpha1.RestoreSessionSpec{
			Target:     &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "scratch"},
			DataSource: corev1alpha1.RestoreDataSource{Namespace: ns, Repository: "app", Snapshot: "app-nightly-1"},
		},
	}
	snap := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "app-nightly-1", Namespace: ns},
		Spec:       storagev1alpha1.SnapshotSpec{Repository: "app", Session: "nightly", BackupSession: "nightly-1"},
	}
	podSpec := corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "restore", Image: "stashplane"}}}
	labels := map[string]string{corev1alpha1.LabelRestoreSession: rs.Name, corev1alpha1.LabelComponent: "dump", storagev1alpha1.LabelRepository: "app"}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "check-1-dump", Namespace: scratch, Labels: labels},
		Spec:       batchv1.JobSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec}},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "check-1-dump-xyz", Namespace: scratch, Labels: map[string]string{batchv1.JobNameLabel: job.Name}},
		Spec:       podSpec,
	}
	for _, o := range []client.Object{bvs, rs, snap, job, pod} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	bvs.Status.Phase = corev1alpha1.VerificationSessionFailed
	bvs.Status.RestoreSession, bvs.Status.RestoreSessionNamespace, bvs.Status.VerifierJob = rs.Name, scratch, "check-1-query"
	bvs.Status.Conditions = []xpv2.Condition{{Type: "RestoreSucceeded", Status: corev1.ConditionFalse, Reason: "RestoreFailed", Message: "component dump failed", LastTransitionTime: now}}
	rs.Status.Phase = corev1alpha1.RestoreFailed
	rs.Status.Components = map[string]corev1alpha1.ComponentRestoreStatus{"dump": {Phase: corev1alpha1.RestoreFailed, Error: "DamagedPack: pack 1a2b3c4d is damaged"}}
	snap.Status.Phase = storagev1alpha1.SnapshotSucceeded
	pod.Status.Phase = corev1.PodFailed
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "restore", Image: "stashplane", ImageID: "stashplane",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", StartedAt: now, FinishedAt: now}}}}
	for _, o := range []client.Object{bvs, rs, snap, pod} {
		if err := kube.Status().Update(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	logs := func(_ context.Context, namespace, pod, container string, lines int64) (string, error) {
		if namespace != scratch || pod != "check-1-dump-xyz" || container != "restore" {
			return "", errors.New("no such log")
		}
		return "checking 100% of the data\nrestic check: pack 1a2b3c4d damaged\n", nil
	}
	got, err := debugVerification(ctx, kube, logs, ns, bvs.Name)
	if err != nil {
		t.Fatal(err)
	}
	ref := "BackupVerificationSession/" + bvs.Name
	want := &DebugReport{Kind: "BackupVerificationSession", Namespace: ns, Session: bvs.Name, Chain: []DebugLink{
		{Kind: "BackupVerifier", Name: "check", Details: []string{`cannot get it: backupverifiers.core.stashplane.io "check" not found`}},
		{Kind: "BackupVerificationSession", Name: bvs.Name, Phase: "Failed", Of: "BackupVerifier/check",
			Details: []string{"snapshot app-nightly-1", "RestoreSucceeded=False RestoreFailed: component dump failed"}},
		{Kind: "RestoreSession", Name: rs.Name, Phase: "Failed", Of: ref, Details: []string{"component dump: Failed: DamagedPack: pack 1a2b3c4d is damaged"}},
		{Kind: "Repository", Name: "app", Of: "RestoreSession/" + rs.Name,
			Details: []string{"in namespace " + ns, `cannot get it: repositories.storage.stashplane.io "app" not found`}},
		{Kind: "Snapshot", Name: snap.Name, Phase: "Succeeded", Of: "RestoreSession/" + rs.Name},
		{Kind: "Job", Name: job.Name, Phase: "Running", Of: "RestoreSession/" + rs.Name, Details: []string{"repository app, component dump"}},
		{Kind: "Pod", Name: pod.Name, Phase: "Failed", Of: "Job/" + job.Name,
			Details: []string{"container restore: terminated, exit code 2 (Error)"},
			Log:     []string{"[restore] checking 100% of the data", "[restore] restic check: pack 1a2b3c4d damaged"}},
		{Kind: "Job", Name: "check-1-query", Of: ref, Details: []string{`cannot get it: jobs.batch "check-1-query" not found`}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("debugVerification(...): -want +got:\n%s", diff)
	}
	b := &bytes.Buffer{}
	if err := writeDebug(b, got, ""); err != nil {
		t.Fatal(err)
	}
	text := `BackupVerifier check: <none>
  cannot get it: backupverifiers.core.stashplane.io "check" not found
  BackupVerificationSession check-1: Failed
    snapshot app-nightly-1
    RestoreSucceeded=False RestoreFailed: component dump failed
    RestoreSession check-1: Failed
      component dump: Failed: DamagedPack: pack 1a2b3c4d is damaged
      Repository app: <none>
        in namespace cli-debug-verify
        cannot get it: repositories.storage.stashplane.io "app" not found
      Snapshot app-nightly-1: Succeeded
      Job check-1-dump: Running
        repository app, component dump
        Pod check-1-dump-xyz: Failed
          container restore: terminated, exit code 2 (Error)
          last log lines:
            [restore] checking 100% of the data
            [restore] restic check: pack 1a2b3c4d damaged
    Job check-1-query: <none>
      cannot get it: jobs.batch "check-1-query" not found
`
	if diff := cmp.Diff(text, b.String()); diff != "" {
		t.Errorf("debug's text: -want +got:\n%s", diff)
	}

	restore, err := debugRestore(ctx, kube, logs, scratch, rs.Name)
	if err != nil {
		t.Fatal(err)
	}
	root := want.Chain[2]
	root.Of = ""
	if diff := cmp.Diff(append([]DebugLink{root}, want.Chain[3:7]...), restore.Chain); diff != "" {
		t.Errorf("debugRestore(...) chain: -want +got:\n%s", diff)
	}
	if _, err := debugRestore(ctx, kube, logs, scratch, "no-such-restore"); err == nil {
		t.Error("debug of a missing restoresession returned no error")
	}
}
