package e2e

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/provider"
)

// wrongDBPassword is the password of the auth Secret that does not match.
const wrongDBPassword = "not-the-app-db-password-9d2e"

// holdLock takes an exclusive lock on table in one open transaction and
// keeps it until release is called.
func (c pgClient) holdLock(ctx context.Context, database, table string) (release func()) {
	c.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	cmd := c.cmd(ctx, database)
	in, err := cmd.StdinPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	if _, err := io.WriteString(in, "begin; lock table "+table+" in access exclusive mode;\n"); err != nil {
		c.t.Fatal(err)
	}
	poll(c.t, time.Minute, "the lock was not taken", func(ctx context.Context) (bool, error) {
		out, err := c.query(ctx, database, "select count(*) from pg_locks where mode = 'AccessExclusiveLock' and relation = '"+table+"'::regclass")
		return err == nil && out == "1", nil
	})
	return func() {
		cancel()
		_ = in.Close()
		_ = cmd.Wait()
	}
}

// Bad input to the postgres-addon, each in a BackupConfiguration of its
// own against one running server: a wrong password, a Service that does
// not resolve, a database that does not exist, and a dump that fails half
// way (pg_dumpall has streamed the roles and the first databases when its
// pg_dump of shop gives up waiting for a lock a client holds). Each
// component is Failed with a reason naming the cause, no restic snapshot
// holds a partial dump, and neither password appears in the Snapshot,
// the session or the Job's log.
func TestPostgresAddonBadInput(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	storageDir := localExampleStorage(t, kube)
	port := freePort(t)
	db := startDatabase(t, kube, "postgres-addon/database.yaml", port)
	if _, err := db.query(ctx, "postgres", "create database shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.query(ctx, "shop", "create table orders (id int primary key); insert into orders select generate_series(1, 1000)"); err != nil {
		t.Fatal(err)
	}
	wrong := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-db-wrong-auth", Namespace: "default"},
		StringData: map[string]string{"username": "postgres", "password": wrongDBPassword}}
	if err := kube.Create(ctx, wrong); err != nil {
		t.Fatal(err)
	}
	release := db.holdLock(ctx, "shop", "orders")
	defer release()

	cases := map[string]struct {
		params map[string]any
		reason string
		says   string
	}{
		"wrong-password": {params: map[string]any{"authSecret": "app-db-wrong-auth"}, reason: "DatabaseAuthFailed", says: `refused user "postgres"`},
		"no-service":     {params: map[string]any{"host": "app-db-missing"}, reason: "DatabaseUnreachable", says: "app-db-missing:"},
		"no-database":    {params: map[string]any{"backupCmd": "pg_dump", "databases": "nosuchdb"}, reason: "DatabaseNotFound", says: `database "nosuchdb" does not exist`},
		"half-way":       {params: map[string]any{"args": "--lock-wait-timeout=1000"}, reason: "DumpFailed", says: "pg_dumpall failed (exit status 1): query failed: ERROR:  canceling statement due to statement timeout"},
	}
	for name, tc := range cases {
		for _, o := range example(t, "postgres-addon/backup.yaml", withTaskParams(port)) {
			o.SetName(name)
			sessions, _, _ := unstructured.NestedSlice(o.Object, "spec", "sessions")
			s := sessions[0].(map[string]any)
			repo := s["repositories"].([]any)[0].(map[string]any)
			repo["name"], repo["directory"] = name, "default/"+name
			p := s["addon"].(map[string]any)["tasks"].([]any)[0].(map[string]any)["params"].(map[string]any)
			for k, v := range tc.params {
				p[k] = v
			}
			_ = unstructured.SetNestedSlice(o.Object, sessions, "spec", "sessions")
			if err := kube.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	sessions := map[string]corev1alpha1.BackupSession{}
	poll(t, 5*time.Minute, "the backups did not end", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil {
			return false, nil
		}
		for _, s := range list.Items {
			if done(s.Status.Phase) {
				sessions[s.Spec.Invoker.Name] = s
			}
		}
		return len(sessions) == len(cases), nil
	})
	cs, err := kubernetes.NewForConfig(cluster.Config())
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bs := sessions[name]
			if bs.Status.Phase != corev1alpha1.BackupSessionFailed {
				t.Errorf("the backup is %s, want Failed", bs.Status.Phase)
			}
			snap := &storagev1alpha1.Snapshot{}
			if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: name + "-" + bs.Name}, snap); err != nil {
				t.Fatal(err)
			}
			c := snap.Status.Components[storagev1alpha1.ComponentDump]
			if c.Phase != storagev1alpha1.ComponentFailed || !strings.HasPrefix(c.Error, tc.reason+": ") || !strings.Contains(c.Error, tc.says) {
				t.Errorf("component %s: %q, want Failed with %q naming %q", c.Phase, c.Error, tc.reason, tc.says)
			}
			// No restic snapshot holds a partial dump.
			repo := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/"+name, "nightly", storagev1alpha1.ComponentDump))
			var snaps []resticSnapshot
			if err := json.Unmarshal(hostRestic(t, repo, "snapshots", "--json"), &snaps); err != nil {
				t.Fatal(err)
			}
			if len(snaps) != 0 {
				t.Errorf("the failed dump left %d restic snapshots: %+v", len(snaps), snaps)
			}
			// Nothing secret in the Snapshot, the session or the log.
			seen, _ := json.Marshal([]any{snap.Status, bs.Status})
			pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "stashplane.io/session=" + bs.Name})
			if err != nil || len(pods.Items) == 0 {
				t.Fatalf("no pod of the backup Job (%v)", err)
			}
			logs := podLogs(t, cs, "default", pods.Items[0].Name, "backup")
			for _, secret := range []string{appDBPassword, wrongDBPassword, agentPassword} {
				if strings.Contains(string(seen), secret) || strings.Contains(logs, secret) {
					t.Errorf("a password is in the status or the Job's log:\n%s\n%s", seen, logs)
				}
			}
			t.Logf("%s: %s", name, c.Error)
		})
	}
}
