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
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/trigger"
)

// execTemplate is a HookTemplate that runs script with sh in the pods of
// the session's target.
func execTemplate(name, script string, params ...addonsv1alpha1.ParameterDefinition) *corev1alpha1.HookTemplate {
	return &corev1alpha1.HookTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1alpha1.HookTemplateSpec{
			Params:   params,
			Action:   &corev1alpha1.HookAction{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", script}}},
			Executor: corev1alpha1.HookExecutor{Type: corev1alpha1.HookExecutorPod},
		},
	}
}

func hookInfo(name, tmpl string, policy corev1alpha1.HookExecutionPolicy) corev1alpha1.HookInfo {
	return corev1alpha1.HookInfo{Name: name, HookTemplate: storagev1alpha1.ObjectReference{Name: tmpl}, ExecutionPolicy: policy}
}

type hookSeen struct {
	Name, Phase, Reason, Output string
	Attempts                    int32
}

func hooksSeen(list []corev1alpha1.HookExecutionStatus) []hookSeen {
	var out []hookSeen
	for _, h := range list {
		out = append(out, hookSeen{h.Name, string(h.Phase), h.Reason, h.Output, h.Attempts})
	}
	return out
}

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cannot read what a hook wrote: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// Hooks run as steps of a backup and a restore, exec'd in the target's
// pod: the pre-backup hook runs before the backup (what it wrote is in the
// backup, with the session's name written into its command), the
// post-backup hooks after it by their executionPolicy. A pre-backup hook
// that fails (after its retry) fails the run with no backup Job made, its
// Snapshot Failed for that reason, while the Always post hook still runs
// and learns the run failed. Pre- and post-restore hooks run around a
// restore into the same Deployment.
func TestBackupAndRestoreHooks(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	for _, o := range []client.Object{
		execTemplate("freeze", `echo ${STASHPLANE_SESSION} > /var/lib/app/frozen-by && echo "frozen in ${mode} mode"`,
			addonsv1alpha1.ParameterDefinition{Name: "mode", Default: "fs"}),
		execTemplate("thaw", `echo ${STASHPLANE_PHASE} > /var/lib/app/thawed-after && echo thawed`),
		execTemplate("notify", `echo notified ${STASHPLANE_SNAPSHOTS}`),
		execTemplate("broken", `echo "cannot freeze: table locked" >&2; exit 3`),
		execTemplate("before-restore", `echo ${STASHPLANE_SESSION_KIND} ${STASHPLANE_TARGET_NAME} > /tmp/before-restore && echo ready`),
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	storageDir, data := seedAppBackup(t, kube, 50, 13, func(app *appsv1.Deployment, bc *corev1alpha1.BackupConfiguration) {
		app.Spec.Replicas = ptr.To[int32](1)
		bc.Spec.Sessions[0].Hooks = &corev1alpha1.BackupHooks{
			PreBackup: []corev1alpha1.HookInfo{{Name: "freeze", HookTemplate: storagev1alpha1.ObjectReference{Name: "freeze"},
				Params: &runtime.RawExtension{Raw: []byte(`{"mode": "strict"}`)}}},
			PostBackup: []corev1alpha1.HookInfo{hookInfo("thaw", "thaw", corev1alpha1.HookExecuteAlways), hookInfo("notify", "notify", corev1alpha1.HookExecuteOnSuccess)},
		}
	})

	// The first run: hooks around a backup that succeeds.
	first := firstBackup(t, kube)
	snapshot := "app-" + first.Name
	if diff := cmp.Diff([]hookSeen{{"freeze", "Succeeded", "", "frozen in strict mode", 1}}, hooksSeen(first.Status.Hooks.PreHooks)); diff != "" {
		t.Errorf("pre-backup hooks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]hookSeen{{"thaw", "Succeeded", "", "thawed", 1}, {"notify", "Succeeded", "", "notified " + snapshot, 1}}, hooksSeen(first.Status.Hooks.PostHooks)); diff != "" {
		t.Errorf("post-backup hooks (-want +got):\n%s", diff)
	}
	for _, c := range []xpv2.ConditionType{corev1alpha1.TypePreBackupHooksExecutionSucceeded, corev1alpha1.TypePostBackupHooksExecutionSucceeded} {
		if got := first.GetCondition(c); got.Status != corev1.ConditionTrue {
			t.Errorf("%s is %s: %s", c, got.Status, got.Message)
		}
	}
	if got := readTrimmed(t, filepath.Join(data, "thawed-after")); got != "Succeeded" {
		t.Errorf("the post-backup hook was told the backup %q", got)
	}
	// What the pre-backup hook wrote before the backup is in it.
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/app", "nightly", storagev1alpha1.ComponentDump))
	restored := t.TempDir()
	hostRestic(t, repoDir, "restore", "latest", "--target", restored)
	if got := readTrimmed(t, filepath.Join(restored, "var/lib/app/frozen-by")); got != first.Name {
		t.Errorf("the backup holds frozen-by %q, want the session's name %q", got, first.Name)
	}

	// The second run: a pre-backup hook fails twice (one retry); no Job is
	// made, the Snapshot fails for it, and the Always hook still runs.
	broken := hookInfo("lock-tables", "broken", "")
	broken.MaxRetry = 1
	second := runAgain(t, kube, func(bc *corev1alpha1.BackupConfiguration) {
		bc.Spec.Sessions[0].Hooks.PreBackup = append(bc.Spec.Sessions[0].Hooks.PreBackup, broken)
	})
	if second.Status.Phase != corev1alpha1.BackupSessionFailed {
		t.Fatalf("a backup whose pre-backup hook failed is %s", second.Status.Phase)
	}
	wantPre := []hookSeen{{"freeze", "Succeeded", "", "frozen in strict mode", 1}, {"lock-tables", "Failed", "HookFailed", "cannot freeze: table locked", 2}}
	if diff := cmp.Diff(wantPre, hooksSeen(second.Status.Hooks.PreHooks)); diff != "" {
		t.Errorf("pre-backup hooks of the failed run (-want +got):\n%s", diff)
	}
	wantPost := []hookSeen{{"thaw", "Succeeded", "", "thawed", 1}, {"notify", "Skipped", "", "not run: executionPolicy OnSuccess", 0}}
	if diff := cmp.Diff(wantPost, hooksSeen(second.Status.Hooks.PostHooks)); diff != "" {
		t.Errorf("post-backup hooks of the failed run (-want +got):\n%s", diff)
	}
	if c := second.GetCondition(corev1alpha1.TypePreBackupHooksExecutionSucceeded); c.Status != corev1.ConditionFalse || !strings.Contains(c.Message, `hook "lock-tables" failed`) {
		t.Errorf("PreBackupHooksExecutionSucceeded: %s %q", c.Status, c.Message)
	}
	if got := readTrimmed(t, filepath.Join(data, "thawed-after")); got != "Failed" {
		t.Errorf("the Always post-backup hook was told the backup %q, want Failed", got)
	}
	jobs := &batchv1.JobList{}
	if err := kube.List(ctx, jobs, client.InNamespace("default"), client.MatchingLabels{corev1alpha1.LabelBackupSession: second.Name}); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 0 {
		t.Errorf("a backup whose pre-backup hook failed made %d Jobs", len(jobs.Items))
	}
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-" + second.Name}, snap); err != nil {
		t.Fatal(err)
	}
	if c := snap.GetCondition(storagev1alpha1.TypeBackupIncomplete); snap.Status.Phase != storagev1alpha1.SnapshotFailed || c.Reason != storagev1alpha1.ReasonPreBackupHookFailed {
		t.Errorf("the Snapshot of the failed run is %s (%s: %s)", snap.Status.Phase, c.Reason, c.Message)
	}

	// A restore into the same Deployment with hooks on both sides.
	rs := restoreSession("with-hooks", "app", snapshot, "")
	rs.Spec.Hooks = &corev1alpha1.RestoreHooks{
		PreRestore:  []corev1alpha1.HookInfo{hookInfo("before", "before-restore", "")},
		PostRestore: []corev1alpha1.HookInfo{hookInfo("after", "thaw", corev1alpha1.HookExecuteOnSuccess), hookInfo("on-failure", "notify", corev1alpha1.HookExecuteOnFailure)},
	}
	if err := kube.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	rs = finishedRestore(t, kube, "default", "with-hooks")
	if rs.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("the restore with hooks is %s", rs.Status.Phase)
	}
	if diff := cmp.Diff([]hookSeen{{"before", "Succeeded", "", "ready", 1}}, hooksSeen(rs.Status.Hooks.PreHooks)); diff != "" {
		t.Errorf("pre-restore hooks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]hookSeen{{"after", "Succeeded", "", "thawed", 1}, {"on-failure", "Skipped", "", "not run: executionPolicy OnFailure", 0}}, hooksSeen(rs.Status.Hooks.PostHooks)); diff != "" {
		t.Errorf("post-restore hooks (-want +got):\n%s", diff)
	}
	for _, c := range []xpv2.ConditionType{corev1alpha1.TypePreRestoreHooksExecutionSucceeded, corev1alpha1.TypePostRestoreHooksExecutionSucceeded} {
		if got := rs.GetCondition(c); got.Status != corev1.ConditionTrue {
			t.Errorf("%s is %s: %s", c, got.Status, got.Message)
		}
	}
	// The restore put back the file the first run's pre-backup hook wrote;
	// the post-restore hook ran after it.
	if got := readTrimmed(t, filepath.Join(data, "frozen-by")); got != first.Name {
		t.Errorf("after the restore, frozen-by holds %q, want %q", got, first.Name)
	}
	if got := readTrimmed(t, filepath.Join(data, "thawed-after")); got != "Succeeded" {
		t.Errorf("the post-restore hook was told the restore %q", got)
	}
}

// done says whether a BackupSession's phase is final.
func done(p corev1alpha1.BackupSessionPhase) bool {
	return p == corev1alpha1.BackupSessionSucceeded || p == corev1alpha1.BackupSessionFailed || p == corev1alpha1.BackupSessionSkipped
}

// firstBackup waits for the first BackupSession of the default namespace
// to end, and fails the test unless it succeeded.
func firstBackup(t *testing.T, kube client.Client) *corev1alpha1.BackupSession {
	t.Helper()
	first := &corev1alpha1.BackupSession{}
	poll(t, 3*time.Minute, "the first backup did not end", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		*first = list.Items[0]
		return done(first.Status.Phase), nil
	})
	if first.Status.Phase != corev1alpha1.BackupSessionSucceeded {
		t.Fatalf("the first backup is %s", first.Status.Phase)
	}
	return first
}

