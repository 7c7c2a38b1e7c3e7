package restoresession

import (
	"context"
	"fmt"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/tenancy"
)

// A session's restore Jobs run in its own namespace, beside the target
// whose volumes they write. The Repository and Snapshot they read may live
// in another namespace, and the BackupStorage in a third. What the agent
// needs there is granted by a Role and RoleBinding in that namespace,
// bound to the session's ServiceAccount; owner references cannot cross
// namespaces, so these carry the session's name and namespace as labels
// and the session keeps finalizer until they are deleted, which is done as
// soon as the session ends.

// finalizer holds a RestoreSession that was granted access in other
// namespaces until that access is revoked.
const finalizer = "core.stashplane.io/restore-access"

// repositoryNamespace is the namespace of the Repository a session
// restores from.
func repositoryNamespace(rs *corev1alpha1.RestoreSession) string {
	if ns := rs.Spec.DataSource.Namespace; ns != "" {
		return ns
	}
	return rs.Namespace
}

// checkStorageUse refuses a storage in another namespace whose usagePolicy
// does not admit the session's namespace, or that the session's Jobs
// cannot mount.
func (r *reconciler) checkStorageUse(ctx context.Context, rs *corev1alpha1.RestoreSession, st *storagev1alpha1.BackupStorage) (xpv2.ConditionReason, string, error) {
	refusal, msg, err := tenancy.CheckStorage(ctx, r.kube, st, rs.Namespace, "restore jobs", r.ambient)
	switch refusal {
	case tenancy.NotAllowed, tenancy.AmbientNotAllowed:
		return corev1alpha1.ReasonRestoreNamespaceNotAllowed, msg, nil
	case tenancy.NotReachable:
		return corev1alpha1.ReasonRestoreStorageNotReachable, msg, nil
	}
	return "", "", err
}

// grants are the rules the agent needs, by namespace: report to the
// session in its own, read the Repository and Snapshot (by name) in
// theirs, read the BackupStorage (by name) in its; and, when a task
// recreates objects from resource manifests, recreate them in its own
// namespace (agentapi.ObjectWriteRulesFor). A restore beside its
// Repository may also get pods, to remove a restic lock a prune pod that
// no longer runs left; a restore from another namespace is not allowed
// to read that namespace's pods, and such a lock stops it until restic
// deems the lock stale.
func grants(rs *corev1alpha1.RestoreSession, repo *storagev1alpha1.Repository, snapshot string, st *storagev1alpha1.BackupStorage, recreates bool) map[string][]rbacv1.PolicyRule {
	out := map[string][]rbacv1.PolicyRule{rs.Namespace: agentapi.RestoreRulesFor(rs.Name)}
	if recreates {
		out[rs.Namespace] = append(out[rs.Namespace], agentapi.ObjectWriteRulesFor(rs.Name)...)
	}
	out[repo.Namespace] = append(out[repo.Namespace], agentapi.RestoreReadRules(repo.Name, snapshot)...)
	if repo.Namespace == rs.Namespace {
		out[repo.Namespace] = append(out[repo.Namespace], agentapi.PruneLockRules()...)
	}
	out[st.Namespace] = append(out[st.Namespace], agentapi.StorageRulesFor(st.Name)...)
	return out
}

// remoteName names a session's Role and RoleBinding in other namespaces.
// A namespace holds no dot, so distinct sessions get distinct names.
func remoteName(rs *corev1alpha1.RestoreSession) string {
	return naming.RestoreGrant(rs.Namespace, rs.Name)
}

// storageSecretName names the session's copy of the storage Secret.
func storageSecretName(rs *corev1alpha1.RestoreSession) string {
	return naming.RestoreStorageSecret(rs.Name)
}

// remoteLabels mark what a session has in other namespaces.
func remoteLabels(rs *corev1alpha1.RestoreSession) map[string]string {
	return map[string]string{corev1alpha1.LabelRestoreSession: rs.Name, corev1alpha1.LabelRestoreSessionNamespace: rs.Namespace}
}

