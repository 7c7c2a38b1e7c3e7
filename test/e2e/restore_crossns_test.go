package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A platform team's storage in namespace default admits the namespaces
// labelled for it; the app is backed up in default. A RestoreSession in an
// admitted namespace restores the Snapshot into a Deployment there with
// byte-identical files, with the password given by a Secret of its own,
// and the Role and RoleBinding it needed in default are gone once it
// ended. A namespace the policy does not admit is refused with
// NamespaceNotAllowed, a session without its own password with
// EncryptionSecretRequired, each without a Job and leaving the target as
// it was. The provider runs with only the rules the package ships.
func TestRestoreIntoAnotherNamespace(t *testing.T) {
	t.Parallel()
	kube := withPackageProvider(t, &corev1alpha1.RestoreSessionList{}, &batchv1.JobList{}, &rbacv1.RoleList{})
	ctx := context.Background()
	const admitted, other = "clone", "elsewhere"
	storageDir, data, restored, untouched := storageDir(t), t.TempDir(), t.TempDir(), t.TempDir()
	generate(t, data, 80, 23)
	if err := os.WriteFile(filepath.Join(untouched, "keep.txt"), []byte("data of a namespace the storage does not admit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := digest(t, untouched)

	bs := localStorage("shared", "default", storageDir, nil)
	bs.Spec.UsagePolicy = admitting("restore-from", "default")
	password := func(ns string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "team-password", Namespace: ns}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}}
	}
	inNamespace := func(o client.Object, ns string) client.Object {
		o.SetNamespace(ns)
		return o
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: admitted, Labels: map[string]string{"restore-from": "default"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}},
		bs,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		appWithHostDir("app", data),
		configuration(`{"paths": ["/var/lib/app"]}`),
		password(admitted),
		password(other),
		inNamespace(appWithHostDir("app-clone", restored), admitted),
		inNamespace(appWithHostDir("app-clone", untouched), other),
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	first := firstSession(t, kube)
	poll(t, 3*time.Minute, "the first backup did not succeed", func(ctx context.Context) (bool, error) {
		return sessionPhase(ctx, kube, first.Name) == corev1alpha1.BackupSessionSucceeded, nil
	})

	from := func(name, ns, secret string) *corev1alpha1.RestoreSession {
		rs := restoreSession(name, "app-clone", corev1alpha1.SnapshotLatest, secret)
		rs.Namespace = ns
		rs.Spec.DataSource.Namespace = "default"
		return rs
	}
	for _, rs := range []*corev1alpha1.RestoreSession{
		from("clone", admitted, "team-password"),
		from("no-password", admitted, ""),
		from("not-admitted", other, "team-password"),
	} {
		if err := kube.Create(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	finished := func(ns, name string) *corev1alpha1.RestoreSession {
		t.Helper()
		return finishedRestore(t, kube, ns, name)
	}
	jobsOf := func(ns, name string) int {
		jobs := &batchv1.JobList{}
		if err := kube.List(ctx, jobs, client.InNamespace(ns), client.MatchingLabels{"core.stashplane.io/restoresession": name}); err != nil {
			t.Fatal(err)
		}
		return len(jobs.Items)
	}

	// The admitted namespace restores, byte for byte, with Jobs of its own.
	rs := finished(admitted, "clone")
	comp := rs.Status.Components[storagev1alpha1.ComponentDump]
	if rs.Status.Phase != corev1alpha1.RestoreSucceeded || comp.Phase != corev1alpha1.RestoreSucceeded || comp.FilesChecked == 0 {
		t.Fatalf("restoresession %s/clone: phase %s, component %+v, conditions %+v", admitted, rs.Status.Phase, comp, rs.Status.Conditions)
	}
	if diff := cmp.Diff(digest(t, data), digest(t, restored)); diff != "" {
		t.Errorf("restored files: -backed up +restored:\n%s", diff)
	}
	if n := jobsOf(admitted, "clone"); n != 1 {
		t.Errorf("restoresession %s/clone has %d jobs in its namespace, want 1", admitted, n)
	}
	// What it was granted in default goes once it ended, and so does its
	// finalizer.
	poll(t, time.Minute, "the access of the finished restoresession in namespace default was not removed", func(ctx context.Context) (bool, error) {
		sel := client.MatchingLabels{"core.stashplane.io/restoresession": "clone", "core.stashplane.io/restoresession-namespace": admitted}
		roles, bindings := &rbacv1.RoleList{}, &rbacv1.RoleBindingList{}
		if err := kube.List(ctx, roles, sel); err != nil {
			return false, err
		}
		if err := kube.List(ctx, bindings, sel); err != nil {
			return false, err
		}
		rs := &corev1alpha1.RestoreSession{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: admitted, Name: "clone"}, rs); err != nil {
			return false, err
		}
		return len(roles.Items) == 0 && len(bindings.Items) == 0 && len(rs.Finalizers) == 0, nil
	})

	// Refused, with reasons that say what to do, and no Job.
	for _, c := range []struct {
		ns, name string
		reason   string
		says     string
	}{
		{admitted, "no-password", string(corev1alpha1.ReasonRestoreEncryptionSecretRequired), "spec.dataSource.encryptionSecret"},
		{other, "not-admitted", string(corev1alpha1.ReasonRestoreNamespaceNotAllowed), `in namespace "default" does not exist or may not be used from namespace "elsewhere"`},
	} {
		rs := finished(c.ns, c.name)
		cond := rs.GetCondition(corev1alpha1.TypeRestoreExecutorEnsured)
		if rs.Status.Phase == corev1alpha1.RestoreSucceeded || cond.Status != corev1.ConditionFalse || string(cond.Reason) != c.reason || !strings.Contains(cond.Message, c.says) {
			t.Errorf("restoresession %s/%s: phase %s, RestoreExecutorEnsured %s %s (%s), want False %s saying %q",
				c.ns, c.name, rs.Status.Phase, cond.Status, cond.Reason, cond.Message, c.reason, c.says)
		}
		if n := jobsOf(c.ns, c.name); n != 0 {
			t.Errorf("restoresession %s/%s made %d jobs, want none", c.ns, c.name, n)
		}
	}
	if diff := cmp.Diff(before, digest(t, untouched)); diff != "" {
		t.Errorf("the target in the namespace the storage does not admit changed: -before +after:\n%s", diff)
	}
}

// finishedRestore waits for a RestoreSession to end and returns it.
func finishedRestore(t *testing.T, kube client.Client, ns, name string) *corev1alpha1.RestoreSession {
	t.Helper()
	rs := &corev1alpha1.RestoreSession{}
	poll(t, 3*time.Minute, "restoresession "+ns+"/"+name+" did not finish", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rs); err != nil {
			return false, nil
		}
		p := rs.Status.Phase
		return p == corev1alpha1.RestoreSucceeded || p == corev1alpha1.RestoreFailed || p == corev1alpha1.RestoreInvalid, nil
	})
	return rs
}
