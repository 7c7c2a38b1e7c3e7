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

// Package v1alpha1 holds the core.stashplane.io API: what to back up and
// when (BackupConfiguration, BackupBlueprint), one run of a backup
// (BackupSession), a restore (RestoreSession), how backups are proven
// restorable (BackupVerifier, BackupVerificationSession) and reusable hooks
// (HookTemplate).
//
// The kinds here refer to storage.stashplane.io objects and reuse its small
// shared types; the storage group never refers back to this one.
package v1alpha1
