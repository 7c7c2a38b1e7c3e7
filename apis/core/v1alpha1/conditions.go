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
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
)

// The kinds of this group that report conditions can be handled by
// Crossplane's condition helpers.
var (
	_ resource.Conditioned = &BackupConfiguration{}
	_ resource.Conditioned = &BackupSession{}
	_ resource.Conditioned = &RestoreSession{}
	_ resource.Conditioned = &BackupVerificationSession{}
)

// GetCondition returns the BackupConfiguration's condition of the given type.
func (in *BackupConfiguration) GetCondition(ct xpv2.ConditionType) xpv2.Condition {
	return in.Status.GetCondition(ct)
}

// SetConditions sets conditions of the BackupConfiguration.
func (in *BackupConfiguration) SetConditions(c ...xpv2.Condition) {
	in.Status.SetConditions(c...)
}

// GetCondition returns the BackupSession's condition of the given type.
func (in *BackupSession) GetCondition(ct xpv2.ConditionType) xpv2.Condition {
	return in.Status.GetCondition(ct)
}

// SetConditions sets conditions of the BackupSession.
func (in *BackupSession) SetConditions(c ...xpv2.Condition) {
	in.Status.SetConditions(c...)
}

// GetCondition returns the RestoreSession's condition of the given type.
func (in *RestoreSession) GetCondition(ct xpv2.ConditionType) xpv2.Condition {
	return in.Status.GetCondition(ct)
}

// SetConditions sets conditions of the RestoreSession.
func (in *RestoreSession) SetConditions(c ...xpv2.Condition) {
	in.Status.SetConditions(c...)
}

// GetCondition returns the BackupVerificationSession's condition of the given type.
func (in *BackupVerificationSession) GetCondition(ct xpv2.ConditionType) xpv2.Condition {
	return in.Status.GetCondition(ct)
}

// SetConditions sets conditions of the BackupVerificationSession.
func (in *BackupVerificationSession) SetConditions(c ...xpv2.Condition) {
	in.Status.SetConditions(c...)
}

// GetCondition returns the condition of type ct.
func (in *BackupBlueprint) GetCondition(ct xpv2.ConditionType) xpv2.Condition {
	return in.Status.GetCondition(ct)
}

// SetConditions sets the given conditions.
func (in *BackupBlueprint) SetConditions(c ...xpv2.Condition) {
	in.Status.SetConditions(c...)
}
