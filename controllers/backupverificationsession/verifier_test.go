package backupverificationsession

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/sessionrun"
	stashpkg "github.com/stashplane/stashplane/package"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with the current output")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cannot read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("output differs from %s (run with -update if intended): -want +got:\n%s", path, diff)
	}
}

func builtinFunction(t *testing.T, name string) *addonsv1alpha1.Function {
	t.Helper()
	objs, err := stashpkg.Addons()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := render.NewCatalog(objs...)
	if err != nil {
		t.Fatal(err)
	}
	fn, err := cat.Function(name)
	if err != nil {
		t.Fatal(err)
	}
	return fn
}

func exampleVerifier(typ corev1alpha1.VerificationType, function string) *corev1alpha1.BackupVerifier {
	return &corev1alpha1.BackupVerifier{
		ObjectMeta: metav1.ObjectMeta{Name: "db-verifier", Namespace: "demo"},
		Spec: corev1alpha1.BackupVerifierSpec{
			Type:     typ,
			Function: function,
			RestoreOption: corev1alpha1.RestoreOption{
				Target: storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "scratch"},
			},
			Volumes:      []corev1alpha1.Volume{{Name: "scripts", VolumeSource: corev1alpha1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "checks"}}}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "scripts", MountPath: "/scripts"}},
			RuntimeSettings: &storagev1alpha1.RuntimeSettings{Container: &storagev1alpha1.ContainerRuntimeSettings{
				Env: []corev1.EnvVar{{Name: "TZ", Value: "UTC"}},
			}},
		},
	}
}

// TestVerifierFunctions renders the built-in verifier Functions as a
// session does and compares them with their golden files.
func TestVerifierFunctions(t *testing.T) {
	query := exampleVerifier(corev1alpha1.VerificationQuery, "postgres-query-verifier")
	query.Spec.Query = &corev1alpha1.VerifierQuery{Raw: runtime.RawExtension{Raw: []byte(`{"dataDirectory": "pgdata", "database": "shop", "sql": "select count(*) from orders", "operator": "GreaterThanOrEqual", "value": 100}`)}}
	script := exampleVerifier(corev1alpha1.VerificationScript, "script-verifier")
	script.Spec.Script = &corev1alpha1.ScriptVerifierSpec{Location: "/scripts/check.sh", Args: []string{"--strict"}}
	s := &corev1alpha1.BackupVerificationSession{
		ObjectMeta: metav1.ObjectMeta{Name: "db-nightly-1767225600", Namespace: "demo"},
		Spec:       corev1alpha1.BackupVerificationSessionSpec{Repository: "db", Snapshot: "db-nightly-1767225600"},
	}
	target := &storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "scratch-0a1b2c3d"}
	r := render.New(render.Options{})
	// A dump restored by the postgres-addon, loaded into a scratch
	// server and checked by KubeStash's structured query beside SQL.
	dump := exampleVerifier(corev1alpha1.VerificationQuery, "postgres-query-verifier")
	dump.Spec.Query = &corev1alpha1.VerifierQuery{Raw: runtime.RawExtension{Raw: []byte(`{"dumpFile": "dumpfile.sql", "database": "shop",
		"sql": "select count(*) - (select n from counter) from orders", "value": 0,
		"postgres": [{"database": "shop", "table": "orders", "rowCount": {"operator": "GreaterThanOrEqual", "value": 150}}]}`)}}
	for name, v := range map[string]*corev1alpha1.BackupVerifier{"postgres-query-verifier": query, "script-verifier": script, "postgres-dump-verifier": dump} {
		t.Run(name, func(t *testing.T) {
			fn := builtinFunction(t, v.Spec.Function)
			if err := r.CheckFunction(context.Background(), fn); err != nil {
				t.Fatalf("CheckFunction(%q): %v", fn.Name, err)
			}
			in, err := verifierInput(s, v, fn, target, "ghcr.io/stashplane/stashplane:v0.1.0")
			if err != nil {
				t.Fatal(err)
			}
			res, err := in.render(context.Background(), r)
			if err != nil {
				t.Fatalf("Render(%q): %v", name, err)
			}
			jobs, err := res.Jobs()
			if err != nil || len(jobs) != 1 || len(res.Objects) != 1 {
				t.Fatalf("Render(%q): %d objects, %d jobs (%v), want one Job", name, len(res.Objects), len(jobs), err)
			}
			out, err := res.YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, out)
		})
	}
}

