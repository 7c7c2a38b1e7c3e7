package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/hookjob"
	"github.com/stashplane/stashplane/internal/layout"
)

// markFunction is a hook Function: its Job waits params.sleep seconds,
// writes a line into params.file under /hook (a volume the HookTemplate
// mounts there), then fails with params.fail when it is not 0, else says
// what it wrote.
const markFunction = `
#Params: {
	file!:   string
	message: string | *"marked"
	sleep:   int & >=0 | *0
	fail:    int & >=0 | *0
}
objects: [{
	apiVersion: "batch/v1"
	kind:       "Job"
	metadata: name: "mark"
	spec: template: spec: {
		restartPolicy: "Never"
		containers: [{
			name:  "mark"
			image: "busybox"
			command: ["sh", "-c", """
				sleep \(params.sleep)
				echo "\(params.message) $STASHPLANE_SESSION $STASHPLANE_PHASE $TEAM" > /hook/\(params.file)
				if [ \(params.fail) -ne 0 ]; then echo "\(context.task.name) cannot quiesce \(context.target.name)" >&2; exit \(params.fail); fi
				echo "wrote \(params.file) for \(context.session.kind) \(context.session.name)"
				"""]
		}]
	}
}]
`

// Hooks whose HookTemplate has a Function executor run as Jobs rendered
// from the Function's CUE template. A pre-backup hook's Job writes into
// the backed-up directory before the backup (what it wrote is in the
// backup), a post-backup one after it, both given the hook's params typed
// by #Params, the template's env and volumes, and the run's variables. A
// Function hook that fails is retried as a new Job and then fails the run
// before any backup Job; one past its timeout is ended and fails a restore
// before anything is restored.
func TestFunctionHooks(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &batchv1.JobList{})

	var data string
	fnTemplate := func(name string) *corev1alpha1.HookTemplate {
		return &corev1alpha1.HookTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1alpha1.HookTemplateSpec{
				Params: []addonsv1alpha1.ParameterDefinition{
					{Name: "file", Required: true}, {Name: "team", Default: "storage"},
					{Name: "sleep", Default: "0"}, {Name: "fail", Default: "0"},
				},
				Executor: corev1alpha1.HookExecutor{Type: corev1alpha1.HookExecutorFunction, Function: &corev1alpha1.FunctionHookExecutorSpec{
					Name:         "mark",
					Env:          []corev1.EnvVar{{Name: "TEAM", Value: "${team}"}},
					Volumes:      []corev1.Volume{{Name: "hook", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: data}}}},
					VolumeMounts: []corev1.VolumeMount{{Name: "hook", MountPath: "/hook"}},
				}},
			},
		}
	}
	withParams := func(name, params string) corev1alpha1.HookInfo {
		return corev1alpha1.HookInfo{Name: name, HookTemplate: storagev1alpha1.ObjectReference{Name: "mark"},
			Params: &runtime.RawExtension{Raw: []byte(params)}}
	}
	if err := kube.Create(ctx, &addonsv1alpha1.Function{ObjectMeta: metav1.ObjectMeta{Name: "mark"}, Spec: addonsv1alpha1.FunctionSpec{Template: markFunction}}); err != nil {
		t.Fatal(err)
	}
	storageDir, seeded := seedAppBackup(t, kube, 20, 17, func(app *appsv1.Deployment, bc *corev1alpha1.BackupConfiguration) {
		app.Spec.Replicas = ptr.To[int32](1)
		bc.Spec.Sessions[0].Hooks = &corev1alpha1.BackupHooks{
			PreBackup: []corev1alpha1.HookInfo{withParams("before", `{"file": "before", "team": "db"}`)},
			PostBackup: []corev1alpha1.HookInfo{func() corev1alpha1.HookInfo {
				h := withParams("after", `{"file": "after"}`)
				h.ExecutionPolicy = corev1alpha1.HookExecuteAlways
				return h
			}()},
		}
		// The template mounts the app's directory: made before the
		// configuration, so that its first run has it.
		data = app.Spec.Template.Spec.Volumes[0].HostPath.Path
		if err := kube.Create(ctx, fnTemplate("mark")); err != nil {
			t.Fatal(err)
		}
	})
	if data != seeded {
		t.Fatalf("the app's directory is %q, seeded %q", data, seeded)
	}

	// The first run: a Function hook on each side of a backup.
	first := firstBackup(t, kube)
	wantPre := []hookSeen{{"before", "Succeeded", "", "wrote before for BackupSession " + first.Name, 1}}
	if diff := cmp.Diff(wantPre, hooksSeen(first.Status.Hooks.PreHooks)); diff != "" {
		t.Errorf("pre-backup hooks (-want +got):\n%s", diff)
	}
	wantPost := []hookSeen{{"after", "Succeeded", "", "wrote after for BackupSession " + first.Name, 1}}
	if diff := cmp.Diff(wantPost, hooksSeen(first.Status.Hooks.PostHooks)); diff != "" {
		t.Errorf("post-backup hooks (-want +got):\n%s", diff)
	}
	if got, want := first.Status.Hooks.PreHooks[0].Job, naming.HookJob(first.Name, "pre", "before", 1); got != want {
		t.Errorf("the pre-backup hook's job is %q, want %q", got, want)
	}
	if got, want := readTrimmed(t, filepath.Join(data, "after")), "marked "+first.Name+" Succeeded storage"; got != want {
		t.Errorf("the post-backup hook wrote %q, want %q", got, want)
	}
	// What the pre-backup hook's Job wrote before the backup is in it.
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	restored := t.TempDir()
	hostRestic(t, repoDir, "restore", "latest", "--target", restored)
	if got, want := readTrimmed(t, filepath.Join(restored, "var/lib/app/before")), "marked "+first.Name+" Running db"; got != want {
		t.Errorf("the backup holds before = %q, want %q", got, want)
	}

	// The second run: a Function hook that fails, with one retry: two Jobs,
	// then the run fails with no backup Job.
	broken := withParams("quiesce", `{"file": "quiesce", "fail": 3}`)
	broken.MaxRetry = 1
	second := runAgain(t, kube, func(bc *corev1alpha1.BackupConfiguration) {
		bc.Spec.Sessions[0].Hooks.PreBackup = append(bc.Spec.Sessions[0].Hooks.PreBackup, broken)
	})
	if second.Status.Phase != corev1alpha1.BackupSessionFailed {
		t.Fatalf("a backup whose Function pre-backup hook failed is %s", second.Status.Phase)
	}
	wantPre = []hookSeen{
		{"before", "Succeeded", "", "wrote before for BackupSession " + second.Name, 1},
		{"quiesce", "Failed", "HookFailed", "quiesce cannot quiesce app", 2},
	}
	if diff := cmp.Diff(wantPre, hooksSeen(second.Status.Hooks.PreHooks)); diff != "" {
		t.Errorf("pre-backup hooks of the failed run (-want +got):\n%s", diff)
	}
	if c := second.GetCondition(corev1alpha1.TypePreBackupHooksExecutionSucceeded); c.Status != corev1.ConditionFalse || !strings.Contains(c.Message, `hook "quiesce" failed`) {
		t.Errorf("PreBackupHooksExecutionSucceeded: %s %q", c.Status, c.Message)
	}
	hookJobs := &batchv1.JobList{}
	if err := kube.List(ctx, hookJobs, client.InNamespace("default"), client.MatchingLabels{hookjob.Label: second.Name}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range hookJobs.Items {
		names = append(names, j.Name)
	}
	wantJobs := []string{naming.HookJob(second.Name, "post", "after", 1), naming.HookJob(second.Name, "pre", "before", 1),
		naming.HookJob(second.Name, "pre", "quiesce", 1), naming.HookJob(second.Name, "pre", "quiesce", 2)}
	if diff := cmp.Diff(wantJobs, names); diff != "" {
		t.Errorf("hook jobs of the failed run (-want +got):\n%s", diff)
	}
	backupJobs := &batchv1.JobList{}
	if err := kube.List(ctx, backupJobs, client.InNamespace("default"), client.MatchingLabels{corev1alpha1.LabelBackupSession: second.Name}); err != nil {
		t.Fatal(err)
	}
	if len(backupJobs.Items) != 0 {
		t.Errorf("a backup whose pre-backup hook failed made %d backup Jobs", len(backupJobs.Items))
	}
	if got, want := readTrimmed(t, filepath.Join(data, "after")), "marked "+second.Name+" Failed storage"; got != want {
		t.Errorf("the Always post-backup hook wrote %q, want %q", got, want)
	}

	// A restore whose Function pre-restore hook runs past its timeout:
	// its Job is ended, the restore fails, nothing is restored.
	if err := os.WriteFile(filepath.Join(data, "kept"), []byte("written after the backup"), 0o644); err != nil {
		t.Fatal(err)
	}
	slow := withParams("slow", `{"file": "slow", "sleep": 120}`)
	slow.Timeout = &metav1.Duration{Duration: 3 * time.Second}
	rs := restoreSession("slow-hook", "app", "app-"+first.Name, "")
	rs.Spec.Hooks = &corev1alpha1.RestoreHooks{PreRestore: []corev1alpha1.HookInfo{slow}}
	if err := kube.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	rs = finishedRestore(t, kube, "default", "slow-hook")
	if rs.Status.Phase != corev1alpha1.RestoreFailed {
		t.Fatalf("a restore whose pre-restore hook timed out is %s", rs.Status.Phase)
	}
	pre := rs.Status.Hooks.PreHooks
	if len(pre) != 1 || pre[0].Phase != corev1alpha1.HookFailed || pre[0].Reason != "HookTimedOut" {
		t.Errorf("pre-restore hooks: %+v", pre)
	}
	restoreJobs := &batchv1.JobList{}
	if err := kube.List(ctx, restoreJobs, client.InNamespace("default"), client.MatchingLabels{corev1alpha1.LabelRestoreSession: rs.Name}); err != nil {
		t.Fatal(err)
	}
	if len(restoreJobs.Items) != 0 {
		t.Errorf("a restore whose pre-restore hook failed made %d restore Jobs", len(restoreJobs.Items))
	}
	if got := readTrimmed(t, filepath.Join(data, "kept")); got != "written after the backup" {
		t.Errorf("a file written after the backup holds %q after a restore that did not run", got)
	}
}
