package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/controllers/backupstorage"
	"github.com/stashplane/stashplane/internal/devcluster"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
	"github.com/stashplane/stashplane/internal/verify"
)

// The bucket rebuilds a lost cluster's catalogue. Dev cluster A backs an
// application up into local storage and is torn down. Dev cluster B, given
// the same storage read only with spec.catalog, rebuilds the Repository and
// its Snapshot in a namespace of its choosing from the records alone (a
// record that does not parse is skipped and named); the Repository says
// the password is missing until the operator provides it; then a restore
// in B brings back files equal to the ones A backed up, and nothing in the
// storage changed but restic's transient locks.
func TestCatalogRebuilt(t *testing.T) {
	t.Parallel()
	storageDir := storageDir(t)
	catalogDrill(t, drillStorage{
		storage: func(p xpv2.ManagementPolicies) *storagev1alpha1.BackupStorage {
			return localStorage("shared", "default", storageDir, p)
		},
		dir: storageDir, repoDir: filepath.Join(storageDir, "backups", "default", "app"),
	})
}

// The whole disaster-recovery drill on an S3 server both clusters reach
// with the same credentials: cluster A backs up and verifies an
// application, its data and its objects (shopApp: a Deployment with its
// claim, ServiceAccount, RBAC, ConfigMap, Secret and Service); in cluster
// B, which holds none of them, the application is recreated from the
// rebuilt catalogue into a new namespace, its pod starts once its data is
// back, and the rebuilt Snapshot is verified, objects included.
func TestCatalogRebuiltS3(t *testing.T) {
	t.Parallel()
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "backups")
	catalogDrill(t, drillStorage{
		storage: func(p xpv2.ManagementPolicies) *storagev1alpha1.BackupStorage {
			bs := s3Storage("shared", s3.Endpoint, "backups")
			bs.Spec.ManagementPolicies = p
			return bs
		},
		objects: func() []client.Object {
			return []client.Object{&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: "default"}, Data: map[string][]byte{
				storagev1alpha1.SecretKeyAWSAccessKeyID: []byte(s3.AccessKey), storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(s3.SecretKey),
			}}}
		},
		dir: s3.Dir, repoDir: filepath.Join(s3.Dir, "backups", "stashplane", "default", "app"),
		recreate: true,
	})
}

// drillStorage is the storage a catalog drill backs up into and rebuilds
// from: the BackupStorage (named shared, in default), what it needs
// beside it in each cluster, the directory holding its files, and the
// repository's directory among them.
type drillStorage struct {
	storage      func(xpv2.ManagementPolicies) *storagev1alpha1.BackupStorage
	objects      func() []client.Object
	dir, repoDir string
	// recreate backs up shopApp with its objects, verifies it in cluster
	// A, and recreates it in cluster B, where nothing of it exists, instead
	// of restoring files into a Deployment made there.
	recreate bool
}

func (d drillStorage) extra() []client.Object {
	if d.objects == nil {
		return nil
	}
	return d.objects()
}

