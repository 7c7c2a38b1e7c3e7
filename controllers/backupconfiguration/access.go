package backupconfiguration

import (
	"context"
	"fmt"
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/tenancy"
)

// A configuration's backup Jobs run in its namespace, beside the target;
// its Repositories and Snapshots live there too. A backend may name a
// BackupStorage of another namespace whose usagePolicy admits the
// configuration's (validation checks that first). The Jobs then need to
// read that storage, granted by a Role and RoleBinding in its namespace
// bound to the configuration's ServiceAccount, and, for S3, GCS or Azure,
// its credentials, copied into a Secret of the configuration's namespace
// owned by the configuration. Both belong to the configuration, not to each
// session: they are the same for every run, so making them once avoids a
// Role and a Secret per backup, and the configuration already owns the
// ServiceAccount they serve. Owner references cannot cross namespaces, so
// the Roles carry the configuration's name and namespace as labels, and
// the configuration keeps finalizer until they are deleted: when it is
// deleted, when it no longer passes validation (the storage stopped
// admitting its namespace, say), and, one by one, when a backend stops
// naming a storage of that namespace.

// finalizer holds a BackupConfiguration that was granted access in other
// namespaces until that access is revoked.
const finalizer = "core.stashplane.io/backup-access"

func remoteLabels(bc *corev1alpha1.BackupConfiguration) map[string]string {
	return map[string]string{corev1alpha1.LabelBackupConfiguration: bc.Name, corev1alpha1.LabelBackupConfigurationNamespace: bc.Namespace}
}

