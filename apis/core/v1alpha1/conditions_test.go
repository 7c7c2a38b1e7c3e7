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
	corev1 "k8s.io/api/core/v1"
)

func TestConditions(t *testing.T) {
	cases := map[string]struct {
		reason string
		obj    resource.Conditioned
		set    xpv2.Condition
	}{
		"BackupConfiguration": {
			reason: "A condition set on a BackupConfiguration should be read back.",
			obj:    &BackupConfiguration{},
			set:    xpv2.Condition{Type: TypeValidationPassed, Status: corev1.ConditionTrue, Reason: ReasonResourceValidationPassed},
		},
		"BackupSession": {
			reason: "A condition set on a BackupSession should be read back.",
			obj:    &BackupSession{},
			set:    xpv2.Condition{Type: TypeBackupSkipped, Status: corev1.ConditionTrue, Reason: ReasonSkippedConcurrentSession},
		},
		"RestoreSession": {
			reason: "A condition set on a RestoreSession should be read back.",
			obj:    &RestoreSession{},
			set:    xpv2.Condition{Type: TypeRestoreTargetFound, Status: corev1.ConditionFalse, Reason: ReasonRestoreTargetNotFound},
		},
		"BackupVerificationSession": {
			reason: "A condition set on a BackupVerificationSession should be read back.",
			obj:    &BackupVerificationSession{},
			set:    xpv2.Condition{Type: TypeBackupVerificationSkipped, Status: corev1.ConditionTrue, Reason: ReasonSnapshotAlreadyVerified},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tc.obj.SetConditions(tc.set)
			if diff := cmp.Diff(tc.set, tc.obj.GetCondition(tc.set.Type)); diff != "" {
				t.Errorf("\n%s\nGetCondition(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
