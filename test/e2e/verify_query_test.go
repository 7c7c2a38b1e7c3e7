package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/pgverify"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/trigger"
	"github.com/stashplane/stashplane/internal/verify"
)

// pgRows is how many rows the backed-up table holds.
const pgRows = 42

// postgresBin is bin/postgres of this repository, from `make tools`.
func postgresBin(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "bin", "postgres", pgverify.DefaultBinDir)
	if _, err := os.Stat(filepath.Join(dir, "postgres")); err != nil {
		t.Fatalf("PostgreSQL is not in bin/postgres; run make tools: %v", err)
	}
	return dir
}

// postgresData makes a real PostgreSQL data directory at dir/pgdata with
// the table items of pgRows rows, and stops the server cleanly.
func postgresData(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	bin := postgresBin(t)
	u := pgverify.User{UID: 65534, GID: 65534}
	data := filepath.Join(dir, "pgdata")
	if err := pgverify.InitDB(ctx, bin, data, "postgres", u); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "socket")
	s, err := pgverify.Start(ctx, bin, data, socket, u)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := s.Ready(rctx, "postgres", "postgres"); err != nil {
		t.Fatal(err)
	}
	sql := fmt.Sprintf("create table items (id int primary key, name text); insert into items select i, 'item ' || i from generate_series(1, %d) i", pgRows)
	if _, err := s.Exec(ctx, "postgres", "postgres", sql); err != nil {
		t.Fatalf("%v; server log: %s", err, s.Log())
	}
	if err := s.Stop(time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(socket); err != nil {
		t.Fatal(err)
	}
}

// openTempDir is a temporary directory the unprivileged PostgreSQL user
// can reach.
func openTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "stashplane-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkVerifier is a Query or Script verifier restoring into a scratch
// claim, with the pvc-addon mounting it where the backup read the files.
func checkVerifier(name string, typ corev1alpha1.VerificationType, function string) *corev1alpha1.BackupVerifier {
	v := restoreOnlyVerifier()
	v.Name = name
	v.Spec.Scheduler = nil
	v.Spec.Type = typ
	v.Spec.Function = function
	return v
}

func queryVerifier(name, query string) *corev1alpha1.BackupVerifier {
	v := checkVerifier(name, corev1alpha1.VerificationQuery, "postgres-query-verifier")
	v.Spec.Query = &corev1alpha1.VerifierQuery{Raw: k8sruntime.RawExtension{Raw: []byte(query)}}
	return v
}

func scriptVerifier(name, scripts, script string) *corev1alpha1.BackupVerifier {
	v := checkVerifier(name, corev1alpha1.VerificationScript, "script-verifier")
	v.Spec.Script = &corev1alpha1.ScriptVerifierSpec{Location: "/scripts/" + script, Args: []string{"hello"}}
	v.Spec.Volumes = []corev1alpha1.Volume{{Name: "scripts", VolumeSource: corev1alpha1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: scripts}}}}
	v.Spec.VolumeMounts = []corev1.VolumeMount{{Name: "scripts", MountPath: "/scripts", ReadOnly: true}}
	return v
}