// runAgain changes the configuration app-backup, waits until it validated
// the change, then triggers its session nightly and returns the
// BackupSession once it ended.
func runAgain(t *testing.T, kube client.Client, change func(*corev1alpha1.BackupConfiguration)) *corev1alpha1.BackupSession {
	t.Helper()
	ctx := context.Background()
	bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app-backup"}}
	update(t, kube, bc, func() { change(bc) })
	poll(t, time.Minute, "the configuration did not take its change", func(ctx context.Context) (bool, error) {
		got := &corev1alpha1.BackupConfiguration{}
		err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-backup"}, got)
		return err == nil && got.Status.Phase == corev1alpha1.BackupInvokerReady && got.GetCondition(corev1alpha1.TypeValidationPassed).ObservedGeneration == got.Generation, nil
	})
	bs, err := trigger.Create(ctx, kube, bc, "nightly", time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the backup did not end", func(ctx context.Context) (bool, error) {
		return done(sessionPhase(ctx, kube, bs.Name)), nil
	})
	if err := kube.Get(ctx, client.ObjectKeyFromObject(bs), bs); err != nil {
		t.Fatal(err)
	}
	return bs
}

// invokerSession is the newest BackupSession of the configuration invoker
// in namespace default, or nil.
func invokerSession(ctx context.Context, kube client.Client, invoker string) *corev1alpha1.BackupSession {
	list := &corev1alpha1.BackupSessionList{}
	if err := kube.List(ctx, list, client.InNamespace("default")); err != nil {
		return nil
	}
	var newest *corev1alpha1.BackupSession
	for i := range list.Items {
		bs := &list.Items[i]
		if bs.Spec.Invoker.Name == invoker && (newest == nil || newest.CreationTimestamp.Before(&bs.CreationTimestamp)) {
			newest = bs
		}
	}
	return newest
}

