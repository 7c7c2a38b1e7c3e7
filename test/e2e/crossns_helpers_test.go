package e2e

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/provider"
)

// withPackageProvider is a cluster whose provider holds only the rules the
// package ships, as when installed, with the built-in addons installed.
// When the test fails it logs the restore Jobs' output and the objects of
// each of dumps.
func withPackageProvider(t *testing.T, dumps ...client.ObjectList) client.Client {
	t.Helper()
	kube, cluster := withProviderCluster(t, asProviderServiceAccount(packageRules(t)))
	t.Cleanup(func() { restoreLogsOnFailure(t, kube, cluster.Config()) })
	for _, l := range dumps {
		t.Cleanup(func() { dumpOnFailure(t, kube, l) })
	}
	if err := provider.InstallBuiltins(context.Background(), kube); err != nil {
		t.Fatal(err)
	}
	return kube
}

// admitting is a storage usage policy that admits the namespaces labelled
// key=value.
func admitting(key, value string) *storagev1alpha1.UsagePolicy {
	return &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{
		From:     ptr.To(storagev1alpha1.NamespacesFromSelector),
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{key: value}},
	}}
}
