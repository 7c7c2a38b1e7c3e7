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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RetentionPeriod is a duration written as a sequence of numbers with the
// units y (years), mo (months), w (weeks), d (days), h (hours) and m
// (minutes), for example "30d12h" or "1y6mo".
// +kubebuilder:validation:Pattern=`^([0-9]+(y|mo|w|d|h|m))+$`
// +kubebuilder:validation:MaxLength=64
type RetentionPeriod string

// SuccessfulSnapshotsKeepPolicy says which successful Snapshots to keep. A
// Snapshot is kept if any of the rules keeps it.
type SuccessfulSnapshotsKeepPolicy struct {
	// Last keeps the newest n Snapshots.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Last *int32 `json:"last,omitempty"`

	// Hourly keeps the newest Snapshot of each of the last n hours that have
	// one.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Hourly *int32 `json:"hourly,omitempty"`

	// Daily keeps the newest Snapshot of each of the last n days that have
	// one.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Daily *int32 `json:"daily,omitempty"`

	// Weekly keeps the newest Snapshot of each of the last n weeks that have
	// one.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Weekly *int32 `json:"weekly,omitempty"`

	// Monthly keeps the newest Snapshot of each of the last n months that
	// have one.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Monthly *int32 `json:"monthly,omitempty"`

	// Yearly keeps the newest Snapshot of each of the last n years that have
	// one.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Yearly *int32 `json:"yearly,omitempty"`
}

// FailedSnapshotsKeepPolicy says which failed Snapshots to keep.
type FailedSnapshotsKeepPolicy struct {
	// Last keeps the newest n failed Snapshots.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=1
	// +optional
	Last *int32 `json:"last,omitempty"`
}

// RetentionPolicySpec is the desired state of a RetentionPolicy.
type RetentionPolicySpec struct {
	// MaxRetentionPeriod removes Snapshots older than this, whatever the
	// other rules say.
	// +optional
	MaxRetentionPeriod RetentionPeriod `json:"maxRetentionPeriod,omitempty"`

	// SuccessfulSnapshots says which successful Snapshots to keep.
	// +optional
	SuccessfulSnapshots *SuccessfulSnapshotsKeepPolicy `json:"successfulSnapshots,omitempty"`

	// FailedSnapshots says which failed Snapshots to keep; by default the
	// newest one.
	// +kubebuilder:default={last: 1}
	// +optional
	FailedSnapshots *FailedSnapshotsKeepPolicy `json:"failedSnapshots,omitempty"`

	// UsagePolicy limits which namespaces may use this RetentionPolicy.
	// +optional
	UsagePolicy *UsagePolicy `json:"usagePolicy,omitempty"`

	// Default marks this policy as the one used when a backend does not
	// name one.
	// +optional
	Default bool `json:"default,omitempty"`
}

// A RetentionPolicy says how long Snapshots are kept. It has no status.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,categories=stashplane,shortName=rp
// +kubebuilder:printcolumn:name="Max-Retention-Period",type=string,JSONPath=`.spec.maxRetentionPeriod`
// +kubebuilder:printcolumn:name="Default",type=boolean,JSONPath=`.spec.default`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RetentionPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec RetentionPolicySpec `json:"spec,omitempty"`
}

// RetentionPolicyList is a list of RetentionPolicies.
// +kubebuilder:object:root=true
type RetentionPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RetentionPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RetentionPolicy{}, &RetentionPolicyList{})
}