func TestVerifierFunctionRefusesBadQuery(t *testing.T) {
	cases := map[string]struct {
		reason string
		query  string
		want   string
	}{
		"Operator": {
			reason: "An operator the Function does not know is refused.",
			query:  `{"sql": "select 1", "operator": "Like", "value": 1}`,
			want:   "params.operator",
		},
		"NothingToCheck": {
			reason: "A query with neither sql nor row counts checks nothing: refused.",
			query:  `{"dumpFile": "dumpfile.sql"}`,
			want:   "the query has nothing to check",
		},
		"SQLWithoutValue": {
			reason: "sql without a value to compare with is refused.",
			query:  `{"sql": "select 1"}`,
			want:   "needs a value",
		},
		"RowCountWithoutTable": {
			reason: "A row count must name its table.",
			query:  `{"postgres": [{"database": "shop", "rowCount": {"value": 1}}]}`,
			want:   "table",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v := exampleVerifier(corev1alpha1.VerificationQuery, "postgres-query-verifier")
			v.Spec.Query = &corev1alpha1.VerifierQuery{Raw: runtime.RawExtension{Raw: []byte(tc.query)}}
			s := &corev1alpha1.BackupVerificationSession{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "demo"}}
			in, err := verifierInput(s, v, builtinFunction(t, "postgres-query-verifier"), &storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "c"}, "img")
			if err != nil {
				t.Fatal(err)
			}
			_, err = in.render(context.Background(), render.New(render.Options{}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s\nRender(%s): got %v, want an error containing %q", tc.reason, tc.query, err, tc.want)
			}
		})
	}
}

