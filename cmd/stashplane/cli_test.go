package main

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// TestKubectlFlags holds every command an operator runs against a cluster
// to kubectl's habits: -n/--namespace defaulting to the kubeconfig
// context's namespace, and -o/--output.
func TestKubectlFlags(t *testing.T) {
	want := []string{
		"debug: -n namespace=, -o output=",
		"pause: -n namespace=, -o output=",
		"prune: -n namespace=, -o output=",
		"render: -n namespace=, -o output=",
		"resume: -n namespace=, -o output=",
		"retention plan: -n namespace=, -o output=",
		"snapshots: -n namespace=, -o output=",
		"trigger: -n namespace=, -o output=",
		"unlock: -n namespace=, -o output=",
		"verify now: -n namespace=, -o output=",
	}
	operator := map[string]bool{}
	for _, w := range want {
		operator[strings.Split(w, ":")[0]] = true
	}
	var got []string
	var walk func(prefix string, c *cobra.Command)
	walk = func(prefix string, c *cobra.Command) {
		for _, sub := range c.Commands() {
			name := strings.TrimSpace(prefix + " " + sub.Name())
			walk(name, sub)
			if !operator[name] {
				continue
			}
			line := name + ":"
			for i, f := range []string{"namespace", "output"} {
				fl := sub.Flags().Lookup(f)
				if fl == nil {
					line += " no --" + f
					continue
				}
				if i > 0 {
					line += ","
				}
				line += " -" + fl.Shorthand + " " + fl.Name + "=" + fl.DefValue
			}
			got = append(got, line)
		}
	}
	walk("", rootCommand())
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("operators' commands: -want +got:\n%s", diff)
	}
}

