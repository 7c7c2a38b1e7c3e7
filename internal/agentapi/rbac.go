package agentapi

import (
	rbacv1 "k8s.io/api/rbac/v1"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// Rules are what the agent needs in the namespace of its Repository and
// Snapshot: read the Repository, the Snapshot and (when it lives there)
// the BackupStorage, write (pruning) the Repository's status, and get pods
// (whether the prune pod that holds a restic lock still runs). Bind them
// with a Role in that namespace; a BackupStorage in another namespace also
// needs StorageRules bound there. Writing a Snapshot's status is granted
// apart, run by run (ReportRulesFor). Nothing else: no Secrets
// (credentials are mounted files), no lists, no watches.
func Rules() []rbacv1.PolicyRule {
	return append([]rbacv1.PolicyRule{
		{
			APIGroups: []string{storagev1alpha1.Group},
			Resources: []string{"repositories", "backupstorages", "snapshots"},
			Verbs:     []string{"get"},
		},
		// A prune Job records its time and the bytes it freed.
		{
			APIGroups: []string{storagev1alpha1.Group},
			Resources: []string{"repositories/status"},
			Verbs:     []string{"patch"},
		},
	}, PruneLockRules()...)
}

// ReportRulesFor are what the backup Jobs of one run need to report their
// components: write the status of that run's Snapshots, by name. A
// BackupSession grants them while it runs and revokes them when it has an
// outcome, so that no Job, of this run or any other, can change a Snapshot
// it did not make or one whose run has ended.
func ReportRulesFor(snapshots []string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{
		APIGroups:     []string{storagev1alpha1.Group},
		Resources:     []string{"snapshots/status"},
		ResourceNames: snapshots,
		Verbs:         []string{"get", "patch", "update"},
	}}
}

// PruneLockRules are what the agent needs to judge a restic lock left by
// a prune Job: a restic lock names the pod that took it, and a backup, a
// prune, a restore or a verification removes a prune pod's lock only once
// that pod no longer runs. Bound in the Repository's namespace.
func PruneLockRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{
		APIGroups: []string{""},
		Resources: []string{"pods"},
		Verbs:     []string{"get"},
	}}
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

// RestoreReadRules are what the agent of a restore Job needs in the
// namespace of its Repository and Snapshot: read those two, by name. A
// restore writes nothing there, so a Repository in another namespace than
// the RestoreSession is bound only these. The BackupStorage needs
// StorageRules in its own namespace.
func RestoreReadRules(repository, snapshot string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{
			APIGroups:     []string{storagev1alpha1.Group},
			Resources:     []string{"repositories"},
			ResourceNames: []string{repository},
			Verbs:         []string{"get"},
		},
		{
			APIGroups:     []string{storagev1alpha1.Group},
			Resources:     []string{"snapshots"},
			ResourceNames: []string{snapshot},
			Verbs:         []string{"get"},
		},
	}
}

// RestoreRules are what the agent of a restore Job needs in the
// RestoreSession's namespace: it reports its component in the
// RestoreSession's status.
func RestoreRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{
		APIGroups: []string{corev1alpha1.Group},
		Resources: []string{"restoresessions/status"},
		Verbs:     []string{"patch"},
	}}
}

// RestoreRulesFor are RestoreRules for the one RestoreSession named
// session: what a per-session Role grants, so that a restore Job (or an
// addon Job running with its ServiceAccount) can report to its own
// session and never mark another session's component Succeeded.
func RestoreRulesFor(session string) []rbacv1.PolicyRule {
	out := RestoreRules()
	for i := range out {
		out[i].ResourceNames = []string{session}
	}
	return out
}

// StorageRulesFor are StorageRules for the one BackupStorage named name:
// what a Role in a storage's namespace grants the Jobs of another.
func StorageRulesFor(name string) []rbacv1.PolicyRule {
	out := StorageRules()
	for i := range out {
		out[i].ResourceNames = []string{name}
	}
	return out
}

// objectKinds are the kinds whose objects a task of resource manifests
// backs up and recreates, in the namespace of its Jobs: a workload and
// what it needs to run (docs/disaster-recovery.md).
func objectKinds() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts", "configmaps", "secrets", "services", "persistentvolumeclaims"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}},
		{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles", "rolebindings"}},
		{APIGroups: []string{corev1alpha1.Group}, Resources: []string{"backupconfigurations"}},
		{APIGroups: []string{"batch"}, Resources: []string{"cronjobs"}},
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses", "networkpolicies"}},
		{APIGroups: []string{"policy"}, Resources: []string{"poddisruptionbudgets"}},
		{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}},
	}
}

// ObjectReadRules are what a backup Job of resource manifests needs in
// its namespace: read the objects it stores.
func ObjectReadRules() []rbacv1.PolicyRule {
	out := objectKinds()
	for i := range out {
		out[i].Verbs = []string{"get", "list"}
	}
	return out
}

// ObjectWriteRulesFor are what a restore Job of resource manifests needs
// in the namespace of the RestoreSession named session: recreate the
// objects (never delete one), and read that session, whose data
// components it waits for before it starts the workloads it held. Watch
// is granted with the rest so that a Role granting it on these kinds can
// be recreated: the API server lets a Role be made only by one that holds
// what it grants.
func ObjectWriteRulesFor(session string) []rbacv1.PolicyRule {
	out := objectKinds()
	for i := range out {
		out[i].Verbs = []string{"get", "list", "watch", "create", "update", "patch"}
	}
	return append(out, rbacv1.PolicyRule{
		APIGroups: []string{corev1alpha1.Group}, Resources: []string{"restoresessions"}, ResourceNames: []string{session}, Verbs: []string{"get"},
	})
}
