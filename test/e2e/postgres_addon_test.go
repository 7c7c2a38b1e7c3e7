package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/pgverify"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/verify"
)

// appDBPassword is the password of examples/postgres-addon/database.yaml.
const appDBPassword = "change-me-app-db-password"

// pgClient runs psql on the host against a server of the dev cluster
// (pods share the host's network), with the password in its environment.
type pgClient struct {
	t    *testing.T
	port int
	// host is the server's address: 127.0.0.1 when empty (the host
	// network), a pod's IP on the isolated network.
	host string
}

func psqlBinary(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "bin", "postgres", pgverify.DefaultBinDir, "psql")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("PostgreSQL is not in bin/postgres (run make tools): %v", err)
	}
	return p
}

func (c pgClient) cmd(ctx context.Context, database string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, psqlBinary(c.t), append([]string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", cmp.Or(c.host, "127.0.0.1"), "-p", strconv.Itoa(c.port), "-U", "postgres", "-d", database}, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+appDBPassword, "PGCONNECT_TIMEOUT=5")
	return cmd
}

// query runs sql and returns its output, or the error with psql's message.
func (c pgClient) query(ctx context.Context, database, sql string) (string, error) {
	out, err := c.cmd(ctx, database, "-c", sql).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql %q: %v: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func (c pgClient) count(ctx context.Context, database, sql string) int {
	c.t.Helper()
	out, err := c.query(ctx, database, sql)
	if err != nil {
		c.t.Fatal(err)
	}
	n, err := strconv.Atoi(out)
	if err != nil {
		c.t.Fatalf("%s returned %q, not a number", sql, out)
	}
	return n
}

// writer inserts orders in a loop on one connection, each insert in one
// transaction that also bumps the counter row, until stop is called; it
// returns how many transactions it committed.
func (c pgClient) writer(ctx context.Context, database string) (stop func() int) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := c.cmd(ctx, database)
	in, err := cmd.StdinPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	var wg sync.WaitGroup
	n := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := io.WriteString(in, "begin; insert into orders (item) values ('written during the backup'); update counter set n = n + 1; commit;\n"); err != nil {
				return
			}
			n++
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return func() int {
		cancel()
		wg.Wait()
		_ = in.Close()
		_ = cmd.Wait()
		return n
	}
}

// withPort sets the PGPORT of a database Deployment of the examples: pods
// share the host's network on the dev cluster, so each server takes a free
// port instead of 5432.
func withPort(port int) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		if u.GetKind() != "Deployment" {
			return
		}
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		for _, e := range containers[0].(map[string]any)["env"].([]any) {
			if e := e.(map[string]any); e["name"] == "PGPORT" {
				e["value"] = strconv.Itoa(port)
			}
		}
		_ = unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers")
	}
}

// withTaskParams sets the host and port of the postgres-addon task of a
// BackupConfiguration's first session or a RestoreSession: the server's
// loopback address and free port, as pods share the host's network.
func withTaskParams(port int) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		var path []string
		switch u.GetKind() {
		case "BackupConfiguration":
			sessions, _, _ := unstructured.NestedSlice(u.Object, "spec", "sessions")
			tasks := sessions[0].(map[string]any)["addon"].(map[string]any)["tasks"].([]any)
			p := tasks[0].(map[string]any)["params"].(map[string]any)
			p["host"], p["port"] = "127.0.0.1", int64(port)
			_ = unstructured.SetNestedSlice(u.Object, sessions, "spec", "sessions")
			return
		case "RestoreSession":
			path = []string{"spec", "addon", "tasks"}
		default:
			return
		}
		tasks, _, _ := unstructured.NestedSlice(u.Object, path...)
		p := tasks[0].(map[string]any)["params"].(map[string]any)
		p["host"], p["port"] = "127.0.0.1", int64(port)
		_ = unstructured.SetNestedSlice(u.Object, tasks, path...)
	}
}

