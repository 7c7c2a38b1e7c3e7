package backupconfiguration

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/usage"
)

// checkDefaultStorage: a backend that omits storageRef gets the default
// BackupStorage, as KubeStash resolves it: the default of the
// configuration's namespace, else the one default of another namespace
// whose usagePolicy admits the configuration's. The storage found is
// written into the configuration in memory, where the later checks see it
// and the validator saves it into the spec (resolveStorageRefs). None, or
// more than one of other namespaces, leaves the configuration NotReady
// naming the field: a default may yet be marked.
func checkDefaultStorage(ctx context.Context, in *input) (string, bool, error) {
	var all *storagev1alpha1.BackupStorageList
	for i := range in.bc.Spec.Backends {
		b := &in.bc.Spec.Backends[i]
		if b.StorageRef != nil {
			continue
		}
		if all == nil {
			all = &storagev1alpha1.BackupStorageList{}
			if err := in.kube.List(ctx, all); err != nil {
				return "", false, fmt.Errorf("cannot list backupstorages: %w", err)
			}
		}
		ref, msg, err := defaultStorage(ctx, in.kube, all.Items, in.bc.Namespace)
		if err != nil || msg != "" {
			return fmt.Sprintf("spec.backends[%d].storageRef: omitted, and %s", i, msg), false, err
		}
		b.StorageRef = ref
	}
	return "", false, nil
}

// defaultStorage is the default BackupStorage for a configuration in
// namespace ns, or why there is none to take.
func defaultStorage(ctx context.Context, kube client.Reader, all []storagev1alpha1.BackupStorage, ns string) (*storagev1alpha1.ObjectReference, string, error) {
	var others []string
	for i := range all {
		bs := &all[i]
		if !bs.IsDefaultOf(all) {
			continue
		}
		if bs.Namespace == ns {
			return &storagev1alpha1.ObjectReference{Namespace: ns, Name: bs.Name}, "", nil
		}
		ok, _, err := usage.Allowed(ctx, kube, bs.Spec.UsagePolicy, bs.Namespace, ns)
		if err != nil {
			return nil, "", fmt.Errorf("cannot check the usage policy of backupstorage %s/%s: %w", bs.Namespace, bs.Name, err)
		}
		if ok {
			others = append(others, bs.Namespace+"/"+bs.Name)
		}
	}
	switch len(others) {
	case 0:
		return nil, fmt.Sprintf("no default BackupStorage (spec.default: true) is in namespace %q or admits it by its usagePolicy; name a storage or mark one the default", ns), nil
	case 1:
		nsName := strings.SplitN(others[0], "/", 2)
		return &storagev1alpha1.ObjectReference{Namespace: nsName[0], Name: nsName[1]}, "", nil
	}
	slices.Sort(others)
	return nil, fmt.Sprintf("namespace %q has no default BackupStorage and the defaults of %d other namespaces admit it (%s); name one", ns, len(others), strings.Join(others, ", ")), nil
}
