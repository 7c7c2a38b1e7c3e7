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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// HookExecutionPolicy says when a hook that runs after the work runs.
// +kubebuilder:validation:Enum=Always;OnSuccess;OnFailure
type HookExecutionPolicy string

// Hook execution policies.
const (
	// HookExecuteAlways runs the hook whatever the outcome of the work.
	HookExecuteAlways HookExecutionPolicy = "Always"
	// HookExecuteOnSuccess runs the hook only if the work succeeded.
	HookExecuteOnSuccess HookExecutionPolicy = "OnSuccess"
	// HookExecuteOnFailure runs the hook only if the work failed.
	HookExecuteOnFailure HookExecutionPolicy = "OnFailure"
)

// HookInfo runs a HookTemplate as part of a backup or restore.
type HookInfo struct {
	// Name of the hook, unique among the hooks of its list.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// HookTemplate to run.
	// +kubebuilder:validation:Required
	HookTemplate storagev1alpha1.ObjectReference `json:"hookTemplate"`

	// Params are the values of the template's parameters, by parameter name.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	// +optional
	Params *runtime.RawExtension `json:"params,omitempty"`

	// MaxRetry is how many times a failed hook is retried.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRetry int32 `json:"maxRetry,omitempty"`

	// Timeout of one execution of the hook, for example "30s".
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// ExecutionPolicy says whether a hook that runs after the work runs
	// Always, OnSuccess or OnFailure of the work.
	// +kubebuilder:default=Always
	// +optional
	ExecutionPolicy HookExecutionPolicy `json:"executionPolicy,omitempty"`

	// Variables are made available to the hook's executor.
	// +optional
	Variables []corev1.EnvVar `json:"variables,omitempty"`
}

// BackupHooks run before and after a backup.
// +kubebuilder:validation:XValidation:rule="!has(self.preBackup) || self.preBackup.all(h, !has(h.executionPolicy) || h.executionPolicy == 'Always')",message="preBackup hooks always run before the backup: executionPolicy applies to postBackup hooks only"
type BackupHooks struct {
	// PreBackup hooks run, in order, before the backup starts; if one fails
	// the backup does not run.
	// +optional
	// +listType=map
	// +listMapKey=name
	PreBackup []HookInfo `json:"preBackup,omitempty"`

	// PostBackup hooks run, in order, after the backup ends.
	// +optional
	// +listType=map
	// +listMapKey=name
	PostBackup []HookInfo `json:"postBackup,omitempty"`
}

// RestoreHooks run before and after a restore.
// +kubebuilder:validation:XValidation:rule="!has(self.preRestore) || self.preRestore.all(h, !has(h.executionPolicy) || h.executionPolicy == 'Always')",message="preRestore hooks always run before the restore: executionPolicy applies to postRestore hooks only"
type RestoreHooks struct {
	// PreRestore hooks run, in order, before the restore starts; if one
	// fails the restore does not run.
	// +optional
	// +listType=map
	// +listMapKey=name
	PreRestore []HookInfo `json:"preRestore,omitempty"`

	// PostRestore hooks run, in order, after the restore ends.
	// +optional
	// +listType=map
	// +listMapKey=name
	PostRestore []HookInfo `json:"postRestore,omitempty"`
}

// HookPhase is the state of one hook execution.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Skipped
type HookPhase string

// Hook phases.
const (
	// HookPending: the hook has not run yet, or failed and is retried.
	HookPending HookPhase = "Pending"
	// HookRunning: an attempt started; if the provider stops before it
	// records the outcome, the attempt counts as failed.
	HookRunning HookPhase = "Running"
	// HookSucceeded: the hook ran and succeeded.
	HookSucceeded HookPhase = "Succeeded"
	// HookFailed: the hook failed on its last attempt.
	HookFailed HookPhase = "Failed"
	// HookSkipped: the hook was not due: its executionPolicy did not match
	// the outcome of the work, or a pre hook before it failed.
	HookSkipped HookPhase = "Skipped"
)

// HookExecutionStatus is the state of one hook of a session.
type HookExecutionStatus struct {
	// Name of the hook.
	Name string `json:"name"`

	// Phase of the hook.
	// +optional
	Phase HookPhase `json:"phase,omitempty"`

	// Reason says why the hook did not succeed, for example HookFailed,
	// HookTimedOut, NoPodSelected or HookTemplateNotFound.
	// +optional
	Reason string `json:"reason,omitempty"`

	// Output is the last line the hook printed (or why it failed), at most
	// 256 bytes, with secret values removed. Nothing more of a hook's
	// output is kept.
	// +optional
	Output string `json:"output,omitempty"`

	// Attempts is how many times the hook ran.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`

	// Duration of the last attempt, for example "1.2s".
	// +optional
	Duration string `json:"duration,omitempty"`

	// Pods the last attempt ran in or was aimed at.
	// +optional
	Pods []string `json:"pods,omitempty"`

	// Job is the Job of the last attempt of a hook whose template has a
	// Function executor; `kubectl logs job/<job>` shows all it printed.
	// +optional
	Job string `json:"job,omitempty"`
}

// HookStatus is the state of the hooks of a session.
type HookStatus struct {
	// PreHooks are the hooks that run before the work.
	// +optional
	PreHooks []HookExecutionStatus `json:"preHooks,omitempty"`

	// PostHooks are the hooks that run after the work.
	// +optional
	PostHooks []HookExecutionStatus `json:"postHooks,omitempty"`
}