// remoteStorages are the BackupStorages of the configuration's backends
// that live in other namespaces, in a stable order.
func (s *scheduler) remoteStorages(ctx context.Context, bc *corev1alpha1.BackupConfiguration) ([]*storagev1alpha1.BackupStorage, error) {
	seen := map[client.ObjectKey]bool{}
	var out []*storagev1alpha1.BackupStorage
	for _, b := range bc.Spec.Backends {
		key := client.ObjectKey{Namespace: b.Storage().Namespace, Name: b.Storage().Name}
		if key.Namespace == "" || key.Namespace == bc.Namespace || seen[key] {
			continue
		}
		seen[key] = true
		st := &storagev1alpha1.BackupStorage{}
		if err := s.kube.Get(ctx, key, st); kerrors.IsNotFound(err) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("cannot get backupstorage %s: %w", key, err)
		}
		// A storage that no longer admits the namespace gets no grant;
		// one that is only not ready (unreachable, credentials being
		// rotated) keeps it, so the next run reads it once it is back.
		refusal, _, err := tenancy.CheckStorage(ctx, s.kube, st, bc.Namespace, "backup jobs", s.ambient)
		if err != nil {
			return nil, err
		}
		if refusal != "" {
			continue
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out, nil
}

// desiredRemoteAccess is one Role and RoleBinding per other namespace
// holding storages of the configuration: get those storages, by name.
func desiredRemoteAccess(bc *corev1alpha1.BackupConfiguration, storages []*storagev1alpha1.BackupStorage) []client.Object {
	rules := map[string][]rbacv1.PolicyRule{}
	var order []string
	for _, st := range storages {
		if _, ok := rules[st.Namespace]; !ok {
			order = append(order, st.Namespace)
		}
		rules[st.Namespace] = append(rules[st.Namespace], agentapi.StorageRulesFor(st.Name)...)
	}
	subjects := tenancy.ServiceAccounts(bc.Namespace, append([]string{naming.ConfigurationServiceAccount(bc.Name)}, jobAccounts(bc)...)...)
	var out []client.Object
	for _, ns := range order {
		out = append(out, tenancy.Grant(naming.ConfigurationGrant(bc.Namespace, bc.Name), ns, remoteLabels(bc), rules[ns], subjects...)...)
	}
	return out
}

// ensureRemoteAccess grants the configuration's Jobs what they need in the
// namespaces of its storages, after the finalizer that removes it is in
// place, copies those storages' credential Secrets, and removes what no
// backend needs any more.
func (s *scheduler) ensureRemoteAccess(ctx context.Context, bc *corev1alpha1.BackupConfiguration) error {
	storages, err := s.remoteStorages(ctx, bc)
	if err != nil {
		return err
	}
	if len(storages) == 0 {
		if controllerutil.ContainsFinalizer(bc, finalizer) {
			return s.revokeRemoteAccess(ctx, bc)
		}
		return nil
	}
	if err := tenancy.SetFinalizer(ctx, s.kube, bc, finalizer, true); err != nil {
		return err
	}
	keep := tenancy.Keep{}
	for _, o := range desiredRemoteAccess(bc, storages) {
		kind := o.GetObjectKind().GroupVersionKind().Kind
		if err := s.applied.apply(ctx, s.kube, client.ObjectKeyFromObject(bc), o, fieldOwner, client.ForceOwnership); err != nil {
			return fmt.Errorf("cannot apply %s %s/%s: %w", kind, o.GetNamespace(), o.GetName(), err)
		}
		keep[client.ObjectKeyFromObject(o).String()] = true
	}
	for _, st := range storages {
		name, err := tenancy.CopyStorageSecret(ctx, s.kube, bc, st, naming.ConfigurationStorageSecret(bc.Name, st.Namespace, st.Name), remoteLabels(bc), fieldOwner, s.repositoriesIn(ctx, bc, st), false, s.clock.Now())
		if err != nil {
			return err
		}
		if name != "" {
			keep[client.ObjectKey{Namespace: bc.Namespace, Name: name}.String()] = true
		}
	}
	if err := tenancy.Prune(ctx, s.api, s.kube, remoteLabels(bc), bc.Namespace, keep); err != nil {
		return fmt.Errorf("cannot remove the access backupconfiguration %q no longer needs: %w", bc.Name, err)
	}
	return nil
}

// repositoriesIn are the configuration's Repositories in st, as the
// cluster has them (one not made yet is left out until it is): all that a
// grant to its Jobs reaches of a brokered storage.
func (s *scheduler) repositoriesIn(ctx context.Context, bc *corev1alpha1.BackupConfiguration, st *storagev1alpha1.BackupStorage) []*storagev1alpha1.Repository {
	var out []*storagev1alpha1.Repository
	for _, want := range desiredRepositories(bc) {
		if want.StorageKey() != client.ObjectKeyFromObject(st) {
			continue
		}
		r := &storagev1alpha1.Repository{}
		if err := s.kube.Get(ctx, client.ObjectKeyFromObject(want), r); err == nil && r.Spec.Path == want.Spec.Path {
			out = append(out, r)
		}
	}
	return out
}

// brokered says whether a backend of the configuration is on a brokered
// storage of another namespace, whose grant its scheduler renews.
func brokered(storages []*storagev1alpha1.BackupStorage) bool {
	for _, st := range storages {
		if st.Brokered() {
			return true
		}
	}
	return false
}

// revokeRemoteAccess deletes everything the configuration was granted in
// other namespaces and its copies of storage Secrets, then drops the
// finalizer.
func (s *scheduler) revokeRemoteAccess(ctx context.Context, bc *corev1alpha1.BackupConfiguration) error {
	if err := tenancy.Prune(ctx, s.api, s.kube, remoteLabels(bc), bc.Namespace, nil); err != nil {
		return fmt.Errorf("cannot revoke the access of backupconfiguration %q: %w", bc.Name, err)
	}
	return tenancy.SetFinalizer(ctx, s.kube, bc, finalizer, false)
}

// usersOfSecret maps a Secret to the configurations that copy it: those
// with a backend on a storage of another namespace whose credentials it
// holds, so that a rotated credential reaches their Jobs, or, brokered,
// whose grants its accessor token signs.
func (s *scheduler) usersOfSecret(ctx context.Context, o client.Object) []reconcile.Request {
	storages := &storagev1alpha1.BackupStorageList{}
	if err := s.kube.List(ctx, storages, client.InNamespace(o.GetNamespace())); err != nil {
		s.log.Error(err, "cannot list backupstorages")
		return nil
	}
	using := map[string]bool{}
	for _, st := range storages.Items {
		// A brokered storage's accessor token signs the grants: a new
		// one (a revocation) makes every grant be minted again at once.
		if st.Spec.Storage.SecretName() == o.GetName() || (st.Brokered() && accessor.Name(&st) == o.GetName()) {
			using[st.Name] = true
		}
	}
	return s.configurationsUsing(ctx, o.GetNamespace(), using)
}

// usersOfStorage maps a BackupStorage to the configurations of other
// namespaces with a backend on it, so that a change of its access mode
// swaps their credential copy for a grant, or back, before their next run.
func (s *scheduler) usersOfStorage(ctx context.Context, o client.Object) []reconcile.Request {
	return s.configurationsUsing(ctx, o.GetNamespace(), map[string]bool{o.GetName(): true})
}

// configurationsUsing are the configurations outside namespace ns with a
// backend on one of the storages named in using, of ns.
func (s *scheduler) configurationsUsing(ctx context.Context, ns string, using map[string]bool) []reconcile.Request {
	if len(using) == 0 {
		return nil
	}
	list := &corev1alpha1.BackupConfigurationList{}
	if err := s.kube.List(ctx, list); err != nil {
		s.log.Error(err, "cannot list backupconfigurations")
		return nil
	}
	var out []reconcile.Request
	for _, bc := range list.Items {
		for _, b := range bc.Spec.Backends {
			if b.Storage().Namespace == ns && bc.Namespace != ns && using[b.Storage().Name] {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bc)})
				break
			}
		}
	}
	return out
}
