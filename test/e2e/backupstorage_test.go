package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stashplane/stashplane/apis"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/devcluster"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/provider"
	stashpkg "github.com/stashplane/stashplane/package"
)

// withProvider starts a dev cluster with Stashplane's CRDs and runs the
// provider against it until the test ends.
func withProvider(t *testing.T) client.Client {
	t.Helper()
	kube, _ := withProviderCluster(t)
	return kube
}

// providerOption changes the configuration the provider runs with, after
// the cluster started and before the provider does.
type providerOption func(t *testing.T, kube client.Client, cfg *rest.Config, o *provider.Options)

// withWorkers runs the provider with n workers per kind (--workers).
func withWorkers(n int) providerOption {
	return func(_ *testing.T, _ client.Client, _ *rest.Config, o *provider.Options) {
		o.Workers = n
	}
}

// withClusterDumps lets the namespaces ns dump the whole cluster
// (--cluster-dump-namespaces).
func withClusterDumps(ns ...string) providerOption {
	return func(_ *testing.T, _ client.Client, _ *rest.Config, o *provider.Options) {
		o.ClusterDumpNamespaces = ns
	}
}

// clusterWithCRDs starts a dev cluster with Stashplane's CRDs and returns
// a client that knows the provider's kinds.
func clusterWithCRDs(t *testing.T) (client.Client, *devcluster.Cluster) {
	t.Helper()
	return clusterWithCRDsOn(t, "")
}

// clusterWithCRDsOn is clusterWithCRDs on the given pod network
// (devcluster.PodNetworkIsolated, say); "" as devclustertest.Start chooses.
func clusterWithCRDsOn(t *testing.T, network string) (client.Client, *devcluster.Cluster) {
	t.Helper()
	crds, err := stashpkg.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	c := devclustertest.StartWith(t, devclustertest.Options{PodNetwork: network}, crds...)
	return providerClient(t, c.Config()), c
}

// providerClient is a client of cfg's cluster that knows the provider's
// kinds.
func providerClient(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	s, err := apis.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	kube, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return kube
}

// withProviderCluster is withProvider that also returns the dev cluster.
func withProviderCluster(t *testing.T, opts ...providerOption) (client.Client, *devcluster.Cluster) {
	t.Helper()
	return withProviderClusterOn(t, "", opts...)
}

// dirsBeforeCluster holds, per test, a directory made before its cluster
// started.
var dirsBeforeCluster sync.Map

// storageDir is a new directory for a local storage's files, removed only
// once the test's cluster has stopped: a t.TempDir made after the cluster
// started is removed before it stops, while a backup or the accessor may
// still write into it.
func storageDir(t *testing.T) string {
	t.Helper()
	base, ok := dirsBeforeCluster.Load(t)
	if !ok {
		return t.TempDir()
	}
	d, err := os.MkdirTemp(base.(string), "storage-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// withProviderClusterOn is withProviderCluster on the given pod network.
func withProviderClusterOn(t *testing.T, network string, opts ...providerOption) (client.Client, *devcluster.Cluster) {
	t.Helper()
	// Made before the cluster, so removed after it stopped (cleanups run
	// last first): storageDir's directories are written by the accessor
	// and the agents until then.
	dirsBeforeCluster.Store(t, t.TempDir())
	t.Cleanup(func() { dirsBeforeCluster.Delete(t) })
	kube, c := clusterWithCRDsOn(t, network)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := ctrl.Log.WithName(t.Name())
	cfg := c.Config()
	po := provider.Options{
		Log: log, MetricsAddress: "0", HealthAddress: "0", PollInterval: 5 * time.Second, SkipControllerNameValidation: true,
	}
	for _, o := range opts {
		o(t, kube, cfg, &po)
	}
	go func() {
		done <- provider.Run(ctx, cfg, po)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("provider stopped with an error: %v", err)
		}
	})
	return kube, c
}

func localStorage(name, ns, hostDir string, policies xpv2.ManagementPolicies) *storagev1alpha1.BackupStorage {
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: storagev1alpha1.BackupStorageSpec{
			Storage: storagev1alpha1.Backend{
				Provider: storagev1alpha1.ProviderLocal,
				Local: &storagev1alpha1.LocalSpec{
					VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}},
					MountPath:    "/stashplane/storage",
					SubPath:      "backups",
				},
			},
			DeletionPolicy:     storagev1alpha1.DeletionPolicyWipeOut,
			ManagementPolicies: policies,
		},
	}
	return bs
}

func storageCondition(ctx context.Context, kube client.Client, ns, name string, t xpv2.ConditionType) (xpv2.Condition, *storagev1alpha1.BackupStorage) {
	bs := &storagev1alpha1.BackupStorage{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, bs); err != nil {
		return xpv2.Condition{}, nil
	}
	return bs.GetCondition(t), bs
}

