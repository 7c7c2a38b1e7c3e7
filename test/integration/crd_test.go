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

package integration

import (
	"strconv"
	"strings"
	"testing"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A mutation changes a parsed manifest before it is sent.
type mutation func(t *testing.T, obj map[string]any)

// set sets the value at a path such as "spec.sessions[0].name".
func set(path string, v any) mutation {
	return func(t *testing.T, obj map[string]any) {
		t.Helper()
		parent, key := walk(t, obj, path)
		parent[key] = v
	}
}

// remove deletes the value at a path such as "spec.storage.s3".
func remove(path string) mutation {
	return func(t *testing.T, obj map[string]any) {
		t.Helper()
		parent, key := walk(t, obj, path)
		delete(parent, key)
	}
}

// walk returns the map holding the last segment of path, and that segment.
func walk(t *testing.T, obj map[string]any, path string) (map[string]any, string) {
	t.Helper()
	segs := strings.Split(path, ".")
	cur := obj
	for _, seg := range segs[:len(segs)-1] {
		name, idx, indexed := strings.Cut(strings.TrimSuffix(seg, "]"), "[")
		next, ok := cur[name]
		if !ok {
			next = map[string]any{}
			cur[name] = next
		}
		if indexed {
			i, err := strconv.Atoi(idx)
			if err != nil {
				t.Fatalf("cannot parse index in %q: %v", path, err)
			}
			list, ok := next.([]any)
			if !ok || i >= len(list) {
				t.Fatalf("cannot index %q in %q", seg, path)
			}
			next = list[i]
		}
		m, ok := next.(map[string]any)
		if !ok {
			t.Fatalf("cannot walk %q in %q: not an object", seg, path)
		}
		cur = m
	}
	return cur, segs[len(segs)-1]
}

func TestCreate(t *testing.T) {
	type want struct {
		// invalid is true when the API server must reject the object.
		invalid bool
		// messages must all appear in the rejection.
		messages []string
	}
	cases := map[string]struct {
		reason   string
		manifest string
		mutate   []mutation
		want     want
	}{
		// Every kind accepts a valid object.
		"BackupStorageS3":              {reason: "An S3 BackupStorage with its s3 block should be accepted.", manifest: backupStorageS3},
		"BackupStorageLocal":           {reason: "A local BackupStorage on a claim should be accepted.", manifest: backupStorageLocal},
		"Repository":                   {reason: "A Repository with storage, path and secret should be accepted.", manifest: repository},
		"Snapshot":                     {reason: "A Snapshot with a ULID should be accepted.", manifest: snapshot},
		"RetentionPolicy":              {reason: "A RetentionPolicy using every duration unit should be accepted.", manifest: retentionPolicy},
		"BackupConfiguration":          {reason: "A complete BackupConfiguration should be accepted.", manifest: backupConfiguration},
		"BackupSession":                {reason: "A BackupSession naming its invoker should be accepted.", manifest: backupSession},
		"RestoreSession":               {reason: "A RestoreSession of the latest Snapshot should be accepted.", manifest: restoreSession},
		"BackupVerifierRestoreOnly":    {reason: "A RestoreOnly BackupVerifier needs no function.", manifest: backupVerifierRestoreOnly},
		"BackupVerificationSession":    {reason: "A BackupVerificationSession should be accepted.", manifest: backupVerificationSession},
		"HookTemplate":                 {reason: "A HookTemplate with one action should be accepted.", manifest: hookTemplate},
		"Addon":                        {reason: "An Addon with backup and restore tasks should be accepted.", manifest: addon},
		"Function":                     {reason: "A Function with a template should be accepted.", manifest: function},
		"BackupVerifierRestoreOnlyDef": {reason: "A BackupVerifier without a type defaults to RestoreOnly and needs no function.", manifest: backupVerifierRestoreOnly, mutate: []mutation{remove("spec.type")}},
		"BackupVerifierQuery": {
			reason:   "A Query BackupVerifier with a function and a query should be accepted.",
			manifest: backupVerifierRestoreOnly,
			mutate: []mutation{
				set("spec.type", "Query"),
				set("spec.function", "postgres-query"),
				set("spec.query", map[string]any{"database": "app", "table": "users", "rowCount": map[string]any{"operator": "GreaterThan", "value": int64(0)}}),
			},
		},
		"BackupVerifierScript": {
			reason:   "A Script BackupVerifier with a function and a script location should be accepted.",
			manifest: backupVerifierRestoreOnly,
			mutate: []mutation{
				set("spec.type", "Script"),
				set("spec.function", "script-runner"),
				set("spec.script", map[string]any{"location": "/scripts/check.sh", "args": []any{"--strict"}}),
			},
		},

		// BackupStorage rejects bad input.
		"BackupStorageBadProvider": {
			reason:   "A provider outside local, s3, gcs and azure should be rejected.",
			manifest: backupStorageS3,
			mutate:   []mutation{set("spec.storage.provider", "ftp")},
			want:     want{invalid: true, messages: []string{"spec.storage.provider", `Unsupported value: "ftp"`}},
		},
		"BackupStorageBadDeletionPolicy": {
			reason:   "A deletionPolicy other than Delete or WipeOut should be rejected.",
			manifest: backupStorageS3,
			mutate:   []mutation{set("spec.deletionPolicy", "Keep")},
			want:     want{invalid: true, messages: []string{"spec.deletionPolicy", `Unsupported value: "Keep"`}},
		},
		"BackupStorageS3WithoutBlock": {
			reason:   "Provider s3 without an s3 block should be rejected.",
			manifest: backupStorageS3,
			mutate:   []mutation{remove("spec.storage.s3")},
			want:     want{invalid: true, messages: []string{"spec.storage", "s3 is required when provider is s3"}},
		},
		"BackupStorageGCSWithS3Block": {
			reason:   "Provider gcs with only an s3 block should be rejected for both reasons.",
			manifest: backupStorageS3,
			mutate:   []mutation{set("spec.storage.provider", "gcs")},
			want:     want{invalid: true, messages: []string{"gcs is required when provider is gcs", "only the block matching provider may be set"}},
		},
		"BackupStorageRelativeMountPath": {
			reason:   "A local mountPath must be absolute.",
			manifest: backupStorageLocal,
			mutate:   []mutation{set("spec.storage.local.mountPath", "backups")},
			want:     want{invalid: true, messages: []string{"spec.storage.local.mountPath"}},
		},
		"BackupStorageAmbientCustomEndpoint": {
			reason:   "Ambient credentials (no secretName) with an endpoint named in the object should be rejected: they would be sent there.",
			manifest: backupStorageS3,
			mutate:   []mutation{remove("spec.storage.s3.secretName"), set("spec.storage.s3.endpoint", "https://s3.attacker.example")},
			want:     want{invalid: true, messages: []string{"endpoint needs secretName: ambient cloud credentials"}},
		},
		"BackupStorageAmbientOwnEndpoint": {
			reason:   "Ambient credentials without an endpoint (the cloud's own) should be accepted.",
			manifest: backupStorageS3,
			mutate:   []mutation{remove("spec.storage.s3.secretName"), remove("spec.storage.s3.endpoint")},
		},
		"BackupStorageCatalogWritable": {
			reason:   "A catalog on a storage Stashplane may write should be rejected: it rebuilds from another cluster's records.",
			manifest: backupStorageS3,
			mutate:   []mutation{set("spec.catalog", map[string]any{"namespace": "recovered"})},
			want:     want{invalid: true, messages: []string{"catalog rebuilds objects from records another cluster wrote and needs managementPolicies [Observe]"}},
		},
		"BackupStorageCatalogObserveOnly": {
			reason:   "A catalog on an Observe-only storage should be accepted.",
			manifest: backupStorageS3,
			mutate:   []mutation{set("spec.catalog", map[string]any{"namespace": "recovered"}), set("spec.managementPolicies", []any{"Observe"})},
		},
		"BackupStorageSelectorWithoutSelector": {
			reason:   "A usage policy from Selector without a selector should be rejected.",
			manifest: backupStorageS3,
			mutate:   []mutation{set("spec.usagePolicy.allowedNamespaces.from", "Selector")},
			want:     want{invalid: true, messages: []string{"spec.usagePolicy.allowedNamespaces", "selector is required when from is Selector"}},
		},
		"BackupStorageBadUsagePolicy": {
			reason:   "A usage policy from a value outside All, Selector and Same should be rejected.",
			manifest: backupStorageS3,
			mutate:   []mutation{set("spec.usagePolicy.allowedNamespaces.from", "Others")},
			want:     want{invalid: true, messages: []string{"spec.usagePolicy.allowedNamespaces.from"}},
		},
		"BackupStorageBadManagementPolicy": {
			reason:   "A management policy outside Crossplane's actions should be rejected.",
			manifest: backupStorageS3,
			mutate:   []mutation{set("spec.managementPolicies", []any{"Orphan"})},
			want:     want{invalid: true, messages: []string{"spec.managementPolicies[0]"}},
		},

		// Repository requires its references.
		"RepositoryWithoutEncryptionSecret": {
			reason:   "A Repository without encryptionSecret should be rejected.",
			manifest: repository,
			mutate:   []mutation{remove("spec.encryptionSecret")},
			want:     want{invalid: true, messages: []string{"spec.encryptionSecret: Required value"}},
		},
		"RepositoryWithoutStorageRef": {
			reason:   "A Repository without storageRef should be rejected.",
			manifest: repository,
			mutate:   []mutation{remove("spec.storageRef")},
			want:     want{invalid: true, messages: []string{"spec.storageRef: Required value"}},
		},
		"RepositoryWithoutPath": {
			reason:   "A Repository without path should be rejected.",
			manifest: repository,
			mutate:   []mutation{remove("spec.path")},
			want:     want{invalid: true, messages: []string{"spec.path: Required value"}},
		},
		"RepositoryEscapingPath": {
			reason:   "A Repository path climbing out of the storage should be rejected.",
			manifest: repository,
			mutate:   []mutation{set("spec.path", "demo/../../other")},
			want:     want{invalid: true, messages: []string{"spec.path", "path must be relative"}},
		},
		"RepositoryAbsolutePath": {
			reason:   "An absolute Repository path should be rejected.",
			manifest: repository,
			mutate:   []mutation{set("spec.path", "/demo")},
			want:     want{invalid: true, messages: []string{"spec.path", "path must be relative"}},
		},

		// Snapshot and RetentionPolicy formats.
		"SnapshotBadID": {
			reason:   "A snapshotID that is not a ULID should be rejected.",
			manifest: snapshot,
			mutate:   []mutation{set("spec.snapshotID", "not-a-ulid")},
			want:     want{invalid: true, messages: []string{"spec.snapshotID"}},
		},
		"SnapshotBadType": {
			reason:   "A Snapshot type outside FullBackup and IncrementalBackup should be rejected.",
			manifest: snapshot,
			mutate:   []mutation{set("spec.type", "Differential")},
			want:     want{invalid: true, messages: []string{"spec.type"}},
		},
		"RetentionPolicyBadPeriod": {
			reason:   "A maxRetentionPeriod with an unknown unit should be rejected.",
			manifest: retentionPolicy,
			mutate:   []mutation{set("spec.maxRetentionPeriod", "30days")},
			want:     want{invalid: true, messages: []string{"spec.maxRetentionPeriod"}},
		},
		"RetentionPolicyNegativeLast": {
			reason:   "A negative count of kept Snapshots should be rejected.",
			manifest: retentionPolicy,
			mutate:   []mutation{set("spec.successfulSnapshots.last", int64(-1))},
			want:     want{invalid: true, messages: []string{"spec.successfulSnapshots.last"}},
		},

		// BackupConfiguration enums and structure.
		"BackupConfigurationBadConcurrencyPolicy": {
			reason:   "A concurrencyPolicy outside Allow, Forbid and Replace should be rejected.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].scheduler.concurrencyPolicy", "Sometimes")},
			want:     want{invalid: true, messages: []string{"spec.sessions[0].scheduler.concurrencyPolicy"}},
		},
		"BackupConfigurationBadExecutionPolicy": {
			reason:   "A hook executionPolicy outside Always, OnSuccess and OnFailure should be rejected.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].hooks.postBackup[0].executionPolicy", "Never")},
			want:     want{invalid: true, messages: []string{"spec.sessions[0].hooks.postBackup[0].executionPolicy"}},
		},
		"BackupConfigurationTwoVolumeSources": {
			reason:   "A target volume with two sources should be rejected.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].addon.tasks[0].targetVolumes.volumes[0].emptyDir", map[string]any{})},
			want:     want{invalid: true, messages: []string{"spec.sessions[0].addon.tasks[0].targetVolumes.volumes[0]", "exactly one of the fields"}},
		},
		"BackupConfigurationDuplicateSession": {
			reason:   "Two sessions with the same name should be rejected.",
			manifest: backupConfiguration,
			mutate: []mutation{func(t *testing.T, obj map[string]any) {
				spec := obj["spec"].(map[string]any)
				sessions := spec["sessions"].([]any)
				spec["sessions"] = append(sessions, map[string]any{"name": "frequent"})
			}},
			want: want{invalid: true, messages: []string{"spec.sessions[1]", "Duplicate value"}},
		},
		"BackupConfigurationAddonWithoutTasks": {
			reason:   "An Addon reference without tasks should be rejected.",
			manifest: backupConfiguration,
			mutate:   []mutation{remove("spec.sessions[0].addon.tasks")},
			want:     want{invalid: true, messages: []string{"spec.sessions[0].addon.tasks: Required value"}},
		},

		// Sessions require what identifies them.
		"BackupSessionWithoutInvoker": {
			reason:   "A BackupSession without invoker should be rejected.",
			manifest: backupSession,
			mutate:   []mutation{remove("spec.invoker")},
			want:     want{invalid: true, messages: []string{"spec.invoker: Required value"}},
		},
		"RestoreSessionWithoutSnapshot": {
			reason:   "A RestoreSession that does not say which Snapshot to restore should be rejected.",
			manifest: restoreSession,
			mutate:   []mutation{remove("spec.dataSource.snapshot")},
			want:     want{invalid: true, messages: []string{"spec.dataSource.snapshot: Required value"}},
		},
		"RestoreSessionBadExecutionPolicy": {
			reason:   "A restore hook executionPolicy outside the enum should be rejected.",
			manifest: restoreSession,
			mutate:   []mutation{set("spec.hooks.postRestore[0].executionPolicy", "Later")},
			want:     want{invalid: true, messages: []string{"spec.hooks.postRestore[0].executionPolicy"}},
		},
		"BackupVerificationSessionWithoutSnapshot": {
			reason:   "A BackupVerificationSession without snapshot should be rejected.",
			manifest: backupVerificationSession,
			mutate:   []mutation{remove("spec.snapshot")},
			want:     want{invalid: true, messages: []string{"spec.snapshot: Required value"}},
		},

		// BackupVerifier rules.
		"BackupVerifierQueryWithoutFunction": {
			reason:   "A Query BackupVerifier without function should be rejected.",
			manifest: backupVerifierRestoreOnly,
			mutate:   []mutation{set("spec.type", "Query")},
			want:     want{invalid: true, messages: []string{"spec", "function is required when type is Query or Script"}},
		},
		"BackupVerifierScriptWithoutFunction": {
			reason:   "A Script BackupVerifier without function should be rejected.",
			manifest: backupVerifierRestoreOnly,
			mutate:   []mutation{set("spec.type", "Script"), set("spec.script", map[string]any{"location": "/scripts/check.sh"})},
			want:     want{invalid: true, messages: []string{"function is required when type is Query or Script"}},
		},
		"BackupVerifierScriptWithoutScript": {
			reason:   "A Script BackupVerifier without a script should be rejected.",
			manifest: backupVerifierRestoreOnly,
			mutate:   []mutation{set("spec.type", "Script"), set("spec.function", "script-runner")},
			want:     want{invalid: true, messages: []string{"script.location is required when type is Script"}},
		},
		"BackupVerifierScriptWithoutLocation": {
			reason:   "A Script BackupVerifier whose script has no location should be rejected.",
			manifest: backupVerifierRestoreOnly,
			mutate:   []mutation{set("spec.type", "Script"), set("spec.function", "script-runner"), set("spec.script", map[string]any{"args": []any{"-v"}})},
			want:     want{invalid: true, messages: []string{"spec.script.location"}},
		},
		"BackupVerifierBadType": {
			reason:   "A verifier type outside RestoreOnly, Query and Script should be rejected.",
			manifest: backupVerifierRestoreOnly,
			mutate:   []mutation{set("spec.type", "Manual")},
			want:     want{invalid: true, messages: []string{"spec.type", `Unsupported value: "Manual"`}},
		},
		"BackupVerifierBadRowCountOperator": {
			reason:   "KubeStash's structured query takes the verifier's operators only; another is refused at admission.",
			manifest: backupVerifierRestoreOnly,
			mutate: []mutation{set("spec.query", map[string]any{"sql": "select 1", "postgres": []any{
				map[string]any{"database": "shop", "table": "orders", "rowCount": map[string]any{"operator": "Like", "value": 1}},
			}})},
			want: want{invalid: true, messages: []string{"spec.query.postgres[0].rowCount.operator", `Unsupported value: "Like"`}},
		},
		"BackupVerifierRowCountWithoutTable": {
			reason:   "A row count names its table; one without is refused at admission, and free-form fields beside it are kept.",
			manifest: backupVerifierRestoreOnly,
			mutate:   []mutation{set("spec.query", map[string]any{"sql": "select 1", "postgres": []any{map[string]any{"rowCount": map[string]any{"value": 1}}}})},
			want:     want{invalid: true, messages: []string{"spec.query.postgres[0].table: Required value"}},
		},
		"BackupVerifierWithoutRestoreOption": {
			reason:   "A BackupVerifier that does not say where to restore should be rejected.",
			manifest: backupVerifierRestoreOnly,
			mutate:   []mutation{remove("spec.restoreOption")},
			want:     want{invalid: true, messages: []string{"spec.restoreOption: Required value"}},
		},

		// HookTemplate rules.
		"HookTemplateTwoActions": {
			reason:   "A HookTemplate with two actions should be rejected.",
			manifest: hookTemplate,
			mutate:   []mutation{set("spec.action.httpGet", map[string]any{"path": "/freeze", "port": int64(8080)})},
			want:     want{invalid: true, messages: []string{"spec.action", "exactly one of the fields in [exec httpGet httpPost tcpSocket]"}},
		},
		"HookTemplateFunctionWithoutFunction": {
			reason:   "A Function executor without a function should be rejected.",
			manifest: hookTemplate,
			mutate:   []mutation{set("spec.executor.type", "Function")},
			want:     want{invalid: true, messages: []string{"spec.executor", "function is required when type is Function"}},
		},
		"HookTemplateBadExecutor": {
			reason:   "An executor type outside Function, Pod and Operator should be rejected.",
			manifest: hookTemplate,
			mutate:   []mutation{set("spec.executor.type", "Sidecar")},
			want:     want{invalid: true, messages: []string{"spec.executor.type"}},
		},

		// What Stashplane does not carry out is refused at admission, by name.
		"BackupBlueprintAccepted": {
			reason:   "A BackupBlueprint written as KubeStash's guides write it is accepted.",
			manifest: backupBlueprint,
		},
		"BackupBlueprintSubjectKindUnknown": {
			reason:   "A blueprint protects Deployments, StatefulSets, DaemonSets and claims only.",
			manifest: backupBlueprint,
			mutate:   []mutation{set("spec.subjects", map[string]any{"namespaceSelector": map[string]any{}, "kinds": []any{"CronJob"}})},
			want:     want{invalid: true, messages: []string{"spec.subjects.kinds"}},
		},
		"BackupBlueprintVerifierTemplateAccepted": {
			reason:   "A verifier template with variables in its strings is a BackupVerifier's spec.",
			manifest: backupBlueprint,
			mutate: []mutation{set("spec.verifierTemplate", map[string]any{"type": "RestoreOnly", "restoreOption": map[string]any{
				"target":    map[string]any{"kind": "PersistentVolumeClaim", "name": "${targetName}-scratch"},
				"addonInfo": map[string]any{"name": "pvc-addon", "tasks": []any{map[string]any{"name": "logical-backup-restore"}}},
			}})},
		},
		"BackupBlueprintVerifierTemplateQueryWithoutFunction": {
			reason:   "A verifier template is checked as a BackupVerifier is: a Query verifier needs its Function.",
			manifest: backupBlueprint,
			mutate: []mutation{set("spec.verifierTemplate", map[string]any{"type": "Query", "restoreOption": map[string]any{
				"target":    map[string]any{"kind": "PersistentVolumeClaim", "name": "${targetName}-scratch"},
				"addonInfo": map[string]any{"name": "pvc-addon", "tasks": []any{map[string]any{"name": "logical-backup-restore"}}},
			}})},
			want: want{invalid: true, messages: []string{"spec.verifierTemplate", "function is required when type is Query or Script"}},
		},
		"RestoreSessionPITRRefused": {
			reason:   "A point-in-time restore is not built.",
			manifest: restoreSession,
			mutate:   []mutation{set("spec.dataSource.pitr", map[string]any{"targetTime": "2026-01-02T03:04:05Z"})},
			want:     want{invalid: true, messages: []string{"spec.dataSource", "pitr: point-in-time restore is not built"}},
		},
		"BackupConfigurationAddonVolumesRefused": {
			reason:   "addonVolumes fill volume templates, which are not carried out.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].addon.tasks[0].addonVolumes", []any{map[string]any{"name": "scratch", "source": map[string]any{"emptyDir": map[string]any{}}}})},
			want:     want{invalid: true, messages: []string{"spec.sessions[0].addon.tasks[0]", "addonVolumes is not carried out"}},
		},
		"RestoreSessionAddonVolumesRefused": {
			reason:   "A restore's addonVolumes are refused as a backup's are.",
			manifest: restoreSession,
			mutate:   []mutation{set("spec.addon.tasks[0].addonVolumes", []any{map[string]any{"name": "scratch"}})},
			want:     want{invalid: true, messages: []string{"spec.addon.tasks[0]", "addonVolumes is not carried out"}},
		},
		"BackupConfigurationValueFromAccepted": {
			reason:   "A variable taken from a Secret or ConfigMap key is carried out, as the task's environment.",
			manifest: backupConfiguration,
			mutate: []mutation{set("spec.sessions[0].addon.tasks[0].variables", []any{
				map[string]any{"name": "LITERAL", "value": "x"},
				map[string]any{"name": "TOKEN", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "s", "key": "k"}}},
				map[string]any{"name": "RESTIC_PACK_SIZE", "valueFrom": map[string]any{"configMapKeyRef": map[string]any{"name": "tuning", "key": "packSize"}}},
			})},
		},
		"BackupConfigurationValueFromFieldRefRefused": {
			reason:   "A fieldRef would describe the task's own pod, not the target: refused rather than misleading.",
			manifest: backupConfiguration,
			mutate: []mutation{set("spec.sessions[0].addon.tasks[0].variables", []any{
				map[string]any{"name": "NODE", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "spec.nodeName"}}},
			})},
			want: want{invalid: true, messages: []string{"spec.sessions[0].addon.tasks[0]", "only secretKeyRef and configMapKeyRef are carried out"}},
		},
		"BackupConfigurationValueFromRedirectRefused": {
			reason:   "A variable taken from a Secret becomes the agent's environment, so a name that would redirect the agent is refused.",
			manifest: backupConfiguration,
			mutate: []mutation{set("spec.sessions[0].addon.tasks[0].variables", []any{
				map[string]any{"name": "HTTPS_PROXY", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "s", "key": "k"}}},
			})},
			want: want{invalid: true, messages: []string{"spec.sessions[0].addon.tasks[0]", "names that redirect the agent"}},
		},
		"RestoreSessionValueFromResticRefused": {
			reason:   "A variable taken from a Secret may not set restic's repository or password.",
			manifest: restoreSession,
			mutate: []mutation{set("spec.addon.tasks[0].variables", []any{
				map[string]any{"name": "RESTIC_PASSWORD_COMMAND", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "s", "key": "k"}}},
			})},
			want: want{invalid: true, messages: []string{"spec.addon.tasks[0]", "of the RESTIC_* names only"}},
		},
		"BackupConfigurationPreHookPolicyRefused": {
			reason:   "A pre-backup hook always runs before the backup, so an executionPolicy other than Always is refused rather than ignored.",
			manifest: backupConfiguration,
			mutate: []mutation{set("spec.sessions[0].hooks", map[string]any{"preBackup": []any{
				map[string]any{"name": "freeze", "hookTemplate": map[string]any{"name": "t"}, "executionPolicy": "OnFailure"},
			}})},
			want: want{invalid: true, messages: []string{"executionPolicy applies to postBackup hooks only"}},
		},
		"BackupConfigurationPostHookPolicyAccepted": {
			reason:   "A post-backup hook's executionPolicy is carried out.",
			manifest: backupConfiguration,
			mutate: []mutation{set("spec.sessions[0].hooks", map[string]any{"postBackup": []any{
				map[string]any{"name": "thaw", "hookTemplate": map[string]any{"name": "t"}, "executionPolicy": "OnFailure"},
			}})},
		},
		"RestoreSessionPreHookPolicyRefused": {
			reason:   "A pre-restore hook always runs before the restore.",
			manifest: restoreSession,
			mutate: []mutation{set("spec.hooks", map[string]any{"preRestore": []any{
				map[string]any{"name": "stop", "hookTemplate": map[string]any{"name": "t"}, "executionPolicy": "OnSuccess"},
			}})},
			want: want{invalid: true, messages: []string{"executionPolicy applies to postRestore hooks only"}},
		},
		"BackupConfigurationLiteralVariableAccepted": {
			reason:   "A literal variable is carried out and accepted.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].addon.tasks[0].variables", []any{map[string]any{"name": "LITERAL", "value": "x"}})},
		},
		"RestoreSessionVolumeClaimTemplatesRefused": {
			reason:   "targetVolumes.volumeClaimTemplates are not carried out.",
			manifest: restoreSession,
			mutate: []mutation{set("spec.addon.tasks[0].targetVolumes", map[string]any{"volumeClaimTemplates": []any{
				map[string]any{"spec": map[string]any{"accessModes": []any{"ReadWriteOnce"}}},
			}})},
			want: want{invalid: true, messages: []string{"spec.addon.tasks[0].targetVolumes.volumeClaimTemplates", "volumeClaimTemplates is not carried out"}},
		},
		"BackupSessionInvokerNamespaceRefused": {
			reason:   "A BackupSession runs beside its configuration, so an invoker namespace is refused rather than ignored.",
			manifest: backupSession,
			mutate:   []mutation{set("spec.invoker.namespace", "other")},
			want:     want{invalid: true, messages: []string{"spec.invoker", "invoker.namespace: a BackupSession runs in its configuration's namespace"}},
		},
		"BackupSessionInvokerKindRefused": {
			reason:   "A BackupSession's invoker is a BackupConfiguration.",
			manifest: backupSession,
			mutate:   []mutation{set("spec.invoker.kind", "BackupBlueprint")},
			want:     want{invalid: true, messages: []string{"spec.invoker", "invoker.kind: a BackupSession runs a session of a BackupConfiguration"}},
		},
		"BackupConfigurationReplaceAccepted": {
			reason:   "concurrencyPolicy Replace is carried out for backups: a newer run ends the older one.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].scheduler.concurrencyPolicy", "Replace")},
		},
		"BackupVerifierReplaceRefused": {
			reason:   "concurrencyPolicy Replace is not carried out for verifiers, so it is refused rather than treated as Forbid.",
			manifest: backupVerifierRestoreOnly,
			mutate:   []mutation{set("spec.scheduler", map[string]any{"schedule": "0 * * * *", "concurrencyPolicy": "Replace"})},
			want:     want{invalid: true, messages: []string{"spec.scheduler", "concurrencyPolicy: Replace is not carried out for a BackupVerifier"}},
		},
		"BackupConfigurationWithoutEncryptionSecretRefused": {
			reason:   "KubeStash omits encryptionSecret only for drivers that do not encrypt; restic always does, and the refusal says so.",
			manifest: backupConfiguration,
			mutate:   []mutation{remove("spec.sessions[0].repositories[0].encryptionSecret")},
			want: want{invalid: true, messages: []string{"spec.sessions[0].repositories[0]",
				"encryptionSecret is required: the built-in addons back up with restic, which always encrypts"}},
		},
		"BackupConfigurationRepositoryRetainAccepted": {
			reason:   "repositories[].deletionPolicy Retain, KubeStash's value for a Repository that outlives its configuration, is accepted.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].repositories[0].deletionPolicy", "Retain")},
		},
		"BackupConfigurationRepositoryDeletionPolicyUnknownRefused": {
			reason:   "A repository deletionPolicy outside Delete, WipeOut and Retain is refused.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].repositories[0].deletionPolicy", "Keep")},
			want:     want{invalid: true, messages: []string{"spec.sessions[0].repositories[0].deletionPolicy", `Unsupported value: "Keep"`}},
		},
		"BackupConfigurationWithoutStorageRefAccepted": {
			reason:   "A backend may omit storageRef: the default BackupStorage is resolved by validation.",
			manifest: backupConfiguration,
			mutate:   []mutation{remove("spec.backends[0].storageRef")},
		},
		"BackupConfigurationAllowAccepted": {
			reason:   "concurrencyPolicy Allow is carried out and accepted.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].scheduler.concurrencyPolicy", "Allow")},
		},
		"EnvResticRepositoryRefused": {
			reason:   "RESTIC_REPOSITORY would send restic to another repository.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].addon.containerRuntimeSettings.env", []any{map[string]any{"name": "RESTIC_REPOSITORY", "value": "x"}})},
			want:     want{invalid: true, messages: []string{"env: of the RESTIC_* variables only RESTIC_COMPRESSION, RESTIC_PACK_SIZE and RESTIC_READ_CONCURRENCY are accepted"}},
		},
		"EnvResticPasswordCommandRefused": {
			reason:   "RESTIC_PASSWORD_COMMAND would run a command for the password.",
			manifest: restoreSession,
			mutate:   []mutation{set("spec.addon.containerRuntimeSettings.env", []any{map[string]any{"name": "RESTIC_PASSWORD_COMMAND", "value": "x"}})},
			want:     want{invalid: true, messages: []string{"env: of the RESTIC_* variables only RESTIC_COMPRESSION, RESTIC_PACK_SIZE and RESTIC_READ_CONCURRENCY are accepted"}},
		},
		"EnvResticCacheDirRefused": {
			reason:   "RESTIC_CACHE_DIR would move restic's cache.",
			manifest: backupVerifierRestoreOnly,
			mutate:   []mutation{set("spec.runtimeSettings.container.env", []any{map[string]any{"name": "RESTIC_CACHE_DIR", "value": "x"}})},
			want:     want{invalid: true, messages: []string{"env: of the RESTIC_* variables only RESTIC_COMPRESSION, RESTIC_PACK_SIZE and RESTIC_READ_CONCURRENCY are accepted"}},
		},
		"EnvKubeconfigRefused": {
			reason:   "KUBECONFIG would send the agent to another API server.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].addon.containerRuntimeSettings.env", []any{map[string]any{"name": "KUBECONFIG", "value": "x"}})},
			want:     want{invalid: true, messages: []string{"env: variables that redirect the agent"}},
		},
		"EnvProxyRefused": {
			reason:   "A proxy, in either case, would route the agent's traffic elsewhere.",
			manifest: backupVerifierRestoreOnly,
			mutate:   []mutation{set("spec.restoreOption.addonInfo.containerRuntimeSettings.env", []any{map[string]any{"name": "https_proxy", "value": "x"}})},
			want:     want{invalid: true, messages: []string{"env: variables that redirect the agent"}},
		},
		"EnvCABundleRefused": {
			reason:   "A CA bundle would change whom the agent trusts.",
			manifest: backupStorageS3,
			mutate:   []mutation{set("spec.runtimeSettings.container.env", []any{map[string]any{"name": "SSL_CERT_FILE", "value": "x"}})},
			want:     want{invalid: true, messages: []string{"env: variables that redirect the agent"}},
		},
		"EnvCloudCredentialsRefused": {
			reason:   "Cloud SDK variables would change the storage's endpoint or credentials.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].addon.containerRuntimeSettings.env", []any{map[string]any{"name": "AWS_ENDPOINT_URL", "value": "x"}})},
			want:     want{invalid: true, messages: []string{"env: variables that redirect the agent"}},
		},
		"EnvAgentContractRefused": {
			reason:   "The agent's own variables are set by Stashplane.",
			manifest: restoreSession,
			mutate:   []mutation{set("spec.addon.containerRuntimeSettings.env", []any{map[string]any{"name": "STASHPLANE_READ_DATA_SUBSET", "value": "x"}})},
			want:     want{invalid: true, messages: []string{"env: variables that redirect the agent"}},
		},
		"EnvResticTuningAccepted": {
			reason:   "restic's tuning variables are accepted and reach restic.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].addon.containerRuntimeSettings.env", []any{map[string]any{"name": "RESTIC_COMPRESSION", "value": "x"}})},
		},
		"EnvOtherAccepted": {
			reason:   "Variables that redirect nothing are accepted.",
			manifest: restoreSession,
			mutate:   []mutation{set("spec.addon.containerRuntimeSettings.env", []any{map[string]any{"name": "GOMAXPROCS", "value": "x"}})},
		},
		"BackupConfigurationAddonJobTemplateAccepted": {
			reason:   "An addon jobTemplate as KubeStash writes it (pod settings with resources) plus the Job's settings is accepted.",
			manifest: backupConfiguration,
			mutate: []mutation{set("spec.sessions[0].addon.jobTemplate", map[string]any{
				"metadata":                map[string]any{"labels": map[string]any{"team": "a"}},
				"spec":                    map[string]any{"nodeSelector": map[string]any{"disk": "ssd"}, "resources": map[string]any{"requests": map[string]any{"cpu": "100m"}}},
				"backoffLimit":            int64(0),
				"activeDeadlineSeconds":   int64(3600),
				"ttlSecondsAfterFinished": int64(600),
			})},
		},
		"BackupConfigurationAddonJobTTLTooShort": {
			reason:   "A finished Job kept under 300 seconds could vanish before its session reads it.",
			manifest: backupConfiguration,
			mutate:   []mutation{set("spec.sessions[0].addon.jobTemplate", map[string]any{"ttlSecondsAfterFinished": int64(10)})},
			want:     want{invalid: true, messages: []string{"spec.sessions[0].addon.jobTemplate.ttlSecondsAfterFinished"}},
		},
		"BackupStoragePodLabelsAccepted": {
			reason:   "runtimeSettings.pod.podLabels, as KubeStash's guides write them, are accepted and carried out.",
			manifest: backupStorageS3,
			mutate:   []mutation{set("spec.runtimeSettings", map[string]any{"pod": map[string]any{"podLabels": map[string]any{"team": "storage"}}})},
		},
		"BackupSessionInvokerGroupRefused": {
			reason:   "A BackupSession's invoker is of Stashplane's core group.",
			manifest: backupSession,
			mutate:   []mutation{set("spec.invoker.apiGroup", "core.kubestash.com")},
			want:     want{invalid: true, messages: []string{"spec.invoker", "invoker.apiGroup: a BackupConfiguration is of core.stashplane.io"}},
		},
		"BackupVerificationSessionInvokerNamespaceRefused": {
			reason:   "A verification session runs beside its verifier, so an invoker namespace is refused rather than ignored.",
			manifest: backupVerificationSession,
			mutate:   []mutation{set("spec.invoker.namespace", "other")},
			want:     want{invalid: true, messages: []string{"spec.invoker", "invoker.namespace: a verification session runs beside its verifier"}},
		},
		"BackupVerificationSessionInvokerGroupRefused": {
			reason:   "A verification session's invoker is of Stashplane's core group.",
			manifest: backupVerificationSession,
			mutate:   []mutation{set("spec.invoker.apiGroup", "apps")},
			want:     want{invalid: true, messages: []string{"spec.invoker", "invoker.apiGroup: a BackupVerifier is of core.stashplane.io"}},
		},
		"AddonWalGRefused": {
			reason:   "The WalG driver is not built.",
			manifest: addon,
			mutate:   []mutation{set("spec.backupTasks[0].driver", "WalG")},
			want:     want{invalid: true, messages: []string{"spec.backupTasks[0]", "driver: only Restic is built"}},
		},
		"AddonVolumeSnapshotterRefused": {
			reason:   "The VolumeSnapshotter driver is not built.",
			manifest: addon,
			mutate:   []mutation{set("spec.restoreTasks[0].driver", "VolumeSnapshotter")},
			want:     want{invalid: true, messages: []string{"spec.restoreTasks[0]", "driver: only Restic is built"}},
		},
		"AddonSingletonRefused": {
			reason:   "singleton is not carried out: every task runs once per component.",
			manifest: addon,
			mutate:   []mutation{set("spec.restoreTasks[0].singleton", true)},
			want:     want{invalid: true, messages: []string{"spec.restoreTasks[0]", "singleton is not carried out"}},
		},
		"AddonSingletonFalseAccepted": {
			reason:   "singleton: false says what Stashplane does and is accepted.",
			manifest: addon,
			mutate:   []mutation{set("spec.restoreTasks[0].singleton", false)},
		},
		"AddonVolumeTemplateRefused": {
			reason:   "volumeTemplate is not carried out.",
			manifest: addon,
			mutate:   []mutation{set("spec.backupTasks[0].volumeTemplate", []any{map[string]any{"name": "scratch", "source": map[string]any{"emptyDir": map[string]any{}}}})},
			want:     want{invalid: true, messages: []string{"spec.backupTasks[0]", "volumeTemplate is not carried out"}},
		},
		"AddonVolumeMountsRefused": {
			reason:   "A task's volumeMounts are not carried out.",
			manifest: addon,
			mutate:   []mutation{set("spec.restoreTasks[0].volumeMounts", []any{map[string]any{"name": "scratch", "mountPath": "/scratch"}})},
			want:     want{invalid: true, messages: []string{"spec.restoreTasks[0]", "volumeMounts is not carried out"}},
		},

		// Addons catalog.
		"AddonBadDriver": {
			reason:   "A task driver outside Restic, WalG and VolumeSnapshotter should be rejected.",
			manifest: addon,
			mutate:   []mutation{set("spec.backupTasks[0].driver", "Rsync")},
			want:     want{invalid: true, messages: []string{"spec.backupTasks[0].driver"}},
		},
		"AddonBadExecutor": {
			reason:   "A task executor other than Job should be rejected.",
			manifest: addon,
			mutate:   []mutation{set("spec.restoreTasks[0].executor", "DaemonSet")},
			want:     want{invalid: true, messages: []string{"spec.restoreTasks[0].executor"}},
		},
		"AddonTaskWithoutFunction": {
			reason:   "A task without a function should be rejected.",
			manifest: addon,
			mutate:   []mutation{remove("spec.restoreTasks[0].function")},
			want:     want{invalid: true, messages: []string{"spec.restoreTasks[0].function: Required value"}},
		},
		"FunctionWithoutTemplate": {
			reason:   "A Function without a template should be rejected.",
			manifest: function,
			mutate:   []mutation{remove("spec.template")},
			want:     want{invalid: true, messages: []string{"spec.template: Required value"}},
		},
		"FunctionTemplateTooLong": {
			reason:   "A template longer than the bound should be rejected.",
			manifest: function,
			mutate:   []mutation{set("spec.template", strings.Repeat("x", addonsv1alpha1.MaxTemplateLength+1))},
			want:     want{invalid: true, messages: []string{"spec.template: Too long"}},
		},
	}

	requireControlPlane(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			u := object(t, name, tc.manifest)
			for _, m := range tc.mutate {
				m(t, u.Object)
			}

			err := kube.Create(ctx, u)
			if !tc.want.invalid {
				if err != nil {
					t.Fatalf("\n%s\nCreate(...): want no error, got %v", tc.reason, err)
				}
				return
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("\n%s\nCreate(...): want an Invalid error, got %v", tc.reason, err)
			}
			for _, msg := range tc.want.messages {
				if !strings.Contains(err.Error(), msg) {
					t.Errorf("\n%s\nCreate(...): want an error mentioning %q, got %v", tc.reason, msg, err)
				}
			}
		})
	}
}

