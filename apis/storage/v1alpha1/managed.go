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

// The storage kinds mirror objects in a backend, so Crossplane's managed
// reconciler machinery can drive them.
var (
	_ resource.Managed = &BackupStorage{}
	_ resource.Managed = &Repository{}
	_ resource.Managed = &Snapshot{}
)

// GetCondition returns the BackupStorage's condition of the given type.
func (in *BackupStorage) GetCondition(ct xpv2.ConditionType) xpv2.Condition {
	return in.Status.GetCondition(ct)
}

// SetConditions sets conditions of the BackupStorage.
func (in *BackupStorage) SetConditions(c ...xpv2.Condition) {
	in.Status.SetConditions(c...)
}

// GetManagementPolicies returns the BackupStorage's management policies.
func (in *BackupStorage) GetManagementPolicies() xpv2.ManagementPolicies {
	return in.Spec.ManagementPolicies
}

// SetManagementPolicies sets the BackupStorage's management policies.
func (in *BackupStorage) SetManagementPolicies(p xpv2.ManagementPolicies) {
	in.Spec.ManagementPolicies = p
}

// GetCondition returns the Repository's condition of the given type.
func (in *Repository) GetCondition(ct xpv2.ConditionType) xpv2.Condition {
	return in.Status.GetCondition(ct)
}

// SetConditions sets conditions of the Repository.
func (in *Repository) SetConditions(c ...xpv2.Condition) {
	in.Status.SetConditions(c...)
}

// GetManagementPolicies returns the Repository's management policies.
func (in *Repository) GetManagementPolicies() xpv2.ManagementPolicies {
	return in.Spec.ManagementPolicies
}

// SetManagementPolicies sets the Repository's management policies.
func (in *Repository) SetManagementPolicies(p xpv2.ManagementPolicies) {
	in.Spec.ManagementPolicies = p
}

// GetCondition returns the Snapshot's condition of the given type.
func (in *Snapshot) GetCondition(ct xpv2.ConditionType) xpv2.Condition {
	return in.Status.GetCondition(ct)
}

// SetConditions sets conditions of the Snapshot.
func (in *Snapshot) SetConditions(c ...xpv2.Condition) {
	in.Status.SetConditions(c...)
}

// GetManagementPolicies returns the Snapshot's management policies.
func (in *Snapshot) GetManagementPolicies() xpv2.ManagementPolicies {
	return in.Spec.ManagementPolicies
}

// SetManagementPolicies sets the Snapshot's management policies.
func (in *Snapshot) SetManagementPolicies(p xpv2.ManagementPolicies) {
	in.Spec.ManagementPolicies = p
}

// Stashplane's managed kinds publish no connection details: a backend's
// credentials stay in the Secret the user made. The managed reconciler still
// asks where to write them, so each kind answers "nowhere".
var (
	_ resource.LocalConnectionSecretWriterTo = &BackupStorage{}
	_ resource.LocalConnectionSecretWriterTo = &Repository{}
	_ resource.LocalConnectionSecretWriterTo = &Snapshot{}
)

// GetWriteConnectionSecretToReference returns nil: nothing is published.
func (in *BackupStorage) GetWriteConnectionSecretToReference() *xpv2.LocalSecretReference {
	return nil
}

// SetWriteConnectionSecretToReference does nothing: nothing is published.
func (in *BackupStorage) SetWriteConnectionSecretToReference(*xpv2.LocalSecretReference) {}

// GetWriteConnectionSecretToReference returns nil: nothing is published.
func (in *Repository) GetWriteConnectionSecretToReference() *xpv2.LocalSecretReference {
	return nil
}

// SetWriteConnectionSecretToReference does nothing: nothing is published.
func (in *Repository) SetWriteConnectionSecretToReference(*xpv2.LocalSecretReference) {}

// GetWriteConnectionSecretToReference returns nil: nothing is published.
func (in *Snapshot) GetWriteConnectionSecretToReference() *xpv2.LocalSecretReference {
	return nil
}

// SetWriteConnectionSecretToReference does nothing: nothing is published.
func (in *Snapshot) SetWriteConnectionSecretToReference(*xpv2.LocalSecretReference) {}