func catalogDrill(t *testing.T, d drillStorage) {
	data := t.TempDir()
	generate(t, data, 60, 23)
	backedUp := digest(t, data)
	var snapshot string

	t.Run("ClusterA", func(t *testing.T) {
		kube, _ := withProviderCluster(t)
		ctx := context.Background()
		if err := provider.InstallBuiltins(ctx, kube); err != nil {
			t.Fatal(err)
		}
		bc := configuration(`{"paths": ["/var/lib/app"]}`)
		objs := append(d.extra(),
			d.storage(nil),
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		)
		if d.recreate {
			objs = append(objs, shopApp()...)
			bc.Spec.Sessions[0].Addon.Tasks = append(bc.Spec.Sessions[0].Addon.Tasks, corev1alpha1.TaskReference{Name: "manifest-backup"})
		} else {
			objs = append(objs, appWithHostDir("app", data))
		}
		for _, o := range append(objs, bc) {
			if err := kube.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		if d.recreate {
			// The app's data lives in its claim.
			claim := claimDir(t, kube, "app-data")
			generate(t, claim, 60, 23)
			if err := os.WriteFile(filepath.Join(claim, "marker"), []byte("restored before start\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			backedUp = digest(t, claim)
		}
		poll(t, 3*time.Minute, "cluster A's first backup did not succeed", func(ctx context.Context) (bool, error) {
			list := &storagev1alpha1.SnapshotList{}
			if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) != 1 {
				return false, nil
			}
			s := list.Items[0]
			snapshot = s.Name
			return s.Status.Phase == storagev1alpha1.SnapshotSucceeded && s.GetCondition(storagev1alpha1.TypeSnapshotMetadataUploaded).Status == corev1.ConditionTrue, nil
		})
		if d.recreate {
			// Cluster A verifies its backup, objects included.
			v := &verificationTest{t: t, kube: kube}
			verifier := restoreOnlyVerifier()
			s := v.snapshot(snapshot)
			bvs := verify.Session("default", verifier.Name, s, time.Now())
			for _, o := range []client.Object{verifier, bvs} {
				if err := kube.Create(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			if got := v.finished(bvs.Name); got.Status.Phase != corev1alpha1.VerificationSessionSucceeded {
				t.Fatalf("cluster A's verification: %s, %+v", got.Status.Phase, got.Status.Conditions)
			}
		}
		t.Logf("cluster A backed up snapshot %s; tearing cluster A down", snapshot)
	})
	if t.Failed() {
		return
	}

	// What cluster B must find, and must not change.
	broken := filepath.Join(d.repoDir, "snapshots", "broken.yaml")
	if err := os.WriteFile(broken, []byte("apiVersion: [not yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := storageDigest(t, d.dir)

	kube, cluster := withProviderCluster(t)
	ctx := context.Background()
	defer restoreLogsOnFailure(t, kube, cluster.Config(), "recovered")
	defer dumpOnFailure(t, kube, &storagev1alpha1.BackupStorageList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.RepositoryList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.RestoreSessionList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	for _, o := range d.extra() {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	bs := d.storage(xpv2.ManagementPolicies{xpv2.ManagementActionObserve})
	bs.Spec.DeletionPolicy = storagev1alpha1.DeletionPolicyDelete
	bs.Spec.UsagePolicy = &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromAll)}}
	bs.Spec.Catalog = &storagev1alpha1.CatalogSpec{Namespace: "recovered", EncryptionSecret: &storagev1alpha1.ObjectReference{Name: "recovered-password"}}
	if err := kube.Create(ctx, bs); err != nil {
		t.Fatal(err)
	}
	// The namespace does not exist yet: the storage says so.
	poll(t, time.Minute, "the catalog did not name its missing namespace", func(ctx context.Context) (bool, error) {
		c, _ := storageCondition(ctx, kube, "default", "shared", storagev1alpha1.TypeCatalogRebuilt)
		return c.Reason == backupstorage.ReasonCatalogNamespaceNotFound, nil
	})
	if err := kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "recovered"}}); err != nil {
		t.Fatal(err)
	}
	var got *storagev1alpha1.BackupStorage
	poll(t, 2*time.Minute, "the catalog was not rebuilt", func(ctx context.Context) (bool, error) {
		c, s := storageCondition(ctx, kube, "default", "shared", storagev1alpha1.TypeCatalogRebuilt)
		got = s
		return c.Status == corev1.ConditionTrue && s.Status.Catalog != nil && s.Status.Catalog.Snapshots == 1, nil
	})
	st := got.Status.Catalog
	if st.Repositories != 1 || len(st.Skipped) != 1 || !strings.HasSuffix(st.Skipped[0].Key, "default/app/snapshots/broken.yaml") || !strings.Contains(st.Skipped[0].Reason, "does not parse") {
		t.Errorf("status.catalog: %+v", st)
	}
	t.Logf("catalog: %s", got.GetCondition(storagev1alpha1.TypeCatalogRebuilt).Message)

	repo := &storagev1alpha1.Repository{}
	poll(t, time.Minute, "the rebuilt repository did not name its missing password", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "recovered", Name: "app"}, repo); err != nil {
			return false, nil
		}
		return repo.GetCondition(storagev1alpha1.TypeRepositoryInitialized).Reason == "EncryptionSecretNotFound", nil
	})
	if p := repo.GetManagementPolicies(); len(p) != 1 || p[0] != xpv2.ManagementActionObserve || repo.Spec.DeletionPolicy != storagev1alpha1.DeletionPolicyDelete {
		t.Errorf("rebuilt repository: managementPolicies %v, deletionPolicy %s; want [Observe], Delete", p, repo.Spec.DeletionPolicy)
	}
	s := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "recovered", Name: snapshot}, s); err != nil {
		t.Fatal(err)
	}
	if s.Status.Phase != storagev1alpha1.SnapshotSucceeded || s.Status.VerificationStatus != storagev1alpha1.SnapshotNotVerified || len(s.Status.Components) == 0 {
		t.Errorf("rebuilt snapshot: phase %s, verdict %s, components %v", s.Status.Phase, s.Status.VerificationStatus, s.Status.Components)
	}

	// A download needs an account of this cluster that may read the
	// storage; a rebuilt Repository has none, and says so before any Job.
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	dl := exec.Command(filepath.Join(bin, "stashplane"), "download", snapshot, "-n", "recovered", "--component", "dump", "--to", filepath.Join(t.TempDir(), "dl"))
	dl.Env = append(os.Environ(), "KUBECONFIG="+cluster.KubeconfigPath())
	if out, err := dl.CombinedOutput(); err == nil || !strings.Contains(string(out), "no backupconfiguration of this cluster composed it") {
		t.Errorf("stashplane download from the rebuilt catalog: %v\n%s; want a refusal naming the missing account", err, out)
	}

	if err := kube.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "recovered-password", Namespace: "recovered"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}}); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the rebuilt repository did not become ready with its password", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "recovered", Name: "app"}, repo); err != nil {
			return false, nil
		}
		return repo.Status.Phase == storagev1alpha1.RepositoryReady, nil
	})
	if d.recreate {
		recreateInClusterB(t, cluster, kube, snapshot, backedUp)
	} else {
		restored := t.TempDir()
		rs := restoreSession("from-catalog", "app-restored", snapshot, "")
		rs.Namespace = "recovered"
		app := appWithHostDir("app-restored", restored)
		app.SetNamespace("recovered")
		if err := kube.Create(ctx, app); err != nil {
			t.Fatal(err)
		}
		if err := kube.Create(ctx, rs); err != nil {
			t.Fatal(err)
		}
		done := finishedRestore(t, kube, "recovered", "from-catalog")
		if done.Status.Phase != corev1alpha1.RestoreSucceeded {
			t.Fatalf("restore from the rebuilt catalog: phase %s, conditions %+v, components %+v", done.Status.Phase, done.Status.Conditions, done.Status.Components)
		}
		if diff := cmp.Diff(backedUp, digest(t, restored)); diff != "" {
			t.Errorf("restored files: -backed up in cluster A +restored in cluster B:\n%s", diff)
		}
	}

	// Verified in cluster B: the verdict is this cluster's, and the
	// record in storage keeps cluster A's.
	verifier := restoreOnlyVerifier()
	verifier.Namespace = "recovered"
	if err := kube.Create(ctx, verifier); err != nil {
		t.Fatal(err)
	}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
		t.Fatal(err)
	}
	bvs := verify.Session("recovered", verifier.Name, s, time.Now())
	if err := kube.Create(ctx, bvs); err != nil {
		t.Fatal(err)
	}
	poll(t, 3*time.Minute, "the rebuilt snapshot was not verified in cluster B", func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKeyFromObject(bvs), bvs); err != nil {
			return false, nil
		}
		return bvs.Status.Phase == corev1alpha1.VerificationSessionSucceeded || bvs.Status.Phase == corev1alpha1.VerificationSessionFailed || bvs.Status.Phase == corev1alpha1.VerificationSessionSkipped, nil
	})
	if err := kube.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
		t.Fatal(err)
	}
	if bvs.Status.Phase != corev1alpha1.VerificationSessionSucceeded || s.Status.VerificationStatus != storagev1alpha1.SnapshotVerified {
		t.Errorf("verification in cluster B: session %s (%+v), snapshot verdict %s", bvs.Status.Phase, bvs.Status.Conditions, s.Status.VerificationStatus)
	}
	if diff := cmp.Diff(before, storageDigest(t, d.dir)); diff != "" {
		t.Errorf("storage changed by cluster B: -before +after:\n%s", diff)
	}
}