// An Addon has backup and restore tasks only: verificationTasks is not a
// field of the API (a Query or Script BackupVerifier names its Function
// itself), so a manifest that writes it is refused as kubectl sends it,
// with strict field validation.
func TestAddonVerificationTasksUnknown(t *testing.T) {
	requireControlPlane(t)
	ctx := testContext(t)
	u := object(t, "AddonVerificationTasksUnknown", addon)
	set("spec.verificationTasks", []any{map[string]any{"name": "file-check", "function": "workload-verify"}})(t, u.Object)
	err := kube.Create(ctx, u, client.FieldValidation("Strict"))
	if err == nil || !strings.Contains(err.Error(), `unknown field "spec.verificationTasks"`) {
		t.Fatalf("Create with spec.verificationTasks: got %v, want an unknown field error", err)
	}
}

func TestDefaults(t *testing.T) {
	cases := map[string]struct {
		reason   string
		manifest string
		obj      client.Object
		got      func(client.Object) any
		want     any
	}{
		"BackupStorage": {
			reason:   "A BackupStorage should default its deletion and management policies and its usage policy to Same.",
			manifest: backupStorageLocal,
			obj:      &storagev1alpha1.BackupStorage{},
			got: func(o client.Object) any {
				bs := o.(*storagev1alpha1.BackupStorage)
				return []any{bs.Spec.DeletionPolicy, bs.Spec.ManagementPolicies, bs.Spec.UsagePolicy.AllowedNamespaces.From}
			},
			want: []any{
				storagev1alpha1.DeletionPolicyDelete,
				xpv2.ManagementPolicies{xpv2.ManagementActionAll},
				ptr.To(storagev1alpha1.NamespacesFromSame),
			},
		},
		"Repository": {
			reason:   "A Repository should default its deletion and management policies, and prune daily.",
			manifest: repository,
			obj:      &storagev1alpha1.Repository{},
			got: func(o client.Object) any {
				r := o.(*storagev1alpha1.Repository)
				return []any{r.Spec.DeletionPolicy, r.Spec.ManagementPolicies, r.Spec.Maintenance}
			},
			want: []any{storagev1alpha1.DeletionPolicyDelete, xpv2.ManagementPolicies{xpv2.ManagementActionAll}, &storagev1alpha1.MaintenanceSpec{Schedule: "@daily"}},
		},
		"Snapshot": {
			reason:   "A Snapshot should default its layout version and its deletion and management policies.",
			manifest: snapshot,
			obj:      &storagev1alpha1.Snapshot{},
			got: func(o client.Object) any {
				s := o.(*storagev1alpha1.Snapshot)
				return []any{s.Spec.Version, s.Spec.DeletionPolicy, s.Spec.ManagementPolicies}
			},
			want: []any{"v1", storagev1alpha1.DeletionPolicyDelete, xpv2.ManagementPolicies{xpv2.ManagementActionAll}},
		},
		"RetentionPolicy": {
			reason:   "A RetentionPolicy should keep the newest failed Snapshot by default.",
			manifest: retentionPolicy,
			obj:      &storagev1alpha1.RetentionPolicy{},
			got: func(o client.Object) any {
				return o.(*storagev1alpha1.RetentionPolicy).Spec.FailedSnapshots
			},
			want: &storagev1alpha1.FailedSnapshotsKeepPolicy{Last: ptr.To[int32](1)},
		},
		"BackupConfiguration": {
			reason:   "A session should default its history limit, concurrency policy, hook execution policy and repository deletion policy.",
			manifest: backupConfiguration,
			obj:      &corev1alpha1.BackupConfiguration{},
			got: func(o client.Object) any {
				s := o.(*corev1alpha1.BackupConfiguration).Spec.Sessions[0]
				return []any{s.SessionHistoryLimit, s.Scheduler.ConcurrencyPolicy, s.Hooks.PreBackup[0].ExecutionPolicy, s.Repositories[0].DeletionPolicy}
			},
			want: []any{int32(1), corev1alpha1.ConcurrencyForbid, corev1alpha1.HookExecuteAlways, corev1alpha1.RepositoryDeletionPolicyDelete},
		},
		"BackupVerifier": {
			reason:   "A BackupVerifier should default to RestoreOnly with a history of one session.",
			manifest: backupVerifierRestoreOnly,
			obj:      &corev1alpha1.BackupVerifier{},
			got: func(o client.Object) any {
				v := o.(*corev1alpha1.BackupVerifier)
				return []any{v.Spec.Type, v.Spec.SessionHistoryLimit}
			},
			want: []any{corev1alpha1.VerificationRestoreOnly, int32(1)},
		},
		"HookTemplate": {
			reason:   "A pod executor should run in one pod unless told otherwise.",
			manifest: hookTemplate,
			obj:      &corev1alpha1.HookTemplate{},
			got: func(o client.Object) any {
				return o.(*corev1alpha1.HookTemplate).Spec.Executor.Pod.Strategy
			},
			// The manifest asks for ExecuteOnAll; a default must not override it.
			want: corev1alpha1.ExecuteOnAll,
		},
		"Addon": {
			reason:   "A task should default to the Restic driver and the Job executor.",
			manifest: addon,
			obj:      &addonsv1alpha1.Addon{},
			got: func(o client.Object) any {
				task := o.(*addonsv1alpha1.Addon).Spec.BackupTasks[0]
				return []any{task.Driver, task.Executor}
			},
			want: []any{storagev1alpha1.DriverRestic, addonsv1alpha1.TaskExecutorJob},
		},
	}

	requireControlPlane(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			u := object(t, "defaults-"+name, tc.manifest)
			if err := kube.Create(ctx, u); err != nil {
				t.Fatalf("\n%s\nCreate(...): %v", tc.reason, err)
			}
			if err := kube.Get(ctx, client.ObjectKeyFromObject(u), tc.obj); err != nil {
				t.Fatalf("\n%s\nGet(...): %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, tc.got(tc.obj)); diff != "" {
				t.Errorf("\n%s\nGet(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
