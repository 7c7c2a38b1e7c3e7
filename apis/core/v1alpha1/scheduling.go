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

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// ConcurrencyPolicy says what happens when a scheduled run is due while the
// previous one is still running.
// +kubebuilder:validation:Enum=Allow;Forbid;Replace
type ConcurrencyPolicy string

// Concurrency policies.
const (
	// ConcurrencyAllow starts the new run alongside the old one.
	ConcurrencyAllow ConcurrencyPolicy = "Allow"
	// ConcurrencyForbid skips the new run.
	ConcurrencyForbid ConcurrencyPolicy = "Forbid"
	// ConcurrencyReplace ends the older unfinished runs (Failed,
	// ReplacedByNewerRun) and then starts the new one. A BackupVerifier
	// refuses it at admission.
	ConcurrencyReplace ConcurrencyPolicy = "Replace"
)

// SchedulerSpec says when something runs. It has the meaning of the fields
// of the same names in a CronJob spec.
type SchedulerSpec struct {
	// Schedule in cron format, for example "0 */6 * * *".
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Schedule string `json:"schedule"`

	// TimeZone the schedule is read in, for example "Etc/UTC"; empty means
	// the time zone of the controller.
	// +optional
	TimeZone *string `json:"timeZone,omitempty"`

	// StartingDeadlineSeconds is how late a missed run may still start.
	// +kubebuilder:validation:Minimum=0
	// +optional
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`

	// ConcurrencyPolicy says what happens when a run is due while the
	// previous one of the same session is still running: Forbid (the
	// default) skips the new run (SkippedConcurrentSession), Allow runs
	// both, Replace ends the older run (its Jobs deleted, its unfinished
	// Snapshots Failed with ReplacedByNewerRun, the restic locks its pods
	// left removed by the new run) and then starts the new one. A
	// BackupVerifier refuses Replace.
	// +kubebuilder:default=Forbid
	// +optional
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`

	// Suspend stops new runs from being started.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`

	// JobTemplate of the jobs that start each run.
	// +optional
	JobTemplate JobTemplate `json:"jobTemplate,omitempty"`

	// SuccessfulJobsHistoryLimit is how many finished successful jobs to keep.
	// +kubebuilder:validation:Minimum=0
	// +optional
	SuccessfulJobsHistoryLimit *int32 `json:"successfulJobsHistoryLimit,omitempty"`

	// FailedJobsHistoryLimit is how many finished failed jobs to keep.
	// +kubebuilder:validation:Minimum=0
	// +optional
	FailedJobsHistoryLimit *int32 `json:"failedJobsHistoryLimit,omitempty"`
}

// JobTemplate tunes the Jobs Stashplane creates. Stashplane owns the
// containers of these Jobs, so the template only carries pod settings.
type JobTemplate struct {
	// Template of the Job's pod.
	// +optional
	Template PodTemplate `json:"template,omitempty"`

	// BackoffLimit is the number of retries of the Job's pod.
	// +kubebuilder:validation:Minimum=0
	// +optional
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`

	// ActiveDeadlineSeconds bounds how long the Job may run.
	// +kubebuilder:validation:Minimum=1
	// +optional
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`

	// TTLSecondsAfterFinished is how long a finished Job is kept.
	// +kubebuilder:validation:Minimum=0
	// +optional
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// PodTemplate carries the metadata and pod-level settings of a pod that
// Stashplane builds. The containers are Stashplane's own and cannot be set.
type PodTemplate struct {
	// Metadata added to the pod.
	// +optional
	Metadata PodTemplateMetadata `json:"metadata,omitempty"`

	// Spec holds pod-level settings.
	// +optional
	Spec storagev1alpha1.PodRuntimeSettings `json:"spec,omitempty"`
}

// PodTemplateMetadata is the metadata a PodTemplate may add to a pod.
type PodTemplateMetadata struct {
	// Labels added to the pod.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations added to the pod.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// RetryConfig says how a failed run is retried.
type RetryConfig struct {
	// MaxRetry is how many times a failed run is retried.
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxRetry int32 `json:"maxRetry,omitempty"`

	// Delay before a retry starts, for example "5m".
	// +optional
	Delay metav1.Duration `json:"delay,omitempty"`
}
