package e2e

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// A platform team shares a host path storage and an S3 storage in
// namespace platform with spec.access Broker. Two app teams back up into
// them from their own namespaces, and team-a restores its Snapshot into a
// second Deployment, byte for byte. Their Jobs mount no storage volume and
// hold no credential: the one Secret each configuration gets holds only a
// grant, which the storage's broker honours for that team's repository
// alone: team-a's grant reads team-a's data and is refused team-b's, the
// storage's record and a listing of the whole storage, and a configuration
// of team-b naming team-a's directory is granted nothing and says so.
// team-a's restore holds a read-only grant, which writes nothing there.
// Deleting the broker's token revokes every grant it signed, and the
// configurations are granted anew. No Secret of the
// app teams' namespaces, no status and no event holds the S3 secret key.
// The provider runs with only the rules the package ships.
func TestBrokeredStorage(t *testing.T) {
	t.Parallel()
	kube := withPackageProvider(t, &corev1alpha1.BackupConfigurationList{}, &corev1alpha1.BackupSessionList{},
		&storagev1alpha1.SnapshotList{}, &batchv1.JobList{}, &rbacv1.RoleList{}, &storagev1alpha1.BackupStorageList{})
	ctx := context.Background()
	const platform, teamA, teamB = "platform", "team-a", "team-b"
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "backups")
	disk, data, restored := storageDir(t), t.TempDir(), t.TempDir()
	generate(t, data, 60, 47)

	policy := admitting("backups", platform)
	shared := s3Storage("shared", s3.Endpoint, "backups")
	shared.Namespace, shared.Spec.UsagePolicy, shared.Spec.Access = platform, policy, storagev1alpha1.AccessBroker
	local := localStorage("disk", platform, disk, nil)
	local.Spec.UsagePolicy, local.Spec.Access = policy, storagev1alpha1.AccessBroker

	bc := func(ns string, toS3 bool) *corev1alpha1.BackupConfiguration {
		c := configuration(`{"paths": ["/var/lib/app"]}`)
		c.Namespace = ns
		nightly := c.Spec.Sessions[0]
		c.Spec.Backends = []corev1alpha1.BackendReference{
			{Name: "disk", StorageRef: &storagev1alpha1.ObjectReference{Name: "disk", Namespace: platform}},
		}
		diskSession := nightly
		diskSession.Name = "to-disk"
		diskSession.Repositories = []corev1alpha1.RepositoryInfo{{Name: "app-disk", Backend: "disk", Directory: ns + "/app",
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"}}}
		c.Spec.Sessions = []corev1alpha1.Session{diskSession}
		if toS3 {
			c.Spec.Backends = append(c.Spec.Backends, corev1alpha1.BackendReference{Name: "s3", StorageRef: &storagev1alpha1.ObjectReference{Name: "shared", Namespace: platform}})
			s3Session := nightly
			s3Session.Name = "to-s3"
			s3Session.Repositories = []corev1alpha1.RepositoryInfo{{Name: "app", Backend: "s3", Directory: ns + "/app",
				EncryptionSecret: storagev1alpha1.ObjectReference{Name: "restic-password"}}}
			c.Spec.Sessions = append(c.Spec.Sessions, s3Session)
		}
		return c
	}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: platform}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: platform}, Data: map[string][]byte{
			storagev1alpha1.SecretKeyAWSAccessKeyID: []byte(s3.AccessKey), storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(s3.SecretKey),
		}},
		shared, local,
	}
	for _, ns := range []string{teamA, teamB} {
		app := appWithHostDir("app", data)
		app.SetNamespace(ns)
		objs = append(objs,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"backups": platform}}},
			app,
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: ns}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
			bc(ns, ns == teamA))
	}
	clone := appWithHostDir("app-clone", restored)
	clone.SetNamespace(teamA)
	objs = append(objs, clone)
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	// Both teams back up: team-a into both storages, team-b into the disk.
	succeeded := map[string]string{}
	poll(t, 5*time.Minute, "the first backups of the app teams did not succeed", func(ctx context.Context) (bool, error) {
		for _, ns := range []string{teamA, teamB} {
			list := &corev1alpha1.BackupSessionList{}
			if err := kube.List(ctx, list, client.InNamespace(ns)); err != nil {
				return false, err
			}
			for _, s := range list.Items {
				if s.Status.Phase == corev1alpha1.BackupSessionFailed {
					t.Fatalf("backupsession %s/%s failed: %+v", ns, s.Name, s.Status.Conditions)
				}
				if s.Status.Phase == corev1alpha1.BackupSessionSucceeded {
					succeeded[ns+"/"+s.Spec.Session] = s.Name
				}
			}
		}
		return len(succeeded) == 3, nil
	})
	t.Logf("backed up through the brokers: %v", succeeded)

	// The data is in the storages, where plain restic reads it.
	for _, c := range []struct{ ns, session, repository, dir string }{
		{teamA, "to-disk", "app-disk", filepath.Join(disk, "backups")},
		{teamA, "to-s3", "app", filepath.Join(s3.Dir, "backups", "stashplane")},
		{teamB, "to-disk", "app-disk", filepath.Join(disk, "backups")},
	} {
		snap := &storagev1alpha1.Snapshot{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: c.ns, Name: c.repository + "-" + succeeded[c.ns+"/"+c.session]}, snap); err != nil {
			t.Fatal(err)
		}
		comp := snap.Status.Components[storagev1alpha1.ComponentDump]
		if snap.Status.Phase != storagev1alpha1.SnapshotSucceeded || len(comp.ResticStats) == 0 || comp.ResticStats[0].Summary == nil {
			t.Fatalf("snapshot %s/%s: phase %s, component %+v", c.ns, snap.Name, snap.Status.Phase, comp)
		}
		out := t.TempDir()
		hostRestic(t, filepath.Join(c.dir, layout.ResticPrefix(c.ns+"/app", c.session, storagev1alpha1.ComponentDump)),
			"restore", comp.ResticStats[0].Summary.ID, "--target", out)
		if diff := cmp.Diff(digest(t, data), digest(t, filepath.Join(out, "var/lib/app"))); diff != "" {
			t.Errorf("restic restore of %s's session %s: -backed up +restored:\n%s", c.ns, c.session, diff)
		}
	}

	// The app teams' Jobs mounted no storage volume, and the only Secret
	// they were given for each storage holds a grant, no credential.
	for _, ns := range []string{teamA, teamB} {
		pods := &corev1.PodList{}
		if err := kube.List(ctx, pods, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		jobPods := 0
		for _, p := range pods.Items {
			if _, ok := p.Labels["batch.kubernetes.io/job-name"]; !ok {
				continue
			}
			jobPods++
			for _, v := range p.Spec.Volumes {
				if v.HostPath != nil && strings.HasPrefix(v.HostPath.Path, disk) {
					t.Errorf("pod %s/%s mounts the shared storage's host path %q", ns, p.Name, v.HostPath.Path)
				}
			}
		}
		if jobPods == 0 {
			t.Errorf("namespace %s ran no Job pod", ns)
		}
		secrets := &corev1.SecretList{}
		if err := kube.List(ctx, secrets, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets.Items {
			for k, v := range s.Data {
				if strings.Contains(string(v), s3.SecretKey) || strings.Contains(string(v), s3.AccessKey) {
					t.Errorf("secret %s/%s key %s holds the S3 credentials", ns, s.Name, k)
				}
			}
		}
	}
	grantOf := func(ns, name string) string {
		s := &corev1.Secret{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			t.Fatal(err)
		}
		keys := []string{}
		for k := range s.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if diff := cmp.Diff([]string{agentapi.SecretKeyStorageBrokerCertificate, agentapi.SecretKeyStorageGrant}, keys); diff != "" {
			t.Errorf("secret %s/%s: keys -want +got:\n%s", ns, name, diff)
		}
		return string(s.Data[agentapi.SecretKeyStorageGrant])
	}
	// The broker serves TLS with a certificate of its own, which the
	// grant's Secret carries and its holders pin: a client trusting the
	// system's roots alone is refused the handshake.
	openBroker := func(endpoint, grant string) (*blob.Bucket, error) {
		s := &corev1.Secret{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: teamA, Name: "app-backup.platform.disk-storage"}, s); err != nil {
			return nil, err
		}
		hc, err := accessor.HTTPClient(s.Data[agentapi.SecretKeyStorageBrokerCertificate])
		if err != nil {
			return nil, err
		}
		return accessor.OpenBucket(endpoint, grant, hc)
	}
	diskGrant := grantOf(teamA, "app-backup.platform.disk-storage")
	grantOf(teamA, "app-backup.platform.shared-storage")

	// team-a's grant reaches its repository alone.
	st := &storagev1alpha1.BackupStorage{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: platform, Name: "disk"}, st); err != nil {
		t.Fatal(err)
	}
	if st.Status.BrokerEndpoint == "" {
		t.Fatalf("backupstorage %s/disk records no broker endpoint", platform)
	}
	teamBConfig := layout.ResticConfigKey(layout.ResticPrefix(teamB+"/app", "to-disk", storagev1alpha1.ComponentDump))
	teamAConfig := layout.ResticConfigKey(layout.ResticPrefix(teamA+"/app", "to-disk", storagev1alpha1.ComponentDump))
	if !strings.HasPrefix(st.Status.BrokerEndpoint, "https://") {
		t.Errorf("backupstorage %s/disk: broker endpoint %q, want https", platform, st.Status.BrokerEndpoint)
	}
	if plain, err := accessor.OpenBucket(st.Status.BrokerEndpoint, diskGrant, nil); err != nil {
		t.Fatal(err)
	} else {
		if _, err := plain.ReadAll(ctx, teamAConfig); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("a client not pinning the broker's certificate read through it: %v", err)
		}
		plain.Close()
	}
	b, err := openBroker(st.Status.BrokerEndpoint, diskGrant)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, c := range []struct {
		what string
		do   func() error
		want gcerrors.ErrorCode
	}{
		{"read team-a's restic config", func() error { _, err := b.ReadAll(ctx, teamAConfig); return err }, gcerrors.OK},
		{"read team-b's restic config", func() error { _, err := b.ReadAll(ctx, teamBConfig); return err }, gcerrors.PermissionDenied},
		{"delete team-b's restic config", func() error { return b.Delete(ctx, teamBConfig) }, gcerrors.PermissionDenied},
		{"read the storage's record", func() error { _, err := b.ReadAll(ctx, layout.MetadataKey); return err }, gcerrors.PermissionDenied},
		{"list the whole storage", func() error {
			_, err := b.List(&blob.ListOptions{}).Next(ctx)
			return err
		}, gcerrors.PermissionDenied},
	} {
		if got := gcerrors.Code(c.do()); got != c.want {
			t.Errorf("with team-a's grant, %s: got %v, want %v", c.what, got, c.want)
		}
	}
	t.Logf("team-a's grant read its own repository and was refused team-b's, the storage record and the storage's listing")

	// team-b names team-a's directory for a repository of its own: it is
	// granted nothing of it, and its configuration says why.
	squatter := bc(teamB, false)
	squatter.Name = "squatter"
	squatter.Spec.Sessions[0].Repositories[0].Name = "squat"
	squatter.Spec.Sessions[0].Repositories[0].Directory = teamA + "/app"
	if err := kube.Create(ctx, squatter); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the configuration naming another team's directory did not say it was refused a grant", func(ctx context.Context) (bool, error) {
		c := &corev1alpha1.BackupConfiguration{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(squatter), c); err != nil {
			return false, err
		}
		cond := c.GetCondition(corev1alpha1.TypeSchedulerEnsured)
		return cond.Status == corev1.ConditionFalse && strings.Contains(cond.Message, `the path "team-a/app" overlaps repository team-a/app-disk`), nil
	})
	if err := kube.Get(ctx, client.ObjectKey{Namespace: teamB, Name: "squatter.platform.disk-storage"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("team-b's configuration naming team-a's directory got a grant secret (%v)", err)
	}
	// A Repository keeps the path it was made with: moving the squatter's
	// repository elsewhere is refused, and its configuration says so.
	update(t, kube, squatter, func() { squatter.Spec.Sessions[0].Repositories[0].Directory = teamB + "/elsewhere" })
	poll(t, 2*time.Minute, "the configuration moving its repository's directory did not say the path cannot change", func(ctx context.Context) (bool, error) {
		c := &corev1alpha1.BackupConfiguration{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(squatter), c); err != nil {
			return false, err
		}
		cond := c.GetCondition(corev1alpha1.TypeSchedulerEnsured)
		return cond.Status == corev1.ConditionFalse && strings.Contains(cond.Message, "path cannot change"), nil
	})
	squat := &storagev1alpha1.Repository{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: teamB, Name: "squat"}, squat); err != nil {
		t.Fatal(err)
	}
	if squat.Spec.Path != teamA+"/app" {
		t.Errorf("repository %s/squat moved to %q", teamB, squat.Spec.Path)
	}

	// team-a restores its Snapshot from the brokered disk.
	rs := restoreSession("clone", "app-clone", corev1alpha1.SnapshotLatest, "restic-password")
	rs.Namespace, rs.Spec.DataSource.Repository = teamA, "app-disk"
	if err := kube.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	// Its Jobs hold a read-only grant while it runs.
	var restoreGrant string
	poll(t, 2*time.Minute, "the restore's grant secret did not appear while it ran", func(ctx context.Context) (bool, error) {
		s := &corev1.Secret{}
		err := kube.Get(ctx, client.ObjectKey{Namespace: teamA, Name: naming.RestoreStorageSecret("clone")}, s)
		if err == nil {
			restoreGrant = string(s.Data[agentapi.SecretKeyStorageGrant])
			return restoreGrant != "", nil
		}
		if !apierrors.IsNotFound(err) {
			return false, err
		}
		done := &corev1alpha1.RestoreSession{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: teamA, Name: "clone"}, done); err != nil {
			return false, err
		}
		if done.Status.Phase == corev1alpha1.RestoreSucceeded || done.Status.Phase == corev1alpha1.RestoreFailed {
			t.Fatalf("restoresession %s/clone ended (%s) before its grant secret was seen", teamA, done.Status.Phase)
		}
		return false, nil
	})
	rs = finishedRestore(t, kube, teamA, "clone")
	if rs.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("restoresession %s/clone: phase %s, conditions %+v", teamA, rs.Status.Phase, rs.Status.Conditions)
	}
	if diff := cmp.Diff(digest(t, data), digest(t, restored)); diff != "" {
		t.Errorf("restored through the broker: -backed up +restored:\n%s", diff)
	}

	// The restore's grant reads team-a's repository and changes none of it.
	rb, err := openBroker(st.Status.BrokerEndpoint, restoreGrant)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	config, err := rb.ReadAll(ctx, teamAConfig)
	if err != nil {
		t.Fatalf("the restore's grant cannot read team-a's restic config: %v", err)
	}
	for _, c := range []struct {
		what string
		do   func() error
	}{
		{"overwrite team-a's restic config", func() error { return rb.WriteAll(ctx, teamAConfig, []byte("x"), nil) }},
		{"delete team-a's restic config", func() error { return rb.Delete(ctx, teamAConfig) }},
		{"copy into team-a's repository", func() error { return rb.Copy(ctx, teamAConfig+".copy", teamAConfig, nil) }},
	} {
		if got := gcerrors.Code(c.do()); got != gcerrors.PermissionDenied {
			t.Errorf("with the restore's read-only grant, %s: got %v, want PermissionDenied", c.what, got)
		}
	}
	if after, err := b.ReadAll(ctx, teamAConfig); err != nil || string(after) != string(config) {
		t.Errorf("team-a's restic config changed under the restore's read-only grant (%v)", err)
	}
	t.Logf("the restore's grant read team-a's repository and was refused writing, deleting and copying there")

	// The platform team revokes every grant of the disk by deleting its
	// broker's token: the broker restarts with a new one, refuses the old
	// grants, and the configurations get new grants that work.
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: platform, Name: accessor.Name(st)}}
	if err := kube.Delete(ctx, token); err != nil {
		t.Fatal(err)
	}
	reads := func(grant string) (gcerrors.ErrorCode, error) {
		cur := &storagev1alpha1.BackupStorage{}
		if err := kube.Get(ctx, client.ObjectKeyFromObject(st), cur); err != nil {
			return gcerrors.Unknown, err
		}
		if cur.Status.BrokerEndpoint == "" {
			return gcerrors.Unknown, nil
		}
		gb, err := openBroker(cur.Status.BrokerEndpoint, grant)
		if err != nil {
			return gcerrors.Unknown, err
		}
		defer gb.Close()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = gb.ReadAll(rctx, teamAConfig)
		return gcerrors.Code(err), nil
	}
	poll(t, 2*time.Minute, "the broker still honours a grant of its deleted token", func(ctx context.Context) (bool, error) {
		code, err := reads(diskGrant)
		return code == gcerrors.PermissionDenied, err
	})
	poll(t, 2*time.Minute, "team-a got no working grant under the broker's new token", func(ctx context.Context) (bool, error) {
		s := &corev1.Secret{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: teamA, Name: "app-backup.platform.disk-storage"}, s); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		g := string(s.Data[agentapi.SecretKeyStorageGrant])
		if g == diskGrant {
			return false, nil
		}
		code, err := reads(g)
		return code == gcerrors.OK, err
	})
	t.Logf("deleting the broker's token revoked the old grants, and team-a was granted anew")

	// The platform team takes the disk off the broker: the app teams'
	// grants for it go at once (a host path reached directly needs no
	// Secret), and come back when it is brokered again.
	setAccess := func(access storagev1alpha1.StorageAccess) {
		st := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: platform, Name: "disk"}}
		update(t, kube, st, func() { st.Spec.Access = access })
	}
	grantHeld := func(want bool) func(ctx context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			err := kube.Get(ctx, client.ObjectKey{Namespace: teamB, Name: "app-backup.platform.disk-storage"}, &corev1.Secret{})
			if client.IgnoreNotFound(err) != nil {
				return false, err
			}
			return (err == nil) == want, nil
		}
	}
	setAccess(storagev1alpha1.AccessDirect)
	poll(t, time.Minute, "team-b kept its grant after the disk stopped being brokered", grantHeld(false))
	setAccess(storagev1alpha1.AccessBroker)
	poll(t, time.Minute, "team-b got no grant back after the disk was brokered again", grantHeld(true))

	// Nothing the provider writes shows the S3 secret key.
	for _, l := range []client.ObjectList{&corev1alpha1.BackupConfigurationList{}, &corev1alpha1.BackupSessionList{}, &corev1alpha1.RestoreSessionList{},
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
}