// A session's hook holds back its own configuration's runs and no other:
// while the pre-backup hook of one configuration's first run waits, as a
// freeze that takes long does, a second configuration's first backup runs
// and succeeds beside it, though four more runs of the held configuration
// wait too, as many as the provider has workers. The waiting runs end once
// the hook returns. The provider runs with four workers, so that the
// waiting runs would take every one of them if they waited on a worker.
func TestHookHoldsOnlyItsConfiguration(t *testing.T) {
	t.Parallel()
	const workers = 4
	kube, _ := withProviderCluster(t, withWorkers(workers))
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	if err := kube.Create(ctx, execTemplate("hold", `touch /var/lib/app/.held && while [ ! -e /var/lib/app/.release ]; do sleep 0.2; done && echo released`)); err != nil {
		t.Fatal(err)
	}
	_, data := seedAppBackup(t, kube, 20, 17, func(app *appsv1.Deployment, bc *corev1alpha1.BackupConfiguration) {
		app.Spec.Replicas = ptr.To[int32](1)
		bc.Spec.Sessions[0].Hooks = &corev1alpha1.BackupHooks{PreBackup: []corev1alpha1.HookInfo{{
			Name: "hold", HookTemplate: storagev1alpha1.ObjectReference{Name: "hold"}, Timeout: &metav1.Duration{Duration: 5 * time.Minute},
		}}}
	})
	release := filepath.Join(data, ".release")
	// A failed test still lets the hook return before the cluster stops.
	t.Cleanup(func() { _ = os.WriteFile(release, nil, 0o644) })
	poll(t, 3*time.Minute, "the pre-backup hook did not start", func(context.Context) (bool, error) {
		_, err := os.Stat(filepath.Join(data, ".held"))
		return err == nil, nil
	})
	heldRun := invokerSession(ctx, kube, "app-backup")
	if heldRun == nil {
		t.Fatal("the run whose hook waits is not found")
	}
	// More runs of the held configuration, one for each of the provider's
	// workers: they wait for the held run without taking a worker.
	bc := &corev1alpha1.BackupConfiguration{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-backup"}, bc); err != nil {
		t.Fatal(err)
	}
	for i := range workers {
		if _, err := trigger.Create(ctx, kube, bc, "nightly", time.Now().Add(time.Duration(i+1)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}

	other := configuration(`{"paths": ["/var/lib/app"]}`)
	other.Name = "other-backup"
	other.Spec.Sessions[0].Repositories[0].Name = "other"
	other.Spec.Sessions[0].Repositories[0].Directory = "default/other"
	if err := kube.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	poll(t, 3*time.Minute, "the other configuration's backup did not succeed while the hook waited", func(ctx context.Context) (bool, error) {
		bs := invokerSession(ctx, kube, "other-backup")
		if bs != nil && done(bs.Status.Phase) && bs.Status.Phase != corev1alpha1.BackupSessionSucceeded {
			t.Fatalf("the other configuration's backup is %s", bs.Status.Phase)
		}
		return bs != nil && bs.Status.Phase == corev1alpha1.BackupSessionSucceeded, nil
	})
	if p := sessionPhase(ctx, kube, heldRun.Name); done(p) {
		t.Fatalf("the run whose hook waits is no longer going: %s", p)
	}

	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	held := &corev1alpha1.BackupSession{}
	poll(t, 3*time.Minute, "the held backup and the runs that waited for it did not end once its hook returned", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil {
			return false, nil
		}
		for _, bs := range list.Items {
			if bs.Spec.Invoker.Name == "app-backup" && !done(bs.Status.Phase) {
				return false, nil
			}
			if bs.Name == heldRun.Name {
				*held = bs
			}
		}
		return true, nil
	})
	if held.Status.Phase != corev1alpha1.BackupSessionSucceeded {
		t.Fatalf("the held backup is %s", held.Status.Phase)
	}
	if diff := cmp.Diff([]hookSeen{{"hold", "Succeeded", "", "released", 1}}, hooksSeen(held.Status.Hooks.PreHooks)); diff != "" {
		t.Errorf("pre-backup hooks (-want +got):\n%s", diff)
	}
}