func TestOneName(t *testing.T) {
	type want struct {
		Name string
		Err  string
	}
	cases := map[string]struct {
		reason string
		args   []string
		flag   string
		want   want
	}{
		"Argument":  {reason: "The configuration may be the argument, as kubectl names objects.", args: []string{"app"}, want: want{Name: "app"}},
		"Flag":      {reason: "The CronJob's --configuration form keeps working.", flag: "app", want: want{Name: "app"}},
		"BothAgree": {reason: "Both, naming the same, are one.", args: []string{"app"}, flag: "app", want: want{Name: "app"}},
		"BothDiffer": {reason: "Both, naming different ones, are refused.", args: []string{"app"}, flag: "db",
			want: want{Err: `cannot tell which configuration: the argument "app" and --configuration="db" differ`}},
		"Neither": {reason: "Neither is refused.", want: want{Err: "cannot tell which configuration: name it as the argument or with --configuration"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			n, err := oneName(tc.args, tc.flag, "configuration")
			got := want{Name: n}
			if err != nil {
				got.Err = err.Error()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\noneName(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestWriteOutputs(t *testing.T) {
	triggered := []Triggered{{Namespace: "demo", Configuration: "app", Session: "nightly", BackupSession: "app-nightly-1"}}
	cases := map[string]struct {
		reason string
		write  func(*bytes.Buffer) error
		want   string
	}{
		"TriggerTable": {
			reason: "With no -o trigger prints a table of the sessions it created.",
			write:  func(b *bytes.Buffer) error { return writeTriggered(b, triggered, "") },
			want:   "BACKUPSESSION   CONFIGURATION   SESSION\napp-nightly-1   app             nightly\n",
		},
		"TriggerJSON": {
			reason: "-o json prints them as a JSON list.",
			write:  func(b *bytes.Buffer) error { return writeTriggered(b, triggered, "json") },
			want: `[
  {
    "namespace": "demo",
    "configuration": "app",
    "session": "nightly",
    "backupSession": "app-nightly-1"
  }
]
`,
		},
		"PauseYAML": {
			reason: "-o yaml prints the result as YAML.",
			write: func(b *bytes.Buffer) error {
				return writePaused(b, &Paused{Namespace: "demo", Configuration: "app", Paused: true, Changed: true}, "yaml")
			},
			want: "changed: true\nconfiguration: app\nnamespace: demo\npaused: true\n",
		},
		"ResumeUnchanged": {
			reason: "Resuming a configuration that is not paused says so.",
			write:  func(b *bytes.Buffer) error { return writePaused(b, &Paused{Configuration: "app"}, "") },
			want:   "BACKUPCONFIGURATION   STATE\napp                   already resumed\n",
		},
		"UnlockTable": {
			reason: "Unlock prints what the Job removed.",
			write: func(b *bytes.Buffer) error {
				return writeUnlock(b, &UnlockResult{Repository: "app", Job: "app-unlock", Succeeded: true}, "")
			},
			want: "REPOSITORY   JOB          RESULT\napp          app-unlock   Succeeded\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := &bytes.Buffer{}
			if err := tc.write(b); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("\n%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// cliConfiguration is a BackupConfiguration with the given sessions, as
// the schema accepts it.
func cliConfiguration(namespace string, sessions ...string) *corev1alpha1.BackupConfiguration {
	bc := &corev1alpha1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "app-backup", Namespace: namespace},
		Spec: corev1alpha1.BackupConfigurationSpec{
			Target:   &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "app"},
			Backends: []corev1alpha1.BackendReference{{Name: "local", StorageRef: &storagev1alpha1.ObjectReference{Name: "shared"}}},
		},
	}
	for _, s := range sessions {
		bc.Spec.Sessions = append(bc.Spec.Sessions, corev1alpha1.Session{
			Name:      s,
			Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "0 2 * * *"},
			Addon: &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{
				Name: "logical-backup", Params: &runtime.RawExtension{Raw: []byte(`{"paths": ["/data"]}`)},
			}}},
			Repositories: []corev1alpha1.RepositoryInfo{{
				Name: s, Backend: "local", Directory: namespace + "/" + s,
				EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"},
			}},
		})
	}
	return bc
}

func namespace(t *testing.T, kube client.Client, name string) {
	t.Helper()
	if err := kube.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

// TestPauseResume pauses and resumes a configuration on a real API
// server: the spec changes, and pausing twice changes nothing.
func TestPauseResume(t *testing.T) {
	kube := apiServer(t)
	ctx := context.Background()
	namespace(t, kube, "cli-pause")
	if err := kube.Create(ctx, cliConfiguration("cli-pause", "nightly")); err != nil {
		t.Fatal(err)
	}
	type step struct {
		Result *Paused
		Spec   bool
		Err    string
	}
	var got []step
	for _, pause := range []bool{true, true, false} {
		res, err := setPaused(ctx, kube, "cli-pause", "app-backup", pause)
		s := step{Result: res}
		if err != nil {
			s.Err = err.Error()
		}
		bc := &corev1alpha1.BackupConfiguration{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "cli-pause", Name: "app-backup"}, bc); err != nil {
			t.Fatal(err)
		}
		s.Spec = bc.Spec.Paused
		got = append(got, s)
	}
	_, err := setPaused(ctx, kube, "cli-pause", "nothing", true)
	got = append(got, step{Err: err.Error()})
	want := []step{
		{Result: &Paused{Namespace: "cli-pause", Configuration: "app-backup", Paused: true, Changed: true}, Spec: true},
		{Result: &Paused{Namespace: "cli-pause", Configuration: "app-backup", Paused: true}, Spec: true},
		{Result: &Paused{Namespace: "cli-pause", Configuration: "app-backup", Changed: true}},
		{Err: `cannot get backupconfiguration cli-pause/nothing: backupconfigurations.core.stashplane.io "nothing" not found`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pause, pause, resume, pause a missing one: -want +got:\n%s", diff)
	}
}

// TestTriggerSessions triggers every session of a configuration, then one,
// then one it does not have, on a real API server.
func TestTriggerSessions(t *testing.T) {
	kube := apiServer(t)
	ctx := context.Background()
	namespace(t, kube, "cli-trigger")
	if err := kube.Create(ctx, cliConfiguration("cli-trigger", "nightly", "hourly")); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	type want struct {
		Triggered []Triggered
		Err       string
	}
	cases := map[string]struct {
		reason  string
		session string
		now     time.Time
		want    want
	}{
		"Every": {
			reason: "With no --session every session of the configuration starts.",
			now:    now,
			want: want{Triggered: []Triggered{
				{Namespace: "cli-trigger", Configuration: "app-backup", Session: "nightly", BackupSession: "app-backup-nightly-1800000000"},
				{Namespace: "cli-trigger", Configuration: "app-backup", Session: "hourly", BackupSession: "app-backup-hourly-1800000000"},
			}},
		},
		"One": {
			reason:  "--session starts that session only.",
			session: "hourly",
			now:     now.Add(time.Minute),
			want: want{Triggered: []Triggered{
				{Namespace: "cli-trigger", Configuration: "app-backup", Session: "hourly", BackupSession: "app-backup-hourly-1800000060"},
			}},
		},
		"Unknown": {
			reason:  "A session the configuration does not have is refused.",
			session: "weekly",
			now:     now,
			want:    want{Err: `cannot find session "weekly" in backupconfiguration "app-backup"`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := triggerSessions(ctx, kube, "cli-trigger", "app-backup", tc.session, tc.now)
			got := want{Triggered: res}
			if err != nil {
				got.Err = err.Error()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\ntriggerSessions(...): -want +got:\n%s", tc.reason, diff)
			}
			for _, tr := range res {
				if err := kube.Get(ctx, client.ObjectKey{Namespace: "cli-trigger", Name: tr.BackupSession}, &corev1alpha1.BackupSession{}); err != nil {
					t.Errorf("backupsession %s: %v", tr.BackupSession, err)
				}
			}
		})
	}
}

// TestDebugSession reads the chain of a failed backup from a real API
// server: the configuration, the session's condition, the Snapshot's
// failed component, the Job, and its pod's exit and last log lines.
func TestDebugSession(t *testing.T) {
	kube := apiServer(t)
	ctx := context.Background()
	ns := "cli-debug"
	namespace(t, kube, ns)
	bc := cliConfiguration(ns, "nightly")
	bc.Spec.Paused = true
	bs := &corev1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Name: "app-backup-nightly-1", Namespace: ns},
		Spec: corev1alpha1.BackupSessionSpec{Session: "nightly",
			Invoker: storagev1alpha1.TypedObjectReference{APIGroup: corev1alpha1.GroupVersion.Group, Kind: "BackupConfiguration", Name: "app-backup"}},
	}
	snap := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly-app-backup-nightly-1", Namespace: ns},
		Spec:       storagev1alpha1.SnapshotSpec{Repository: "nightly", Session: "nightly", BackupSession: bs.Name},
	}
	labels := map[string]string{corev1alpha1.LabelBackupSession: bs.Name, storagev1alpha1.LabelRepository: "nightly", corev1alpha1.LabelComponent: "dump"}
	podSpec := corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "backup", Image: "stashplane"}}}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly-dump-1", Namespace: ns, Labels: labels},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec}},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly-dump-1-abcde", Namespace: ns, Labels: map[string]string{batchv1.JobNameLabel: job.Name}},
		Spec:       podSpec,
	}
	other := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "another-session", Namespace: ns, Labels: map[string]string{corev1alpha1.LabelBackupSession: "app-backup-nightly-0"}},
		Spec:       batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: podSpec}},
	}
	for _, o := range []client.Object{bc, bs, snap, job, pod, other} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	now := metav1.Now()
	bs.Status.Phase = corev1alpha1.BackupSessionFailed
	bs.Status.Snapshots = []corev1alpha1.SnapshotStatus{{Name: snap.Name, Phase: storagev1alpha1.SnapshotFailed, Repository: "nightly"}}
	bs.Status.Conditions = []xpv2.Condition{{Type: "BackupExecutorEnsured", Status: corev1.ConditionFalse, Reason: "JobFailed", Message: `job "nightly-dump-1" failed`, LastTransitionTime: now}}
	snap.Status.Phase = storagev1alpha1.SnapshotFailed
	snap.Status.TotalComponents = 2
	snap.Status.Components = map[string]storagev1alpha1.Component{"dump": {Phase: storagev1alpha1.ComponentFailed, Error: "RepositoryLocked: the repository is locked"}}
	pod.Status.Phase = corev1.PodFailed
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "backup", Image: "stashplane", ImageID: "stashplane",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", StartedAt: now, FinishedAt: now}}}}
	for _, o := range []client.Object{bs, snap, pod} {
		if err := kube.Status().Update(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	logs := func(_ context.Context, namespace, pod, container string, lines int64) (string, error) {
		if pod != "nightly-dump-1-abcde" || container != "backup" || lines != debugLogLines {
			return "", errors.New("no such log")
		}
		return "opening the storage\nrestic: repository is already locked\n", nil
	}
	got, err := debugSession(ctx, kube, logs, ns, bs.Name)
	if err != nil {
		t.Fatal(err)
	}
	want := &DebugReport{Namespace: ns, Session: bs.Name, Chain: []DebugLink{
		{Kind: "BackupConfiguration", Name: "app-backup", Details: []string{"paused (spec.paused): every session is Skipped"}},
		{Kind: "BackupSession", Name: bs.Name, Phase: "Failed", Of: "BackupConfiguration/app-backup",
			Details: []string{`BackupExecutorEnsured=False JobFailed: job "nightly-dump-1" failed`}},
		{Kind: "Snapshot", Name: snap.Name, Phase: "Failed", Of: "BackupSession/" + bs.Name,
			Details: []string{"component dump: Failed: RepositoryLocked: the repository is locked", "1 of 2 components reported"}},
		{Kind: "Job", Name: job.Name, Phase: "Running", Of: "BackupSession/" + bs.Name, Details: []string{"repository nightly, component dump"}},
		{Kind: "Pod", Name: pod.Name, Phase: "Failed", Of: "Job/" + job.Name,
			Details: []string{"container backup: terminated, exit code 2 (Error)"},
			Log:     []string{"[backup] opening the storage", "[backup] restic: repository is already locked"}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("debugSession(...): -want +got:\n%s", diff)
	}
	b := &bytes.Buffer{}
	if err := writeDebug(b, got, ""); err != nil {
		t.Fatal(err)
	}
	text := `BackupConfiguration app-backup: <none>
  paused (spec.paused): every session is Skipped
  BackupSession app-backup-nightly-1: Failed
    BackupExecutorEnsured=False JobFailed: job "nightly-dump-1" failed
    Snapshot nightly-app-backup-nightly-1: Failed
      component dump: Failed: RepositoryLocked: the repository is locked
      1 of 2 components reported
    Job nightly-dump-1: Running
      repository nightly, component dump
      Pod nightly-dump-1-abcde: Failed
        container backup: terminated, exit code 2 (Error)
        last log lines:
          [backup] opening the storage
          [backup] restic: repository is already locked
`
	if diff := cmp.Diff(text, b.String()); diff != "" {
		t.Errorf("debug's text: -want +got:\n%s", diff)
	}
	if _, err := debugSession(ctx, kube, logs, ns, "no-such-session"); err == nil {
		t.Error("debug of a missing session returned no error")
	}
}

// TestUnlockRefusedWhileBusy: while a backup of the Repository runs, its
// locks are live, so unlock refuses before any Job is made.
func TestUnlockRefusedWhileBusy(t *testing.T) {
	kube := apiServer(t)
	ctx := context.Background()
	ns := "cli-unlock"
	namespace(t, kube, ns)
	repo := &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns, Labels: map[string]string{corev1alpha1.LabelInvokerName: "app-backup"}},
		Spec: storagev1alpha1.RepositorySpec{Path: "ns/app", StorageRef: storagev1alpha1.ObjectReference{Name: "shared"},
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"}},
	}
	snap := &storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "app-app-backup-nightly-1", Namespace: ns, Labels: map[string]string{storagev1alpha1.LabelRepository: "app"}},
		Spec:       storagev1alpha1.SnapshotSpec{Repository: "app"},
	}
	for _, o := range []client.Object{repo, snap} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	snap.Status.Phase = storagev1alpha1.SnapshotRunning
	if err := kube.Status().Update(ctx, snap); err != nil {
		t.Fatal(err)
	}
	_, err := unlock(ctx, kube, ns, "app", "stashplane")
	want := `cannot unlock repository "app" now: the backup of snapshot cli-unlock/app-app-backup-nightly-1 is Running; its locks are live`
	if err == nil || err.Error() != want {
		t.Errorf("unlock while a backup runs: got error %v, want %q", err, want)
	}
	jobs := &batchv1.JobList{}
	if err := kube.List(ctx, jobs, client.InNamespace(ns)); err != nil || len(jobs.Items) != 0 {
		t.Errorf("jobs after the refused unlock: %d (%v), want none", len(jobs.Items), err)
	}
}
