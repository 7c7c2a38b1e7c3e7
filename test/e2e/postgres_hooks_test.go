package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/hook"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/verify"
)

// example reads the objects of a file under examples/, with change applied
// to each before it is returned.
func example(t *testing.T, path string, change func(*unstructured.Unstructured)) []*unstructured.Unstructured {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	f, err := os.Open(filepath.Join(filepath.Dir(file), "..", "..", "examples", path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := k8syaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := d.Decode(&u.Object); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("cannot read %s: %v", path, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if change != nil {
			change(u)
		}
		out = append(out, u)
	}
}

// freePort is a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The example of examples/hooks/postgres, run as a user applies it: a
// PostgreSQL server running as an unprivileged user, its data on a claim,
// is quiesced before a file-level backup (read-only, checkpointed) and
// released after it; the hooks' last lines show the server's setting at
// each point, the backup holds the data written before it, the server
// takes writes again afterwards, and the Query verifier counts the rows of
// the backed-up database. The changes to the example's files: the storage
// is a temporary directory with the test's password, and, as pods share
// the host's network on the dev cluster, the server listens on a free port
// instead of 5432.
func TestPostgresQuiesceHooks(t *testing.T) {
	t.Parallel()
	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	defer dumpOnFailure(t, kube, &corev1.PodList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(freePort(t))
	storageDir := storageDir(t)
	for _, o := range example(t, "storage/local.yaml", func(u *unstructured.Unstructured) {
		switch u.GetKind() {
		case "BackupStorage":
			_ = unstructured.SetNestedField(u.Object, storageDir, "spec", "storage", "local", "hostPath", "path")
		case "Secret":
			_ = unstructured.SetNestedField(u.Object, agentPassword, "stringData", "RESTIC_PASSWORD")
		}
	}) {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range example(t, "hooks/postgres/database.yaml", func(u *unstructured.Unstructured) {
		if u.GetKind() != "Deployment" {
			return
		}
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		c := containers[0].(map[string]any)
		for _, e := range c["env"].([]any) {
			if e := e.(map[string]any); e["name"] == "PGPORT" {
				e["value"] = port
			}
		}
		_ = unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers")
	}) {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	// Orders are written before the first backup, while the server runs.
	cs, err := kubernetes.NewForConfig(cluster.Config())
	if err != nil {
		t.Fatal(err)
	}
	runner := &hook.Runner{Kube: cs, Config: cluster.Config(), Clock: clock.RealClock{}}
	psql := func(sql string) hook.Result {
		return runner.Run(ctx, &corev1alpha1.HookTemplateSpec{
			Action:   &corev1alpha1.HookAction{ContainerName: "postgres", Exec: &corev1.ExecAction{Command: []string{"psql", "-v", "ON_ERROR_STOP=1", "-Atc", sql}}},
			Executor: corev1alpha1.HookExecutor{Type: corev1alpha1.HookExecutorPod},
		}, hook.Target{Namespace: "default", Selector: labels.SelectorFromSet(labels.Set{"app": "shop-db"})}, 30*time.Second)
	}
	defer func() {
		if !t.Failed() {
			return
		}
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=shop-db"})
		for i := 0; err == nil && i < len(pods.Items); i++ {
			t.Logf("log of pod %s:\n%s", pods.Items[i].Name, podLogs(t, cs, "default", pods.Items[i].Name, "postgres"))
		}
	}()
	poll(t, 3*time.Minute, "the database did not take the orders", func(context.Context) (bool, error) {
		res := psql("create table if not exists orders (id int primary key, item text); insert into orders select i, 'item ' || i from generate_series(1, 150) i on conflict do nothing; select count(*) from orders")
		return res.Succeeded && res.Output == "150", nil
	})

	for _, file := range []string{"hooks/postgres/hooks.yaml", "hooks/postgres/backup.yaml"} {
		for _, o := range example(t, file, nil) {
			if err := kube.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	bs := &corev1alpha1.BackupSession{}
	poll(t, 3*time.Minute, "the quiesced backup did not end", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		*bs = list.Items[0]
		return done(bs.Status.Phase), nil
	})
	if bs.Status.Phase != corev1alpha1.BackupSessionSucceeded {
		t.Fatalf("the quiesced backup is %s", bs.Status.Phase)
	}
	want := []hookSeen{{"quiesce", "Succeeded", "", "read-only for " + bs.Name + ": on", 1}}
	if diff := cmp.Diff(want, hooksSeen(bs.Status.Hooks.PreHooks)); diff != "" {
		t.Errorf("pre-backup hooks (-want +got):\n%s", diff)
	}
	want = []hookSeen{{"release", "Succeeded", "", "writable after BackupSession Succeeded: read-only=off", 1}}
	if diff := cmp.Diff(want, hooksSeen(bs.Status.Hooks.PostHooks)); diff != "" {
		t.Errorf("post-backup hooks (-want +got):\n%s", diff)
	}
	if res := psql("insert into orders values (151, 'after the backup'); select count(*) from orders"); !res.Succeeded || res.Output != "151" {
		t.Errorf("the released database does not take writes: %+v", res)
	}

	// The backup was read while the server was read-only: its
	// configuration says so, and its data holds the orders.
	snapName := "shop-db-nightly-" + bs.Name
	repoDir := filepath.Join(storageDir, "backups", layout.ResticPrefix("default/shop-db-nightly", "nightly", storagev1alpha1.ComponentDump))
	restored := t.TempDir()
	hostRestic(t, repoDir, "restore", "latest", "--target", restored, "--include", "/var/lib/postgresql/data/pgdata/postgresql.auto.conf")
	if got := readTrimmed(t, filepath.Join(restored, "var/lib/postgresql/data/pgdata/postgresql.auto.conf")); !strings.Contains(got, "default_transaction_read_only = 'on'") {
		t.Errorf("the backup's postgresql.auto.conf does not hold the quiesced setting:\n%s", got)
	}
	for _, o := range example(t, "hooks/postgres/verifier.yaml", nil) {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	snap := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: snapName}, snap); err != nil {
		t.Fatal(err)
	}
	vs := verify.Session("default", "shop-db-verifier", snap, time.Now())
	if err := kube.Create(ctx, vs); err != nil {
		t.Fatal(err)
	}
	vs = (&verificationTest{t: t, kube: kube, wait: 4 * time.Minute}).finished(vs.Name)
	c := vs.GetCondition(corev1alpha1.TypeBackupVerified)
	if vs.Status.Phase != corev1alpha1.VerificationSessionSucceeded || c.Status != corev1.ConditionTrue {
		t.Errorf("verification of the quiesced backup: %s, BackupVerified %s %s: %s (result %q)", vs.Status.Phase, c.Status, c.Reason, c.Message, vs.Status.VerifierResult)
	}
	if !strings.Contains(vs.Status.VerifierResult, "150") {
		t.Errorf("the verifier found %q, want the 150 orders written before the backup", vs.Status.VerifierResult)
	}
	t.Logf("verified %s: %s", snapName, vs.Status.VerifierResult)
}