// startDatabase applies the database objects of an example file (all but
// a RestoreSession) with the server on port, and waits until it takes a
// password login.
func startDatabase(t *testing.T, kube client.Client, file string, port int) pgClient {
	t.Helper()
	ctx := context.Background()
	for _, o := range example(t, file, withPort(port)) {
		if o.GetKind() == "RestoreSession" {
			continue
		}
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	db := pgClient{t: t, port: port}
	poll(t, 3*time.Minute, "the database did not take a password login", func(ctx context.Context) (bool, error) {
		_, err := db.query(ctx, "postgres", "select 1")
		return err == nil, nil
	})
	return db
}

// localExampleStorage applies examples/storage/local.yaml with the storage
// in a temporary directory and the test's password.
func localExampleStorage(t *testing.T, kube client.Client) string {
	t.Helper()
	dir := t.TempDir()
	for _, o := range example(t, "storage/local.yaml", func(u *unstructured.Unstructured) {
		switch u.GetKind() {
		case "BackupStorage":
			_ = unstructured.SetNestedField(u.Object, dir, "spec", "storage", "local", "hostPath", "path")
		case "Secret":
			_ = unstructured.SetNestedField(u.Object, agentPassword, "stringData", "RESTIC_PASSWORD")
		}
	}) {
		if err := kube.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// firstBackupSession waits for the first BackupSession of the namespace
// to end.
func firstBackupSession(t *testing.T, kube client.Client, timeout time.Duration) *corev1alpha1.BackupSession {
	t.Helper()
	bs := &corev1alpha1.BackupSession{}
	poll(t, timeout, "the backup did not end", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		*bs = list.Items[0]
		return done(bs.Status.Phase), nil
	})
	return bs
}

// The examples of examples/postgres-addon, run as a user applies them: a
// running PostgreSQL with password authentication takes writes in a loop
// (each order inserted in one transaction with a bump of the counter row)
// while the postgres-addon dumps it with pg_dumpall into restic. The
// Query verifier restores the dump into a scratch claim, loads it into a
// new PostgreSQL made for the run and proves there that the orders equal
// the counter (the dump is one consistent picture) and, with KubeStash's
// structured row counts, that their number lies between the counts read
// before the backup started and after it ended. A RestoreSession then
// loads the dump into a second, empty server with psql, which holds the
// same. The changes to the examples: the storage is a temporary
// directory with the test's password; as pods share the host's network,
// each server listens on a free port, which the tasks reach at
// 127.0.0.1; the verifier's row counts are the test's bounds.
func TestPostgresAddon(t *testing.T) {
	t.Parallel()
	kube, _ := withProviderCluster(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defer dumpOnFailure(t, kube, &corev1.PodList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	localExampleStorage(t, kube)
	port := freePort(t)
	db := startDatabase(t, kube, "postgres-addon/database.yaml", port)
	if _, err := db.query(ctx, "postgres", "create database shop"); err != nil {
		t.Fatal(err)
	}
	// Enough rows that the dump takes a while, and writes land during it.
	if _, err := db.query(ctx, "shop", "create table orders (id bigserial primary key, item text not null); create table counter (n bigint not null); "+
		"insert into orders (item) select repeat('x', 200) from generate_series(1, 200000); insert into counter values (200000)"); err != nil {
		t.Fatal(err)
	}
	stop := db.writer(ctx, "shop")
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	time.Sleep(time.Second)
	before := db.count(ctx, "shop", "select count(*) from orders")

	for _, o := range example(t, "postgres-addon/backup.yaml", withTaskParams(port)) {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	bs := firstBackupSession(t, kube, 4*time.Minute)
	after := db.count(ctx, "shop", "select count(*) from orders")
	written := stop()
	stopped = true
	if bs.Status.Phase != corev1alpha1.BackupSessionSucceeded {
		t.Fatalf("the dump's backup is %s", bs.Status.Phase)
	}
	if after <= before {
		t.Fatalf("the writer wrote nothing during the backup (%d orders before, %d after, %d transactions)", before, after, written)
	}
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-db-dumps-" + bs.Name}, snap); err != nil {
		t.Fatal(err)
	}
	c := snap.Status.Components[storagev1alpha1.ComponentDump]
	if c.Phase != storagev1alpha1.ComponentSucceeded || len(c.ResticStats) == 0 || c.ResticStats[0].Summary == nil || c.ResticStats[0].Summary.HostPath != "/dumpfile.sql" {
		t.Fatalf("the Snapshot's component: %+v", c)
	}
	t.Logf("backed up %s (%s) while %d orders were written (%d before, %d after)", snap.Name, c.Size, written, before, after)

	for _, o := range example(t, "postgres-addon/verifier.yaml", func(u *unstructured.Unstructured) {
		bounds := []any{
			map[string]any{"database": "shop", "table": "orders", "rowCount": map[string]any{"operator": "GreaterThanOrEqual", "value": int64(before)}},
			map[string]any{"database": "shop", "schema": "public", "table": "orders", "rowCount": map[string]any{"operator": "LessThanOrEqual", "value": int64(after)}},
		}
		_ = unstructured.SetNestedSlice(u.Object, bounds, "spec", "query", "postgres")
	}) {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	vs := verify.Session("default", "app-db-verifier", snap, time.Now())
	if err := kube.Create(ctx, vs); err != nil {
		t.Fatal(err)
	}
	vs = (&verificationTest{t: t, kube: kube, wait: 4 * time.Minute}).finished(vs.Name)
	verified := vs.GetCondition(corev1alpha1.TypeBackupVerified)
	if vs.Status.Phase != corev1alpha1.VerificationSessionSucceeded || verified.Status != corev1.ConditionTrue {
		t.Fatalf("verification of the dump: %s, BackupVerified %s %s: %s (result %q)\n%s", vs.Status.Phase, verified.Status, verified.Reason, verified.Message, vs.Status.VerifierResult, verificationStory(kube, vs))
	}
	want := `query returned "0", which is Equal "0"; shop.public.orders has `
	if !strings.HasPrefix(vs.Status.VerifierResult, want) || !strings.Contains(vs.Status.VerifierResult, fmt.Sprintf("GreaterThanOrEqual %d", before)) ||
		!strings.Contains(vs.Status.VerifierResult, fmt.Sprintf("LessThanOrEqual %d", after)) {
		t.Errorf("the verifier's result %q does not show the counter and the bounds checked", vs.Status.VerifierResult)
	}
	t.Logf("verified %s: %s", snap.Name, vs.Status.VerifierResult)

	clone := startDatabase(t, kube, "postgres-addon/restore.yaml", freePort(t))
	var rs *unstructured.Unstructured
	for _, o := range example(t, "postgres-addon/restore.yaml", withTaskParams(clone.port)) {
		if o.GetKind() == "RestoreSession" {
			rs = o
		}
	}
	if err := kube.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	restore := &corev1alpha1.RestoreSession{}
	poll(t, 4*time.Minute, "the restore did not end", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: rs.GetName()}, restore); err != nil {
			return false, nil
		}
		return restore.Status.Phase == corev1alpha1.RestoreSucceeded || restore.Status.Phase == corev1alpha1.RestoreFailed, nil
	})
	if restore.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("the restore into the clone is %s: %+v", restore.Status.Phase, restore.Status.Components)
	}
	rows := clone.count(ctx, "shop", "select count(*) from orders")
	counter := clone.count(ctx, "shop", "select n from counter")
	if rows != counter {
		t.Errorf("the clone holds %d orders but the counter says %d: the dump is not one consistent picture", rows, counter)
	}
	if rows < before || rows > after {
		t.Errorf("the clone holds %d orders, not between the %d before the backup and the %d after it", rows, before, after)
	}
	t.Logf("the clone holds %d orders, the counter %d (%d before the backup, %d after)", rows, counter, before, after)

	// Bad input to a restore fails its component with a reason naming
	// it, and deletes nothing: the dump loaded again where its database
	// exists stops at its first error, and a wrong password reaches
	// nothing.
	wrong := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-db-wrong-auth", Namespace: "default"},
		StringData: map[string]string{"username": "postgres", "password": wrongDBPassword}}
	if err := kube.Create(ctx, wrong); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ authSecret, reason, says string }{
		"again":      {authSecret: "app-db-auth", reason: "LoadFailed", says: "SQLSTATE 42P04"},
		"wrong-auth": {authSecret: "app-db-wrong-auth", reason: "DatabaseAuthFailed", says: `refused user "postgres"`},
	} {
		bad := rs.DeepCopy()
		bad.Object["metadata"] = map[string]any{"name": "app-db-clone-" + name, "namespace": "default"}
		delete(bad.Object, "status")
		tasks, _, _ := unstructured.NestedSlice(bad.Object, "spec", "addon", "tasks")
		tasks[0].(map[string]any)["params"].(map[string]any)["authSecret"] = tc.authSecret
		_ = unstructured.SetNestedSlice(bad.Object, tasks, "spec", "addon", "tasks")
		if err := kube.Create(ctx, bad); err != nil {
			t.Fatal(err)
		}
		got := &corev1alpha1.RestoreSession{}
		poll(t, 4*time.Minute, "the restore did not end", func(ctx context.Context) (bool, error) {
			if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: bad.GetName()}, got); err != nil {
				return false, nil
			}
			return got.Status.Phase == corev1alpha1.RestoreSucceeded || got.Status.Phase == corev1alpha1.RestoreFailed, nil
		})
		c := got.Status.Components[storagev1alpha1.ComponentDump]
		if got.Status.Phase != corev1alpha1.RestoreFailed || !strings.HasPrefix(c.Error, tc.reason+": ") || !strings.Contains(c.Error, tc.says) {
			t.Errorf("restore %s: %s, component %q; want Failed with %s naming %q", name, got.Status.Phase, c.Error, tc.reason, tc.says)
		}
		if seen, _ := json.Marshal(got.Status); strings.Contains(string(seen), appDBPassword) || strings.Contains(string(seen), wrongDBPassword) {
			t.Errorf("restore %s: a password is in the status: %s", name, seen)
		}
		t.Logf("restore %s: %s", name, c.Error)
	}
	if again := clone.count(ctx, "shop", "select count(*) from orders"); again != rows {
		t.Errorf("the failed restores changed the clone: %d orders, was %d", again, rows)
	}
}