// Query and Script verifiers on the dev cluster: a Deployment's volume
// holding a real PostgreSQL data directory is backed up; a query verifier
// expecting a wrong row count fails the Snapshot with the count it found;
// a script that exits 1 fails it with the script's last line only; a
// script that checks a restored file verifies it. Two sessions end
// without a verdict, leaving the Snapshot NotVerified: one whose restore
// compared nothing because the Snapshot's content manifest was moved out
// of storage (ContentNotChecked), and one whose query PostgreSQL rejects
// (VerifierNotRun, naming the SQLSTATE and not the value the query held). A second Snapshot is verified by
// the PostgreSQL query verifier, which starts PostgreSQL on the restored
// data and counts the rows. Each session's scratch claim and verifier Job
// are gone afterwards.
func TestQueryAndScriptVerifiers(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	data, scripts, storageDir := openTempDir(t), t.TempDir(), storageDir(t)
	postgresData(t, data)
	if err := os.WriteFile(filepath.Join(data, "marker.txt"), []byte("hello from the backup\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"check-marker.sh": `grep -q "$1" "$RESTORE_PATH/marker.txt" || { echo "marker.txt lacks $1"; exit 1; }
echo "marker.txt says: $(cat "$RESTORE_PATH/marker.txt")"
`,
		"fail.sh": `echo "looking for $RESTORE_PATH/missing.txt"
echo "missing.txt was not restored"
exit 1
`,
	} {
		if err := os.WriteFile(filepath.Join(scripts, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	count := fmt.Sprintf(`{"dataDirectory": "pgdata", "sql": "select count(*) from items", "value": %d}`, pgRows)
	for _, o := range []client.Object{
		localStorage("shared", "default", storageDir, nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		appWithHostDir("app", data),
		queryVerifier("pg-count", count),
		queryVerifier("pg-bad-query", `{"dataDirectory": "pgdata", "sql": "select 'private-row-value'::int", "value": 1}`),
		queryVerifier("pg-wrong-count", `{"dataDirectory": "pgdata", "sql": "select count(*) from items", "operator": "Equal", "value": "7"}`),
		scriptVerifier("script-ok", scripts, "check-marker.sh"),
		scriptVerifier("script-fails", scripts, "fail.sh"),
		bc,
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var first string
	poll(t, 3*time.Minute, "the first backup did not succeed", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		first = list.Items[0].Name
		return list.Items[0].Status.Phase == corev1alpha1.BackupSessionSucceeded, nil
	})

	at := time.Now()
	run := func(verifier, snapshot string) *corev1alpha1.BackupVerificationSession {
		t.Helper()
		snap := &storagev1alpha1.Snapshot{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: snapshot}, snap); err != nil {
			t.Fatal(err)
		}
		at = at.Add(time.Minute)
		s := verify.Session("default", verifier, snap, at)
		if err := kube.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		poll(t, 4*time.Minute, "backupverificationsession "+s.Name+" did not finish", func(ctx context.Context) (bool, error) {
			if err := kube.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
				return false, nil
			}
			p := s.Status.Phase
			return p == corev1alpha1.VerificationSessionSucceeded || p == corev1alpha1.VerificationSessionFailed || p == corev1alpha1.VerificationSessionSkipped, nil
		})
		t.Logf("%s (%s): %s, result %q, BackupVerified: %s", s.Name, verifier, s.Status.Phase, s.Status.VerifierResult, s.GetCondition(corev1alpha1.TypeBackupVerified).Message)
		name := naming.ScratchClaim("scratch", s.Name)
		poll(t, 2*time.Minute, "scratch claim "+name+" and verifier job were not removed", func(ctx context.Context) (bool, error) {
			err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &corev1.PersistentVolumeClaim{})
			if err == nil || client.IgnoreNotFound(err) != nil {
				return false, nil
			}
			if s.Status.VerifierJob == "" {
				return true, nil
			}
			err = kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: s.Status.VerifierJob}, &batchv1.Job{})
			return err != nil && client.IgnoreNotFound(err) == nil, nil
		})
		return s
	}
	verification := func(snapshot string) storagev1alpha1.VerificationStatus {
		t.Helper()
		snap := &storagev1alpha1.Snapshot{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: snapshot}, snap); err != nil {
			t.Fatal(err)
		}
		return snap.Status.VerificationStatus
	}
	failed := func(s *corev1alpha1.BackupVerificationSession, snapshot string, want ...string) {
		t.Helper()
		c := s.GetCondition(corev1alpha1.TypeBackupVerified)
		if s.Status.Phase != corev1alpha1.VerificationSessionFailed || c.Reason != corev1alpha1.ReasonVerificationFailed {
			t.Errorf("session %s: phase %s, BackupVerified %s %s (%s), want Failed VerificationFailed", s.Name, s.Status.Phase, c.Status, c.Reason, c.Message)
		}
		if r := s.GetCondition(corev1alpha1.TypeRestoreSucceeded); r.Status != corev1.ConditionTrue {
			t.Errorf("session %s: RestoreSucceeded %s (%s), want True: the restore worked, the check did not", s.Name, r.Status, r.Message)
		}
		for _, w := range want {
			if !strings.Contains(c.Message, w) {
				t.Errorf("session %s: BackupVerified message %q does not say %q", s.Name, c.Message, w)
			}
		}
		if got := verification(snapshot); got != storagev1alpha1.SnapshotVerificationFailed {
			t.Errorf("snapshot %s: verification %s, want VerificationFailed", snapshot, got)
		}
	}
	passed := func(s *corev1alpha1.BackupVerificationSession, snapshot, result string) {
		t.Helper()
		c := s.GetCondition(corev1alpha1.TypeBackupVerified)
		if s.Status.Phase != corev1alpha1.VerificationSessionSucceeded || s.Status.VerifierResult != result || !strings.Contains(c.Message, result) {
			t.Errorf("session %s: phase %s, result %q, BackupVerified %s (%s); want Succeeded with result %q", s.Name, s.Status.Phase, s.Status.VerifierResult, c.Status, c.Message, result)
		}
		if got := verification(snapshot); got != storagev1alpha1.SnapshotVerified {
			t.Errorf("snapshot %s: verification %s, want Verified", snapshot, got)
		}
	}

	notJudged := func(s *corev1alpha1.BackupVerificationSession, snapshot string, reason xpv2.ConditionReason, want string) {
		t.Helper()
		c := s.GetCondition(corev1alpha1.TypeBackupVerified)
		if s.Status.Phase != corev1alpha1.VerificationSessionFailed || c.Reason != reason || !strings.Contains(c.Message, want) {
			t.Errorf("session %s: phase %s, BackupVerified %s %s (%s), want Failed %s saying %q", s.Name, s.Status.Phase, c.Status, c.Reason, c.Message, reason, want)
		}
		if got := verification(snapshot); got != storagev1alpha1.SnapshotNotVerified {
			t.Errorf("snapshot %s: verification %s, want NotVerified", snapshot, got)
		}
	}

	snap1 := "app-" + first
	// (d) Without its content manifest the restore compares no file, which
	// verifies nothing.
	var manifests []string
	err := filepath.WalkDir(storageDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(p)) == snap1 && filepath.Base(filepath.Dir(filepath.Dir(p))) == "manifests" {
			manifests = append(manifests, p)
		}
		return err
	})
	if err != nil || len(manifests) == 0 {
		t.Fatalf("no content manifest of snapshot %s under %s (%v)", snap1, storageDir, err)
	}
	for _, m := range manifests {
		if err := os.Rename(m, m+".aside"); err != nil {
			t.Fatal(err)
		}
	}
	notJudged(run("script-ok", snap1), snap1, corev1alpha1.ReasonContentNotChecked, "no file was compared with a content manifest")
	for _, m := range manifests {
		if err := os.Rename(m+".aside", m); err != nil {
			t.Fatal(err)
		}
	}
	// (e) A query PostgreSQL rejects is no check of the data.
	bad := run("pg-bad-query", snap1)
	notJudged(bad, snap1, corev1alpha1.ReasonVerifierNotRun, "SQLSTATE 22P02 (data exception)")
	if c := bad.GetCondition(corev1alpha1.TypeBackupVerified); strings.Contains(c.Message+bad.Status.VerifierResult, "private-row-value") {
		t.Errorf("session %s quotes the query's value in its status: %q, result %q", bad.Name, c.Message, bad.Status.VerifierResult)
	}
	// (b) A wrong count fails, saying what the query found.
	failed(run("pg-wrong-count", snap1), snap1, fmt.Sprintf(`query returned "%d", which is not Equal "7"`, pgRows))
	// (c) A failing script fails with its last line, and only that.
	scriptFailed := run("script-fails", snap1)
	failed(scriptFailed, snap1, "missing.txt was not restored")
	if c := scriptFailed.GetCondition(corev1alpha1.TypeBackupVerified); strings.Contains(c.Message, "looking for") {
		t.Errorf("session %s copies more than the script's last line: %q", scriptFailed.Name, c.Message)
	}
	// (c) A script that finds the restored file verifies the Snapshot.
	passed(run("script-ok", snap1), snap1, "marker.txt says: hello from the backup")

	// (a) A second Snapshot, verified by PostgreSQL itself.
	live := &corev1alpha1.BackupConfiguration{}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(bc), live); err != nil {
		t.Fatal(err)
	}
	second, err := trigger.Create(ctx, kube, live, "nightly", time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 3*time.Minute, "the second backup did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, second.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})
	snap2 := "app-" + second.Name
	passed(run("pg-count", snap2), snap2, fmt.Sprintf(`query returned "%d", which is Equal "%d"`, pgRows, pgRows))
}
