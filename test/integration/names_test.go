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
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestNames checks what users see from kubectl: scope, short names,
// categories and printer columns of every kind.
func TestNames(t *testing.T) {
	type want struct {
		scope      apiextensionsv1.ResourceScope
		shortNames []string
		columns    []string
		status     bool
	}
	ns, cluster := apiextensionsv1.NamespaceScoped, apiextensionsv1.ClusterScoped
	cases := map[string]struct {
		reason string
		crd    string
		want   want
	}{
		"BackupStorage": {
			reason: "BackupStorages should show provider, default and phase.",
			crd:    "backupstorages.storage.stashplane.io",
			want:   want{scope: ns, shortNames: []string{"bs"}, columns: []string{"Provider", "Default", "Phase", "Age"}, status: true},
		},
		"Repository": {
			reason: "Repositories should show storage, integrity, snapshot count, size and phase.",
			crd:    "repositories.storage.stashplane.io",
			want:   want{scope: ns, shortNames: []string{"repo"}, columns: []string{"Storage", "Integrity", "Snapshot-Count", "Size", "Last-Prune", "Freed", "Phase", "Age"}, status: true},
		},
		"Snapshot": {
			reason: "Snapshots should show repository, phase, verification and size.",
			crd:    "snapshots.storage.stashplane.io",
			want:   want{scope: ns, shortNames: []string{"snap"}, columns: []string{"Repository", "Phase", "Verification", "Size", "Restore-Time", "Age"}, status: true},
		},
		"RetentionPolicy": {
			reason: "RetentionPolicies have no status.",
			crd:    "retentionpolicies.storage.stashplane.io",
			want:   want{scope: ns, shortNames: []string{"rp"}, columns: []string{"Max-Retention-Period", "Default", "Age"}},
		},
		"BackupConfiguration": {
			reason: "BackupConfigurations should show phase and paused.",
			crd:    "backupconfigurations.core.stashplane.io",
			want:   want{scope: ns, shortNames: []string{"bc"}, columns: []string{"Phase", "Paused", "Age"}, status: true},
		},
		"BackupSession": {
			reason: "BackupSessions should show invoker, phase and duration.",
			crd:    "backupsessions.core.stashplane.io",
			want:   want{scope: ns, shortNames: []string{"bks"}, columns: []string{"Invoker", "Phase", "Duration", "Age"}, status: true},
		},
		"RestoreSession": {
			reason: "RestoreSessions should show repository, phase and duration.",
			crd:    "restoresessions.core.stashplane.io",
			want:   want{scope: ns, shortNames: []string{"restore"}, columns: []string{"Repository", "Phase", "Duration", "Age"}, status: true},
		},
		"BackupVerifier": {
			reason: "BackupVerifiers should show their type.",
			crd:    "backupverifiers.core.stashplane.io",
			want:   want{scope: ns, shortNames: []string{"bv"}, columns: []string{"Type", "Age"}},
		},
		"BackupVerificationSession": {
			reason: "BackupVerificationSessions should show repository, snapshot, phase and the measured restore time.",
			crd:    "backupverificationsessions.core.stashplane.io",
			want:   want{scope: ns, shortNames: []string{"bvs"}, columns: []string{"Repository", "Snapshot", "Phase", "Restore-Time", "Age"}, status: true},
		},
		"HookTemplate": {
			reason: "HookTemplates should show their executor.",
			crd:    "hooktemplates.core.stashplane.io",
			want:   want{scope: ns, shortNames: []string{"ht"}, columns: []string{"Executor", "Age"}},
		},
		"BackupBlueprint": {
			reason: "BackupBlueprints show how many workloads they protect and whether all are.",
			crd:    "backupblueprints.core.stashplane.io",
			want:   want{scope: ns, shortNames: []string{"bb"}, columns: []string{"Protected", "Ready", "Age"}, status: true},
		},
		"Addon": {
			reason: "Addons are cluster-scoped and show whether their Functions resolve.",
			crd:    "addons.addons.stashplane.io",
			want:   want{scope: cluster, columns: []string{"Ready", "Age"}, status: true},
		},
		"Function": {
			reason: "Functions are cluster-scoped and show whether their template is valid.",
			crd:    "functions.addons.stashplane.io",
			want:   want{scope: cluster, columns: []string{"Ready", "Age"}, status: true},
		},
	}

	requireControlPlane(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := kube.Get(ctx, client.ObjectKey{Name: tc.crd}, crd); err != nil {
				t.Fatalf("\n%s\nGet(%q): %v", tc.reason, tc.crd, err)
			}
			if len(crd.Spec.Versions) != 1 {
				t.Fatalf("\n%s\nwant one version, got %d", tc.reason, len(crd.Spec.Versions))
			}
			v := crd.Spec.Versions[0]
			got := want{
				scope:      crd.Spec.Scope,
				shortNames: crd.Spec.Names.ShortNames,
				status:     v.Subresources != nil && v.Subresources.Status != nil,
			}
			for _, c := range v.AdditionalPrinterColumns {
				got.columns = append(got.columns, c.Name)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("\n%s\nCRD %q: -want +got:\n%s", tc.reason, tc.crd, diff)
			}
			if diff := cmp.Diff([]string{"stashplane"}, crd.Spec.Names.Categories); diff != "" {
				t.Errorf("\n%s\nCRD %q categories: -want +got:\n%s", tc.reason, tc.crd, diff)
			}
		})
	}
}
