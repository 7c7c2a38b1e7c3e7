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

import (
	"testing"

	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
)

func TestManagedAccessors(t *testing.T) {
	initialized := xpv2.Condition{
		Type:   TypeRepositoryInitialized,
		Status: corev1.ConditionTrue,
		Reason: ReasonRepositoryInitializationSucceeded,
	}
	uploaded := xpv2.Condition{
		Type:   TypeSnapshotMetadataUploaded,
		Status: corev1.ConditionFalse,
		Reason: ReasonSnapshotMetadataUploadFailed,
	}
	uploadedAgain := xpv2.Condition{
		Type:   TypeSnapshotMetadataUploaded,
		Status: corev1.ConditionTrue,
		Reason: ReasonSnapshotMetadataUploadSucceeded,
	}
	observeOnly := xpv2.ManagementPolicies{xpv2.ManagementActionObserve}

	type want struct {
		policies   xpv2.ManagementPolicies
		conditions []xpv2.Condition
	}
	cases := map[string]struct {
		reason     string
		mg         resource.Managed
		policies   xpv2.ManagementPolicies
		conditions [][]xpv2.Condition
		want       want
	}{
		"BackupStorage": {
			reason:     "Policies and conditions set on a BackupStorage should be read back.",
			mg:         &BackupStorage{},
			policies:   observeOnly,
			conditions: [][]xpv2.Condition{{xpv2.Available()}},
			want: want{
				policies:   observeOnly,
				conditions: []xpv2.Condition{xpv2.Available()},
			},
		},
		"Repository": {
			reason:     "Conditions of different types set on a Repository should all be kept.",
			mg:         &Repository{},
			policies:   xpv2.ManagementPolicies{xpv2.ManagementActionAll},
			conditions: [][]xpv2.Condition{{initialized}, {xpv2.ReconcileSuccess()}},
			want: want{
				policies:   xpv2.ManagementPolicies{xpv2.ManagementActionAll},
				conditions: []xpv2.Condition{initialized, xpv2.ReconcileSuccess()},
			},
		},
		"SnapshotReplacesCondition": {
			reason:     "Setting a condition of a type a Snapshot already has should replace it.",
			mg:         &Snapshot{},
			conditions: [][]xpv2.Condition{{uploaded}, {uploadedAgain}},
			want: want{
				conditions: []xpv2.Condition{uploadedAgain},
			},
		},
	}

	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tc.mg.SetManagementPolicies(tc.policies)
			for _, c := range tc.conditions {
				tc.mg.SetConditions(c...)
			}

			if diff := cmp.Diff(tc.want.policies, tc.mg.GetManagementPolicies()); diff != "" {
				t.Errorf("\n%s\nGetManagementPolicies(): -want +got:\n%s", tc.reason, diff)
			}
			got := make([]xpv2.Condition, 0, len(tc.want.conditions))
			for _, c := range tc.want.conditions {
				got = append(got, tc.mg.GetCondition(c.Type))
			}
			if diff := cmp.Diff(tc.want.conditions, got, cmpopts.IgnoreFields(xpv2.Condition{}, "LastTransitionTime")); diff != "" {
				t.Errorf("\n%s\nGetCondition(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestGetConditionMissing(t *testing.T) {
	cases := map[string]struct {
		reason string
		mg     resource.Managed
		ct     xpv2.ConditionType
		want   xpv2.Condition
	}{
		"BackupStorage": {
			reason: "A condition a BackupStorage does not have should read as Unknown.",
			mg:     &BackupStorage{},
			ct:     TypeBackendInitialized,
			want:   xpv2.Condition{Type: TypeBackendInitialized, Status: corev1.ConditionUnknown},
		},
		"Snapshot": {
			reason: "A condition a Snapshot does not have should read as Unknown.",
			mg:     &Snapshot{},
			ct:     TypeBackupIncomplete,
			want:   xpv2.Condition{Type: TypeBackupIncomplete, Status: corev1.ConditionUnknown},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.mg.GetCondition(tc.ct)); diff != "" {
				t.Errorf("\n%s\nGetCondition(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