func TestJobOutcome(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	job := func(deadline *int64, conds ...batchv1.JobCondition) *batchv1.Job {
		return &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)},
			Spec: batchv1.JobSpec{ActiveDeadlineSeconds: deadline,
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "verify"}}}}},
			Status: batchv1.JobStatus{Conditions: conds},
		}
	}
	failed := batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonBackoffLimitExceeded}
	exited := func(code int32, reason string) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "verify", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}}},
		}}}
	}
	waiting := func(reason string) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "verify", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}},
		}}}
	}
	evicted := exited(137, "Error")
	evicted.Status.Reason = "Evicted"
	type want struct {
		End jobEnd
		How string
	}
	cases := map[string]struct {
		reason string
		job    *batchv1.Job
		pod    *corev1.Pod
		now    time.Time
		want   want
	}{
		"Running": {reason: "A Job without an outcome is still running.", job: job(ptr.To[int64](600)), now: created.Add(time.Minute), want: want{End: jobRunning}},
		"Complete": {reason: "A completed Job passed.",
			job: job(nil, batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}), now: created, want: want{End: jobPassed}},
		"CheckFailed": {reason: "Exit code 1 is the check's own failure, the one ending that is a verdict.",
			job: job(nil, failed), pod: exited(1, "Error"), now: created,
			want: want{End: jobCheckFailed, How: "failed: its check did not pass (exit code 1)"}},
		"BadArguments": {reason: "Another exit code, such as 2 for bad arguments, is not a verdict.",
			job: job(nil, failed), pod: exited(2, "Error"), now: created,
			want: want{End: jobNotRun, How: "failed (BackoffLimitExceeded): its container exited with code 2 (Error), which is not a check's verdict"}},
		"OOMKilled": {reason: "A container killed for memory did not finish its check.",
			job: job(nil, failed), pod: exited(137, "OOMKilled"), now: created,
			want: want{End: jobNotRun, How: "failed (BackoffLimitExceeded): its container exited with code 137 (OOMKilled), which is not a check's verdict"}},
		"Evicted": {reason: "An evicted pod did not finish its check.",
			job: job(nil, failed), pod: evicted, now: created,
			want: want{End: jobNotRun, How: "failed (BackoffLimitExceeded): its pod was stopped (Evicted) before its check said pass or fail"}},
		"NoPod": {reason: "A failed Job whose pod is gone cannot say that its check failed.",
			job: job(nil, failed), now: created,
			want: want{End: jobNotRun, How: "failed (BackoffLimitExceeded) without a container that ran its check to the end"}},
		"DeadlineExceeded": {reason: "A Job stopped at its deadline, for example while its image was pulled, gave no verdict.",
			job: job(ptr.To[int64](600), batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonDeadlineExceeded}),
			pod: waiting("ImagePullBackOff"), now: created,
			want: want{End: jobNotRun, How: "timed out after 600s (DeadlineExceeded) before its check said pass or fail"}},
		"InvalidImage": {reason: "A pod whose image can never be pulled ends the Job at once, without a verdict.",
			job: job(ptr.To[int64](600)), pod: waiting("InvalidImageName"), now: created.Add(time.Minute),
			want: want{End: jobNotRun, How: "cannot start its container: InvalidImageName"}},
		"PullBackOffWaits": {reason: "A pull that may still succeed is waited for.",
			job: job(ptr.To[int64](600)), pod: waiting("ImagePullBackOff"), now: created.Add(time.Minute), want: want{End: jobRunning}},
		"StuckPastDeadline": {reason: "A Job nobody ends is given up on after its deadline and a grace period.",
			job: job(ptr.To[int64](600)), now: created.Add(16 * time.Minute), want: want{End: jobNotRun, How: "did not finish within 15m0s"}},
		"NoDeadlineStuck": {reason: "A Job without a deadline gets the default one.",
			job: job(nil), now: created.Add(2 * time.Hour), want: want{End: jobNotRun, How: "did not finish within 1h5m0s"}},
		"FalseConditionIgnored": {job: job(nil, batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionFalse}), now: created, want: want{End: jobRunning}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			end, how := jobOutcome(tc.job, tc.pod, tc.now)
			if diff := cmp.Diff(tc.want, want{End: end, How: how}); diff != "" {
				t.Errorf("%s\njobOutcome(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestCheckRunnable(t *testing.T) {
	deployment := exampleVerifier(corev1alpha1.VerificationQuery, "postgres-query-verifier")
	deployment.Spec.RestoreOption.Target = storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "db"}
	cases := map[string]struct {
		v    *corev1alpha1.BackupVerifier
		want string
	}{
		"RestoreOnly":    {v: exampleVerifier(corev1alpha1.VerificationRestoreOnly, ""), want: ""},
		"Query":          {v: exampleVerifier(corev1alpha1.VerificationQuery, "postgres-query-verifier"), want: ""},
		"NoFunction":     {v: exampleVerifier(corev1alpha1.VerificationQuery, ""), want: "a Query verifier needs spec.function, the Function that checks the restored data"},
		"ScriptNoScript": {v: exampleVerifier(corev1alpha1.VerificationScript, "script-verifier"), want: "a Script verifier needs spec.script.location"},
		"NotAClaim":      {v: deployment, want: "a Query verifier restores into a PersistentVolumeClaim that its Function mounts, not a Deployment"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, checkRunnable(tc.v)); diff != "" {
				t.Errorf("checkRunnable: -want +got:\n%s", diff)
			}
		})
	}
}

func TestLastLineAndClip(t *testing.T) {
	cases := map[string]struct {
		in, last string
	}{
		"OneLine":   {in: "done", last: "done"},
		"Lines":     {in: "checking\nmissing.txt was not restored", last: "missing.txt was not restored"},
		"Empty":     {in: "", last: ""},
		"LongClips": {in: strings.Repeat("x", 600), last: "..." + strings.Repeat("x", 512)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.last, lastLine(tc.in)); diff != "" {
				t.Errorf("lastLine(%q): -want +got:\n%s", tc.in, diff)
			}
		})
	}
}