// desiredAccess is the session's ServiceAccount with its Role and
// RoleBinding in the session's namespace, and a Role and RoleBinding for
// each other namespace the agent reads from.
func desiredAccess(rs *corev1alpha1.RestoreSession, in plan.Inputs, recreates bool) (local, remote []client.Object) {
	st := storageOf(in)
	sa := naming.RestoreServiceAccount(rs.Name)
	for ns, rules := range grants(rs, in.Repository, in.Snapshot.Name, st, recreates) {
		if ns == rs.Namespace {
			local = tenancy.Objects(sa, ns, map[string]string{corev1alpha1.LabelRestoreSession: rs.Name}, rules, rs.Spec.Addon.ServiceAccount())
			continue
		}
		// The Jobs run as the session's ServiceAccount, or as the one its
		// jobTemplate names.
		subjects := tenancy.ServiceAccounts(rs.Namespace, sa, rs.Spec.Addon.ServiceAccount())
		remote = append(remote, tenancy.Grant(remoteName(rs), ns, remoteLabels(rs), rules, subjects...)...)
	}
	return local, remote
}

// storageOf is the one BackupStorage among a restore's inputs.
func storageOf(in plan.Inputs) *storagev1alpha1.BackupStorage {
	for _, st := range in.Storages {
		return st
	}
	return &storagev1alpha1.BackupStorage{}
}

// ensureAccess applies the session's access objects: those in its
// namespace owned by it, those in others after the finalizer that removes
// them is in place. It returns the name of the session's copy of the
// storage Secret, or "" when the Jobs mount the storage's own.
func (r *reconciler) ensureAccess(ctx context.Context, rs *corev1alpha1.RestoreSession, in plan.Inputs, recreates bool) (string, error) {
	local, remote := desiredAccess(rs, in, recreates)
	for _, o := range local {
		if err := r.applyOwned(ctx, rs, o); err != nil {
			return "", err
		}
	}
	if len(remote) > 0 {
		if err := tenancy.SetFinalizer(ctx, r.kube, rs, finalizer, true); err != nil {
			return "", err
		}
	}
	for _, o := range remote {
		if err := r.kube.Patch(ctx, o, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
			return "", fmt.Errorf("cannot apply %s %s/%s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetNamespace(), o.GetName(), err)
		}
	}
	return r.copyStorageSecret(ctx, rs, storageOf(in), in.Repository)
}

func (r *reconciler) applyOwned(ctx context.Context, rs *corev1alpha1.RestoreSession, o client.Object) error {
	return tenancy.ApplyOwned(ctx, r.kube, rs, o, fieldOwner)
}

// copyStorageSecret copies the Secret of a storage in another namespace
// into one owned by the session, which its Jobs mount: the storage's
// usagePolicy admits the session's namespace, and its Jobs can only reach
// the storage with its credentials. Only the storage's own Secret is
// copied, never an encryption Secret, and the copy is deleted when the
// session ends.
//
// For a brokered storage the session's Secret holds no credential, only
// a read-only grant over the Repository it restores from: a restore may
// take restic's lock there and change nothing else.
func (r *reconciler) copyStorageSecret(ctx context.Context, rs *corev1alpha1.RestoreSession, st *storagev1alpha1.BackupStorage, repo *storagev1alpha1.Repository) (string, error) {
	return tenancy.CopyStorageSecret(ctx, r.kube, rs, st, storageSecretName(rs), remoteLabels(rs), fieldOwner, []*storagev1alpha1.Repository{repo}, true, r.clock.Now())
}

// revokeAccess deletes what a session was granted in other namespaces and
// its copy of the storage Secret, then drops the finalizer. It lists from
// the API server, not the cache, so that nothing just made is missed.
func (r *reconciler) revokeAccess(ctx context.Context, rs *corev1alpha1.RestoreSession) error {
	if err := tenancy.Prune(ctx, r.reader, r.kube, remoteLabels(rs), rs.Namespace, nil); err != nil {
		return fmt.Errorf("cannot revoke the access of restoresession %q: %w", rs.Name, err)
	}
	return tenancy.SetFinalizer(ctx, r.kube, rs, finalizer, false)
}
