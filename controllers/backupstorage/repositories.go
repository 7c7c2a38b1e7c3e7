package backupstorage

import (
	"context"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
)

// repositoriesOf lists the Repositories that point at a BackupStorage,
// sorted by namespace and name. They share their maps and slices with the
// cache: callers only read them.
func repositoriesOf(ctx context.Context, c client.Client, bs *storagev1alpha1.BackupStorage) ([]storagev1alpha1.Repository, error) {
	// Only read, on every observation of a storage: the cache's own
	// objects, not a copy of each of the cluster's Repositories.
	list := &storagev1alpha1.RepositoryList{}
	if err := c.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("cannot list repositories: %w", err)
	}
	var out []storagev1alpha1.Repository
	for _, r := range list.Items {
		if r.StorageKey() == (types.NamespacedName{Namespace: bs.Namespace, Name: bs.Name}) && r.DeletionTimestamp == nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func locations(repos []storagev1alpha1.Repository) []layout.RepositoryLocation {
	out := make([]layout.RepositoryLocation, 0, len(repos))
	for _, r := range repos {
		out = append(out, layout.RepositoryLocation{Name: r.Name, Namespace: r.Namespace, Path: r.Spec.Path})
	}
	return out
}

func sameLocations(a, b []layout.RepositoryLocation) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// repositoryInfos is the status view of the storage's repositories.
func repositoryInfos(repos []storagev1alpha1.Repository) []storagev1alpha1.RepositoryInfo {
	out := make([]storagev1alpha1.RepositoryInfo, 0, len(repos))
	for _, r := range repos {
		info := storagev1alpha1.RepositoryInfo{Name: r.Name, Namespace: r.Namespace, Path: r.Spec.Path, Size: r.Status.Size}
		ready := r.Status.Phase == storagev1alpha1.RepositoryReady
		info.Synced = &ready
		if c := r.GetCondition(storagev1alpha1.TypeRepositoryInitialized); !ready && c.Message != "" {
			info.Error = c.Message
		}
		out = append(out, info)
	}
	return out
}