// TestWithoutVerdict: a session that ends without a verdict fails with its
// reason, marks a Snapshot that had no verdict NotVerified and leaves a
// Snapshot's earlier verdict as it was.
func TestWithoutVerdict(t *testing.T) {
	cases := map[string]struct {
		reason string
		had    storagev1alpha1.VerificationStatus
		want   storagev1alpha1.VerificationStatus
	}{
		"NoVerdictYet":   {reason: "A Snapshot never judged is marked NotVerified.", had: "", want: storagev1alpha1.SnapshotNotVerified},
		"VerifiedKept":   {reason: "An earlier Verified stays.", had: storagev1alpha1.SnapshotVerified, want: storagev1alpha1.SnapshotVerified},
		"FailedKept":     {reason: "An earlier VerificationFailed stays.", had: storagev1alpha1.SnapshotVerificationFailed, want: storagev1alpha1.SnapshotVerificationFailed},
		"NotVerifiedSet": {reason: "NotVerified stays NotVerified.", had: storagev1alpha1.SnapshotNotVerified, want: storagev1alpha1.SnapshotNotVerified},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			snap := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "snap-1", Namespace: "default"},
				Status: storagev1alpha1.SnapshotStatus{VerificationStatus: tc.had, VerificationSession: "earlier"}}
			s := session("s", "snap-1", 0)
			r, kube, _ := newReconciler(t, t0, snap)
			if err := r.withoutVerdict(ctx, &s, corev1alpha1.ReasonVerifierNotRun, "verifier job \"s-verify\" timed out"); err != nil {
				t.Fatal(err)
			}
			got := &storagev1alpha1.Snapshot{}
			if err := kube.Get(ctx, client.ObjectKeyFromObject(snap), got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Status.VerificationStatus); diff != "" {
				t.Errorf("%s\nthe Snapshot's verificationStatus: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff("earlier", got.Status.VerificationSession); diff != "" {
				t.Errorf("the Snapshot's verificationSession: -want +got:\n%s", diff)
			}
			if diff := cmp.Diff(corev1alpha1.VerificationSessionFailed, phase(&s)); diff != "" {
				t.Errorf("the session's phase: -want +got:\n%s", diff)
			}
			if diff := cmp.Diff(corev1alpha1.ReasonVerifierNotRun, s.GetCondition(corev1alpha1.TypeBackupVerified).Reason); diff != "" {
				t.Errorf("the BackupVerified reason: -want +got:\n%s", diff)
			}
		})
	}
}

func TestVerifierJobNotCreated(t *testing.T) {
	cases := map[string]struct {
		reason    string
		age       time.Duration
		wantErr   bool
		wantPhase corev1alpha1.BackupVerificationSessionPhase
	}{
		"BeforeDeadline": {reason: "A verifier Job that cannot be created yet is retried.", age: time.Minute, wantErr: true, wantPhase: corev1alpha1.VerificationSessionRunning},
		"PastDeadline": {reason: "Past the session's deadline the session ends without a verdict.", age: sessionrun.StartTimeout + time.Minute,
			wantPhase: corev1alpha1.VerificationSessionFailed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			snap := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "snap-1", Namespace: "default"}}
			s := session("s", "snap-1", 0)
			r, _, _ := newReconciler(t, t0.Add(tc.age), snap)
			_, _, err := r.verifierJobNotCreated(context.Background(), &s, errors.New("exceeded quota"))
			if (err != nil) != tc.wantErr {
				t.Fatalf("%s\nverifierJobNotCreated(...): error %v, want error %v", tc.reason, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantPhase, phase(&s)); diff != "" {
				t.Errorf("%s\nthe session's phase: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(corev1alpha1.ReasonVerificationExecutorNotEnsured, s.GetCondition(corev1alpha1.TypeVerificationExecutorEnsured).Reason); diff != "" {
				t.Errorf("%s\nthe executor condition's reason: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
