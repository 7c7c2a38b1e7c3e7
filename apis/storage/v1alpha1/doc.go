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

// Package v1alpha1 holds the storage.stashplane.io API: where backups are
// written (BackupStorage), the per-target directories inside a storage
// (Repository), the record of one backup run (Snapshot) and the rules for
// pruning old runs (RetentionPolicy).
//
// BackupStorage, Repository and Snapshot are managed resources in the
// Crossplane sense: each one mirrors something that lives outside the cluster
// (a bucket prefix, a repository directory, a snapshot record in the backend),
// so they carry management policies and conditions that follow Crossplane's
// conventions. The types here are imported by the core group; they never
// import it.
package v1alpha1
