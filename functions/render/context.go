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

package render

import (
	corev1 "k8s.io/api/core/v1"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// CUE paths of a Function template that the renderer reads or fills. They
// are the whole contract between Go and a template: a template that defines
// these paths, with these shapes, can be rendered.
const (
	// PathParams is the schema of the task's parameters: a CUE definition
	// whose fields are the parameters, with `*` defaults and `!` marking
	// required ones.
	PathParams = "#Params"

	// PathParamValues is where the renderer fills the task's parameters,
	// unified with #Params.
	PathParamValues = "params"

	// PathContext is where the renderer fills the Context.
	PathContext = "context"

	// PathObjects is the list of Kubernetes objects the template renders.
	PathObjects = "objects"
)

// ImageRepository is the repository of the stashplane image that runs the
// agent inside the Jobs the built-in addons render.
const ImageRepository = "ghcr.io/stashplane/stashplane"

// Image returns the stashplane image of the given version.
func Image(version string) string {
	return ImageRepository + ":" + version
}

// TaskKind says which list of an Addon a task comes from.
type TaskKind string

// Task kinds.
const (
	TaskBackup       TaskKind = "backup"
	TaskRestore      TaskKind = "restore"
	TaskVerification TaskKind = "verification"
	// TaskHook is a hook of a session whose HookTemplate has a Function
	// executor; it belongs to no Addon.
	TaskHook TaskKind = "hook"
)

// Context is everything a template may know about the step it renders. The
// JSON names are the CUE field names under `context`; the CUE schema of the
// same shape is in schema.cue. It never holds a secret value: a Secret is
// only ever named.
type Context struct {
	// Namespace the rendered objects are created in.
	Namespace string `json:"namespace"`

	// Task being rendered.
	Task TaskInfo `json:"task"`

	// Invoker is the object the step runs for, for example the
	// BackupConfiguration of a backup.
	Invoker ObjectRef `json:"invoker"`

	// Session is the run the step belongs to, for example a BackupSession.
	Session ObjectRef `json:"session"`

	// Target is the workload whose data is backed up or restored.
	Target Target `json:"target"`

	// Repository the data is written to or read from.
	Repository Repository `json:"repository"`

	// Storage holding the Repository.
	Storage Storage `json:"storage"`

	// Snapshot is the name of the Snapshot written (backup) or read
	// (restore, verification).
	Snapshot string `json:"snapshot"`

	// Component is the name of the component of the Snapshot, for example
	// "dump".
	Component string `json:"component"`

	// Image is the stashplane image, ghcr.io/stashplane/stashplane:<version>.
	Image string `json:"image"`

	// Variables are free-form values given to the task, by name.
	Variables map[string]string `json:"variables"`

	// Runtime holds the settings of the pods and containers the step runs.
	// The renderer applies them to every Job after the template is
	// evaluated; templates may read them too.
	Runtime Runtime `json:"runtime"`
}

// TaskInfo describes the task being rendered.
type TaskInfo struct {
	// Addon the task belongs to.
	Addon string `json:"addon"`
	// Name of the task.
	Name string `json:"name"`
	// Kind of the task: backup, restore or verification.
	Kind TaskKind `json:"kind"`
	// Function that renders the task.
	Function string `json:"function"`
	// Driver that moves the data, for example Restic.
	Driver string `json:"driver"`
}

// ObjectRef names an object of a kind.
type ObjectRef struct {
	APIGroup string `json:"apiGroup"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
}

// Target is the workload a task works on, with the volumes of its pod
// template that the task reads (backup) or writes (restore).
type Target struct {
	APIGroup  string `json:"apiGroup"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`

	// Volumes of the target's pod template that the task mounts.
	Volumes []corev1.Volume `json:"volumes"`

	// VolumeMounts of those volumes, at the paths the target uses them.
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts"`

	// NodeName is the node whose data the task works on, for a component
	// that lives on one node (a DaemonSet's); empty when any node will do.
	NodeName string `json:"nodeName"`

	// SubPath is the directory of the target's claim that a restore
	// writes into: the component's name when a Snapshot of several
	// components is restored into one PersistentVolumeClaim, so that none
	// overwrites another; "" for the claim's root.
	SubPath string `json:"subPath"`
}

// Repository is the Repository a task writes to or reads from.
type Repository struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Directory of the Repository relative to the storage root.
	Directory string `json:"directory"`
	// EncryptionSecret is the name of the Secret holding RESTIC_PASSWORD,
	// in the Repository's namespace.
	EncryptionSecret string `json:"encryptionSecret"`
}

// Storage is the BackupStorage holding the Repository.
type Storage struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Provider is local, s3, gcs or azure.
	Provider string `json:"provider"`
	// SecretName is the name of the Secret with the backend credentials,
	// empty for ambient credentials. Its values are never read.
	SecretName string `json:"secretName"`
	// Volumes and VolumeMounts reach a local storage: the volume holding
	// the backups, mounted where the agent expects it. Empty for object
	// stores.
	Volumes      []corev1.Volume      `json:"volumes"`
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts"`
	// Brokered: Jobs of other namespaces reach the storage only through
	// its broker (spec.access Broker), with a grant in their SecretName
	// and no volume (From).
	Brokered bool `json:"brokered,omitempty"`
}

// From is the storage as the Jobs of namespace ns see it, when their
// owner's Secret for it (a copy of its credentials, or a grant to its
// broker) is named secret. The storage's own namespace sees it whole;
// another reaches a brokered storage with the grant alone, no volume and
// no credential, and a direct one with the copy in place of its Secret.
func (s Storage) From(ns, secret string) Storage {
	switch {
	case s.Namespace == ns:
	case s.Brokered:
		s.SecretName = secret
		s.Volumes, s.VolumeMounts = []corev1.Volume{}, []corev1.VolumeMount{}
	case s.SecretName != "":
		s.SecretName = secret
	}
	return s
}

// Runtime holds the runtime settings of a step.
type Runtime struct {
	// Pod settings applied to every rendered pod template.
	Pod storagev1alpha1.PodRuntimeSettings `json:"pod"`
	// PodLabels and PodAnnotations are added to every rendered pod.
	PodLabels      map[string]string `json:"podLabels"`
	PodAnnotations map[string]string `json:"podAnnotations"`
	// Container settings applied to every rendered container.
	Container storagev1alpha1.ContainerRuntimeSettings `json:"container"`
	// Job settings applied to every rendered Job.
	Job JobSettings `json:"job"`
}

// JobSettings are the Job-level settings a user gives an addon's Jobs
// (addon.jobTemplate); each one set wins over the template's.
type JobSettings struct {
	BackoffLimit            *int32 `json:"backoffLimit,omitempty"`
	ActiveDeadlineSeconds   *int64 `json:"activeDeadlineSeconds,omitempty"`
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}
