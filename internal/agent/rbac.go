package agent

import (
	rbacv1 "k8s.io/api/rbac/v1"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// Rules are what the agent needs in the namespace of its Repository and
// Snapshot: read the Repository, the Snapshot and (when it lives there)
// the BackupStorage, and write the Snapshot's status. Bind them with a Role
// in that namespace; a BackupStorage in another namespace also needs
// StorageRules bound there. Nothing else: no Secrets (credentials are
// mounted files), no lists, no watches.
func Rules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{
			APIGroups: []string{storagev1alpha1.Group},
			Resources: []string{"repositories", "backupstorages", "snapshots"},
			Verbs:     []string{"get"},
		},
		{
			APIGroups: []string{storagev1alpha1.Group},
			Resources: []string{"snapshots/status"},
			Verbs:     []string{"get", "patch", "update"},
		},
	}
}

// StorageRules are what the agent needs in the namespace of a BackupStorage
// that is not its Repository's: read that storage.
func StorageRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{
		APIGroups: []string{storagev1alpha1.Group},
		Resources: []string{"backupstorages"},
		Verbs:     []string{"get"},
	}}
}

// RestoreRules are what the agent of a restore Job needs besides Rules: it
// reports its component in the RestoreSession's status.
func RestoreRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{
		APIGroups: []string{corev1alpha1.Group},
		Resources: []string{"restoresessions/status"},
		Verbs:     []string{"patch"},
	}}
}