// A local BackupStorage is initialised through its accessor pod: the
// provider never touches the host directory, yet metadata.yaml appears in
// it. An Observe-only storage on the same directory adopts it and writes
// nothing; one on an empty directory stays NotReady and writes nothing.
// WipeOut removes the storage's directory contents and nothing beside them.
func TestLocalBackupStorage(t *testing.T) {
	t.Parallel()
	kube := withProvider(t)
	ctx := context.Background()
	host := storageDir(t)
	sibling := filepath.Join(host, "not-ours.txt")
	if err := os.WriteFile(sibling, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(ctx, localStorage("local", "default", host, nil)); err != nil {
		t.Fatal(err)
	}
	defer dumpOnFailure(t, kube, &storagev1alpha1.BackupStorageList{})
	defer dumpOnFailure(t, kube, &corev1.PodList{})
	poll(t, 2*time.Minute, "the BackupStorage did not become Ready", func(ctx context.Context) (bool, error) {
		c, bs := storageCondition(ctx, kube, "default", "local", storagev1alpha1.TypeBackendInitialized)
		return c.Status == corev1.ConditionTrue && bs.Status.Phase == storagev1alpha1.BackupStorageReady, nil
	})
	data, err := os.ReadFile(filepath.Join(host, "backups", layout.MetadataKey))
	if err != nil {
		t.Fatalf("metadata.yaml was not written into the storage: %v", err)
	}
	meta := layout.Metadata{}
	if err := yaml.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(layout.KindBackendMeta, meta.Kind); diff != "" {
		t.Errorf("metadata.yaml kind: -want +got:\n%s", diff)
	}

	// Adoption: Observe only, on a storage that holds Stashplane data.
	if err := kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "recovery"}}); err != nil {
		t.Fatal(err)
	}
	observe := xpv2.ManagementPolicies{xpv2.ManagementActionObserve}
	if err := kube.Create(ctx, localStorage("adopted", "recovery", host, observe)); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	if err := kube.Create(ctx, localStorage("nothing-there", "recovery", empty, observe)); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the Observe-only BackupStorage did not adopt the existing storage", func(ctx context.Context) (bool, error) {
		c, _ := storageCondition(ctx, kube, "recovery", "adopted", storagev1alpha1.TypeBackendInitialized)
		return c.Status == corev1.ConditionTrue, nil
	})
	poll(t, 2*time.Minute, "the Observe-only BackupStorage on an empty storage did not report it", func(ctx context.Context) (bool, error) {
		c, bs := storageCondition(ctx, kube, "recovery", "nothing-there", xpv2.TypeSynced)
		return bs != nil && c.Status == corev1.ConditionFalse && bs.Status.Phase != storagev1alpha1.BackupStorageReady, nil
	})
	if entries, _ := os.ReadDir(filepath.Join(empty, "backups")); len(entries) > 0 {
		t.Errorf("an Observe-only BackupStorage wrote into its storage: %v", entries)
	}
	after, err := os.ReadFile(filepath.Join(host, "backups", layout.MetadataKey))
	if err != nil || string(after) != string(data) {
		t.Errorf("an Observe-only BackupStorage changed metadata.yaml:\n%s", after)
	}

	// WipeOut: exactly the storage's prefix goes.
	if err := kube.Delete(ctx, &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "local", Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the wiped-out BackupStorage is still there", func(ctx context.Context) (bool, error) {
		_, bs := storageCondition(ctx, kube, "default", "local", xpv2.TypeReady)
		return bs == nil, nil
	})
	if _, err := os.Stat(filepath.Join(host, "backups", layout.MetadataKey)); err == nil {
		t.Errorf("WipeOut left metadata.yaml behind")
	}
	if b, err := os.ReadFile(sibling); err != nil || !strings.Contains(string(b), "keep me") {
		t.Errorf("WipeOut touched a file outside the storage's prefix: %v", err)
	}
}

// dumpOnFailure prints the objects of a list kind when the test failed.
func dumpOnFailure(t *testing.T, kube client.Client, list client.ObjectList) {
	if !t.Failed() {
		return
	}
	if err := kube.List(context.Background(), list); err != nil {
		t.Logf("cannot list %T: %v", list, err)
		return
	}
	// Field managers say nothing about a failure and triple the dump.
	_ = meta.EachListItem(list, func(o runtime.Object) error {
		if m, err := meta.Accessor(o); err == nil {
			m.SetManagedFields(nil)
		}
		return nil
	})
	b, _ := yaml.Marshal(list)
	t.Logf("%T:\n%s", list, b)
}
