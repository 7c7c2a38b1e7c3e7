/*
Copyright 2026 The Stashplane Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

// Labels Stashplane puts on the sessions it starts and on what sessions and
// configurations compose, so that each controller finds its own objects.
// Clusters hold objects carrying them: a key never changes.
const (
	// LabelInvokerName names the BackupConfiguration on its sessions,
	// Snapshots, Repositories, ServiceAccount and CronJobs.
	LabelInvokerName = "core.stashplane.io/invoker-name"
	// LabelSession names the configuration's session on BackupSessions,
	// Snapshots and CronJobs.
	LabelSession = "core.stashplane.io/session"

	// LabelBackupSession marks the Jobs of a BackupSession.
	LabelBackupSession = "core.stashplane.io/backupsession"
	// LabelRestoreSession marks the Jobs and access objects of a
	// RestoreSession.
	LabelRestoreSession = "core.stashplane.io/restoresession"
	// LabelRestoreSessionNamespace is, with LabelRestoreSession, on the
	// Roles, RoleBindings and Secret copies a RestoreSession has in other
	// namespaces.
	LabelRestoreSessionNamespace = "core.stashplane.io/restoresession-namespace"
	// LabelBackupVerificationSession marks what a verification session
	// makes: its RestoreSession, its scratch claim, its verifier Job and
	// its Snapshot lock.
	LabelBackupVerificationSession = "core.stashplane.io/backupverificationsession"
	// LabelBackupVerificationSessionNamespace is, with
	// LabelBackupVerificationSession, on the RestoreSession and scratch
	// claim a verification session makes in another namespace, where no
	// owner reference can name it.
	LabelBackupVerificationSessionNamespace = "core.stashplane.io/backupverificationsession-namespace"
	// LabelRetryOf marks a verification session made to retry a failed
	// one; its value is the first session of the chain.
	LabelRetryOf = "core.stashplane.io/retry-of"
	// LabelBackupVerifier names the BackupVerifier on the sessions it
	// started.
	LabelBackupVerifier = "core.stashplane.io/backupverifier"

	// LabelBackupConfiguration and LabelBackupConfigurationNamespace are on
	// what a configuration has outside its namespace (Roles and
	// RoleBindings) and on its copies of storage Secrets.
	LabelBackupConfiguration          = "core.stashplane.io/backupconfiguration"
	LabelBackupConfigurationNamespace = "core.stashplane.io/backupconfiguration-namespace"

	// LabelComponent names the Snapshot component a backup or restore Job
	// writes or reads, as the built-in Functions set it; with the
	// repository label it finds the Job's report.
	LabelComponent = "stashplane.io/component"

	// LabelWatched is "true" on the Jobs the provider and the CLI make, on
	// their pod templates and on the storage accessors' pods: of the
	// cluster's Jobs and pods, the provider's cache holds only those that
	// carry it.
	LabelWatched = "stashplane.io/watched"
)

// AnnotationHeldReplicas is on a Deployment or StatefulSet a restore
// recreated from resource manifests without pods: the replicas it is given
// back once its data is restored.
const AnnotationHeldReplicas = "restore.stashplane.io/held-replicas"

// LabelHeld is, on a DaemonSet a restore recreated from resource
// manifests, a key of its pod template's nodeSelector that no node has
// ("true"), so that it runs no pod until its data is restored; the restore
// removes it then. The DaemonSet carries the same key as an annotation
// while it is held. On a recreated CronJob, held suspended, the annotation
// of that key records whether it was suspended ("true" or "false"), which
// it is given back.
const LabelHeld = "restore.stashplane.io/held"
