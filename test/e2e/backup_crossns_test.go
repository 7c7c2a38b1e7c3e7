package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// A platform team keeps an S3 storage and a host path storage in namespace
// platform, admitting the namespaces labelled for it. An app team backs its
// Deployment up from namespace team-a into both: the Snapshots succeed and
// plain restic restores identical bytes from each. A namespace the storages
// do not admit gets a configuration that is not Ready, saying why, and no
// session or Job. Only the S3 storage's credentials are copied, into
// team-a, and no status or event shows them; the copy and the Role the
// configuration had in platform go when it is deleted. The provider runs
// with only the rules the package ships.
func TestBackupIntoAnotherNamespace(t *testing.T) {
	t.Parallel()
	kube := withPackageProvider(t, &corev1alpha1.BackupConfigurationList{}, &corev1alpha1.BackupSessionList{},
		&storagev1alpha1.SnapshotList{}, &batchv1.JobList{}, &rbacv1.RoleList{})
	ctx := context.Background()
	const platform, team, stranger = "platform", "team-a", "team-b"
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "backups")
	storageDir, data := storageDir(t), t.TempDir()
	generate(t, data, 90, 31)

	policy := admitting("backups", platform)
	remote := s3Storage("shared", s3.Endpoint, "backups")
	remote.Namespace, remote.Spec.UsagePolicy = platform, policy
	disk := localStorage("disk", platform, storageDir, nil)
	disk.Spec.UsagePolicy = policy

	// One session per storage: the workload addon names a Job after its
	// session and task.
	bc := func(ns string) *corev1alpha1.BackupConfiguration {
		c := configuration(`{"paths": ["/var/lib/app"]}`)
		c.Namespace = ns
		nightly := c.Spec.Sessions[0]
		c.Spec.Backends = []corev1alpha1.BackendReference{
			{Name: "s3", StorageRef: &storagev1alpha1.ObjectReference{Name: "shared", Namespace: platform}},
			{Name: "disk", StorageRef: &storagev1alpha1.ObjectReference{Name: "disk", Namespace: platform}},
		}
		s3Session, diskSession := nightly, nightly
		s3Session.Name, diskSession.Name = "to-s3", "to-disk"
		s3Session.Repositories = []corev1alpha1.RepositoryInfo{{Name: "app", Backend: "s3", Directory: ns + "/app",
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"}}}
		diskSession.Repositories = []corev1alpha1.RepositoryInfo{{Name: "app-disk", Backend: "disk", Directory: ns + "/app",
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"}}}
		c.Spec.Sessions = []corev1alpha1.Session{s3Session, diskSession}
		return c
	}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: platform}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: team, Labels: map[string]string{"backups": platform}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: stranger}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: platform}, Data: map[string][]byte{
			storagev1alpha1.SecretKeyAWSAccessKeyID: []byte(s3.AccessKey), storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(s3.SecretKey),
		}},
		remote, disk,
	}
	for _, ns := range []string{team, stranger} {
		app := appWithHostDir("app", data)
		app.SetNamespace(ns)
		objs = append(objs, app,
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: ns}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
			bc(ns))
	}
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	// team-a backs up into both storages of platform.
	sessions := map[string]string{}
	poll(t, 4*time.Minute, "the first backups of team-a did not succeed", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace(team)); err != nil {
			return false, err
		}
		for _, s := range list.Items {
			if s.Status.Phase == corev1alpha1.BackupSessionFailed {
				t.Fatalf("backupsession %s/%s failed: %+v", team, s.Name, s.Status.Conditions)
			}
			if s.Status.Phase == corev1alpha1.BackupSessionSucceeded {
				sessions[s.Spec.Session] = s.Name
			}
		}
		return len(sessions) == 2, nil
	})
	for _, c := range []struct{ session, repository, dir string }{
		{"to-s3", "app", filepath.Join(s3.Dir, "backups", "stashplane")},
		{"to-disk", "app-disk", filepath.Join(storageDir, "backups")},
	} {
		snap := &storagev1alpha1.Snapshot{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: team, Name: c.repository + "-" + sessions[c.session]}, snap); err != nil {
			t.Fatal(err)
		}
		comp := snap.Status.Components[storagev1alpha1.ComponentDump]
		if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded || len(comp.ResticStats) == 0 || comp.ResticStats[0].Summary == nil {
			t.Fatalf("snapshot %s/%s: phase %s, component %+v", team, snap.Name, snap.Status.Phase, comp)
		}
		restored := t.TempDir()
		hostRestic(t, filepath.Join(c.dir, layout.ResticPrefix(team+"/app", c.session, storagev1alpha1.ComponentDump)),
			"restore", comp.ResticStats[0].Summary.ID, "--target", restored)
		if diff := cmp.Diff(digest(t, data), digest(t, filepath.Join(restored, "var/lib/app"))); diff != "" {
			t.Errorf("restic restore of session %s: -backed up +restored:\n%s", c.session, diff)
		}
	}

	// What team-a was given: a Role in platform reading the two storages by
	// name, and one copied Secret, of the S3 storage.
	remoteSel := client.MatchingLabels{"core.stashplane.io/backupconfiguration": "app-backup", "core.stashplane.io/backupconfiguration-namespace": team}
	roles, copies := &rbacv1.RoleList{}, &corev1.SecretList{}
	if err := kube.List(ctx, roles, remoteSel); err != nil {
		t.Fatal(err)
	}
	if err := kube.List(ctx, copies, remoteSel); err != nil {
		t.Fatal(err)
	}
	var granted []string
	for _, r := range roles.Items {
		for _, rule := range r.Rules {
			granted = append(granted, r.Namespace+": "+strings.Join(rule.Verbs, ",")+" "+strings.Join(rule.Resources, ",")+" "+strings.Join(rule.ResourceNames, ","))
		}
	}
	for _, s := range copies.Items {
		granted = append(granted, "secret "+s.Namespace+"/"+s.Name)
	}
	want := []string{"platform: get backupstorages disk", "platform: get backupstorages shared", "secret team-a/app-backup.platform.shared-storage"}
	if diff := cmp.Diff(want, granted); diff != "" {
		t.Errorf("team-a's access outside its namespace: -want +got:\n%s", diff)
	}

	// team-b is refused before anything runs.
	poll(t, time.Minute, "the configuration of team-b was not refused", func(ctx context.Context) (bool, error) {
		c := &corev1alpha1.BackupConfiguration{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: stranger, Name: "app-backup"}, c); err != nil {
			return false, err
		}
		cond := c.GetCondition(corev1alpha1.TypeValidationPassed)
		return c.Status.Phase == corev1alpha1.BackupInvokerNotReady && cond.Status == corev1.ConditionFalse &&
			strings.Contains(cond.Message, `may not be used from namespace "team-b": its usagePolicy selector does not match namespace "team-b"`), nil
	})
	strangerRoles := &rbacv1.RoleList{}
	if err := kube.List(ctx, strangerRoles, client.MatchingLabels{"core.stashplane.io/backupconfiguration-namespace": stranger}); err != nil {
		t.Fatal(err)
	}
	sessionsB, jobsB := &corev1alpha1.BackupSessionList{}, &batchv1.JobList{}
	if err := kube.List(ctx, sessionsB, client.InNamespace(stranger)); err != nil {
		t.Fatal(err)
	}
	if err := kube.List(ctx, jobsB, client.InNamespace(stranger)); err != nil {
		t.Fatal(err)
	}
	if len(sessionsB.Items)+len(jobsB.Items)+len(strangerRoles.Items) != 0 {
		t.Errorf("team-b got %d sessions, %d jobs and %d roles, want none", len(sessionsB.Items), len(jobsB.Items), len(strangerRoles.Items))
	}

	// No status and no event shows the S3 secret key.
	for _, l := range []client.ObjectList{&corev1alpha1.BackupConfigurationList{}, &corev1alpha1.BackupSessionList{},
		&storagev1alpha1.SnapshotList{}, &storagev1alpha1.RepositoryList{}, &storagev1alpha1.BackupStorageList{}, &corev1.EventList{}} {
		if err := kube.List(ctx, l); err != nil {
			t.Fatal(err)
		}
		items, err := runtimeItems(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if strings.Contains(it, s3.SecretKey) {
				t.Errorf("a %T item shows the S3 secret key: %.300s", l, it)
			}
		}
	}

	// A namespace the storages stop admitting loses what it was granted;
	// admitted again, it gets it back.
	access := func(ctx context.Context) (phase corev1alpha1.BackupInvokerPhase, objects int, finalizers []string, err error) {
		roles, bindings, copies := &rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &corev1.SecretList{}
		for _, l := range []client.ObjectList{roles, bindings, copies} {
			if err := kube.List(ctx, l, remoteSel); err != nil {
				return "", 0, nil, err
			}
		}
		c := &corev1alpha1.BackupConfiguration{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: team, Name: "app-backup"}, c); err != nil {
			return "", 0, nil, err
		}
		return c.Status.Phase, len(roles.Items) + len(bindings.Items) + len(copies.Items), c.Finalizers, nil
	}
	label := func(labels map[string]string) {
		ns := &corev1.Namespace{}
		if err := kube.Get(ctx, client.ObjectKey{Name: team}, ns); err != nil {
			t.Fatal(err)
		}
		ns.Labels = labels
		if err := kube.Update(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	label(nil)
	poll(t, time.Minute, "team-a kept its access in platform after the storages stopped admitting it", func(ctx context.Context) (bool, error) {
		phase, n, finalizers, err := access(ctx)
		return phase == corev1alpha1.BackupInvokerNotReady && n == 0 && len(finalizers) == 0, err
	})
	label(map[string]string{"backups": platform})
	poll(t, time.Minute, "team-a did not get its access in platform back once admitted again", func(ctx context.Context) (bool, error) {
		phase, n, finalizers, err := access(ctx)
		return phase == corev1alpha1.BackupInvokerReady && n == 3 && len(finalizers) == 1, err
	})

	// Deleting the configuration takes its Role and copied Secret along.
	if err := kube.Delete(ctx, &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "app-backup"}}); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "team-a's access in platform and its copied secret were not removed", func(ctx context.Context) (bool, error) {
		roles, bindings, copies := &rbacv1.RoleList{}, &rbacv1.RoleBindingList{}, &corev1.SecretList{}
		for _, l := range []client.ObjectList{roles, bindings, copies} {
			if err := kube.List(ctx, l, remoteSel); err != nil {
				return false, err
			}
		}
		err := kube.Get(ctx, client.ObjectKey{Namespace: team, Name: "app-backup"}, &corev1alpha1.BackupConfiguration{})
		return len(roles.Items)+len(bindings.Items)+len(copies.Items) == 0 && client.IgnoreNotFound(err) == nil && err != nil, nil
	})
}

// runtimeItems are the items of a list, each as JSON, status included.
func runtimeItems(l client.ObjectList) ([]string, error) {
	raw, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []runtime.RawExtension `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list.Items))
	for _, it := range list.Items {
		out = append(out, string(it.Raw))
	}
	return out, nil
}