// recreateInClusterB recreates shopApp from the rebuilt catalogue in a new
// namespace, "shop": every object, the claim's data equal to what cluster
// A backed up (want), and the pod started once its data was back.
func recreateInClusterB(t *testing.T, cluster *devcluster.Cluster, kube client.Client, snapshot string, want map[string]string) {
	t.Helper()
	// The operator's guided restore: it makes the namespace and the
	// password Secret from a file, plans the RestoreSession from the
	// Snapshot and follows it to its end.
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(agentPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "stashplane"), "restore", "snapshot", "latest", "--repository", "app", "-n", "recovered",
		"--to-namespace", "shop", "--password-file", pw, "--name", "recreate", "--timeout", "5m", "-o", "yaml")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.KubeconfigPath())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	t.Logf("stashplane restore snapshot:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("stashplane restore snapshot: %v", err)
	}
	for _, line := range []string{"latest Succeeded snapshot of repository app: " + snapshot, "namespace shop created", "restoresession shop/recreate created", "RestoreTargetFound=False TargetRecreating", "component manifest Succeeded (objects: 9 Created)", "phase Succeeded"} {
		if !strings.Contains(stderr.String(), line) {
			t.Errorf("stashplane restore snapshot's progress lacks %q", line)
		}
	}
	if strings.Contains(stdout.String()+stderr.String(), agentPassword) {
		t.Errorf("stashplane restore snapshot printed the repository password")
	}
	done := &corev1alpha1.RestoreSession{}
	if err := yaml.Unmarshal(stdout.Bytes(), done); err != nil {
		t.Fatalf("stashplane restore snapshot -o yaml: %v\n%s", err, stdout.String())
	}
	if done.Status.Phase != corev1alpha1.RestoreSucceeded {
		t.Fatalf("recreating the app in cluster B: phase %s, conditions %+v, components %+v", done.Status.Phase, done.Status.Conditions, done.Status.Components)
	}
	if diff := cmp.Diff(wantOutcomes(corev1alpha1.ResourceCreated), outcomes(done.Status.Components[storagev1alpha1.ComponentManifest])); diff != "" {
		t.Errorf("objects recreated in cluster B: -want +got:\n%s", diff)
	}
	if diff := cmp.Diff(want, digest(t, claimDirIn(t, kube, "shop", "app-data"))); diff != "" {
		t.Errorf("restored data: -backed up in cluster A +restored in cluster B:\n%s", diff)
	}
	poll(t, 2*time.Minute, "the recreated app did not run its pod in cluster B", func(ctx context.Context) (bool, error) {
		app := &appsv1.Deployment{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "app"}, app); err != nil {
			return false, err
		}
		return app.Status.ReadyReplicas == 1, nil
	})
	startedOnce(t, kube, "shop", map[string]string{"app": "app"})
}

// storageDigest is digest of a storage directory without restic's locks,
// which a reader's restic writes and removes, and the S3 server's own
// lock files (.vgwlocks), which are not objects.
func storageDigest(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := digest(t, dir)
	for k := range out {
		if strings.Contains(k, string(filepath.Separator)+"locks"+string(filepath.Separator)) || strings.HasPrefix(k, ".vgwlocks"+string(filepath.Separator)) {
			delete(out, k)
		}
	}
	return out
}
