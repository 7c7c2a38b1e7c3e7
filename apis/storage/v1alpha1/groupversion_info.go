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

// +kubebuilder:object:generate=true
// +groupName=storage.stashplane.io

package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// Group and version of the storage API.
const (
	Group   = "storage.stashplane.io"
	Version = "v1alpha1"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

	// SchemeBuilder collects the kinds of this package for a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds every kind of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Kinds of this group.
const (
	BackupStorageKind   = "BackupStorage"
	RepositoryKind      = "Repository"
	SnapshotKind        = "Snapshot"
	RetentionPolicyKind = "RetentionPolicy"
)

// Group-version-kinds of this group.
var (
	BackupStorageGroupVersionKind   = GroupVersion.WithKind(BackupStorageKind)
	RepositoryGroupVersionKind      = GroupVersion.WithKind(RepositoryKind)
	SnapshotGroupVersionKind        = GroupVersion.WithKind(SnapshotKind)
	RetentionPolicyGroupVersionKind = GroupVersion.WithKind(RetentionPolicyKind)
)
