package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/devcluster"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/verify"
)

// podIP waits for the running pod of an app label and returns its IP.
func podIP(t *testing.T, kube client.Client, app string) string {
	t.Helper()
	var ip string
	poll(t, 3*time.Minute, "the pod of "+app+" did not run", func(ctx context.Context) (bool, error) {
		pods := &corev1.PodList{}
		if err := kube.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels{"app": app}); err != nil || len(pods.Items) != 1 {
			return false, nil
		}
		ip = pods.Items[0].Status.PodIP
		return pods.Items[0].Status.Phase == corev1.PodRunning && ip != "", nil
	})
	return ip
}

// The postgres-addon's examples as written, on the isolated pod network,
// where each pod has a network of its own and reaches another only through
// a Service: the backup Job dumps app-db through the Service name "app-db"
// (the example's host, resolved by the cluster's DNS); the Query verifier
// loads the dump into its scratch server and counts the rows; and the
// RestoreSession, applied together with the clone's server as
// examples/postgres-addon/restore.yaml says, waits (its waitTimeout) for
// the clone to accept connections and loads the dump through the Service
// "app-db-clone". The storage is local: a storage server on the host's
// loopback is out of an isolated pod's reach. The test itself reaches the
// servers on their pod IPs.
func TestPostgresAddonIsolatedNetwork(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderClusterOn(t, devcluster.PodNetworkIsolated)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config())
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &batchv1.JobList{})
	defer dumpOnFailure(t, kube, &corev1.PodList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	localExampleStorage(t, kube)
	for _, o := range example(t, "postgres-addon/database.yaml", nil) {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	db := pgClient{t: t, port: 5432, host: podIP(t, kube, "app-db")}
	poll(t, 3*time.Minute, "the database did not take a password login", func(ctx context.Context) (bool, error) {
		_, err := db.query(ctx, "postgres", "select 1")
		return err == nil, nil
	})
	const rows = 5000
	if _, err := db.query(ctx, "postgres", "create database shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.query(ctx, "shop", fmt.Sprintf("create table orders (id bigserial primary key, item text not null); create table counter (n bigint not null); "+
		"insert into orders (item) select 'x' from generate_series(1, %d); insert into counter values (%d)", rows, rows)); err != nil {
		t.Fatal(err)
	}

	for _, o := range example(t, "postgres-addon/backup.yaml", nil) {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	bs := firstBackupSession(t, kube, 4*time.Minute)
	if bs.Status.Phase != corev1alpha1.BackupSessionSucceeded {
		t.Fatalf("the backup through the Service app-db is %s", bs.Status.Phase)
	}
	jobs := &batchv1.JobList{}
	if err := kube.List(ctx, jobs, client.InNamespace("default"), client.MatchingLabels{"core.stashplane.io/backupsession": bs.Name}); err != nil || len(jobs.Items) != 1 {
		t.Fatalf("the backup's Jobs: %d, %v", len(jobs.Items), err)
	}
	if args := strings.Join(jobs.Items[0].Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "--host=app-db ") {
		t.Errorf("the backup Job does not reach the server by its Service name: %s", args)
	}
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-db-dumps-" + bs.Name}, snap); err != nil {
		t.Fatal(err)
	}

	for _, o := range example(t, "postgres-addon/verifier.yaml", func(u *unstructured.Unstructured) {
		exact := []any{map[string]any{"database": "shop", "schema": "public", "table": "orders", "rowCount": map[string]any{"operator": "Equal", "value": int64(rows)}}}
		_ = unstructured.SetNestedSlice(u.Object, exact, "spec", "query", "postgres")
	}) {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	started, err := verify.Now(ctx, kube, "default", "app-db-verifier", "app-db-dumps", time.Now())
	if err != nil || len(started) != 1 {
		t.Fatalf("verify.Now: %d sessions, %v", len(started), err)
	}
	vs := (&verificationTest{t: t, kube: kube, wait: 4 * time.Minute}).finished(started[0].Name)
	if c := vs.GetCondition(corev1alpha1.TypeBackupVerified); vs.Status.Phase != corev1alpha1.VerificationSessionSucceeded || c.Status != corev1.ConditionTrue {
		t.Fatalf("verification of the dump: %s, BackupVerified %s %s: %s (result %q)", vs.Status.Phase, c.Status, c.Reason, c.Message, vs.Status.VerifierResult)
	}
	if want := fmt.Sprintf("shop.public.orders has %d rows", rows); !strings.Contains(vs.Status.VerifierResult, want) {
		t.Errorf("the verifier's result %q does not say %q", vs.Status.VerifierResult, want)
	}

	// The clone's server and the RestoreSession at once: the load waits
	// for the server.
	for _, o := range example(t, "postgres-addon/restore.yaml", nil) {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	restore := &corev1alpha1.RestoreSession{}
	poll(t, 5*time.Minute, "the restore did not end", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-db-clone"}, restore); err != nil {
			return false, nil
		}
		return restore.Status.Phase == corev1alpha1.RestoreSucceeded || restore.Status.Phase == corev1alpha1.RestoreFailed, nil
	})
	if restore.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("the restore through the Service app-db-clone is %s: %+v", restore.Status.Phase, restore.Status.Components)
	}
	clone := pgClient{t: t, port: 5432, host: podIP(t, kube, "app-db-clone")}
	if got, counter := clone.count(ctx, "shop", "select count(*) from orders"), clone.count(ctx, "shop", "select n from counter"); got != rows || counter != rows {
		t.Errorf("the clone holds %d orders and the counter %d, want %d", got, counter, rows)
	}
}
