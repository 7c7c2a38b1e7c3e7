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

// Package plan works out which tasks one run of a BackupConfiguration's
// session renders, and the context each is rendered with: the target's
// volumes, the repository, the storage, the snapshot and the runtime
// settings. It reads only the objects it is given, so the same plan serves
// the controllers and `stashplane render`, which has no cluster.
package plan

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

// Inputs are the objects a backup plan may consult besides the
// configuration. Anything missing is left empty in the context.
type Inputs struct {
	// Catalog of Addons and Functions.
	Catalog *render.Catalog
	// Storages by namespace/name.
	Storages map[string]*storagev1alpha1.BackupStorage
	// Target is the workload, whose pod template's volumes are used when a
	// task does not list its targetVolumes.
	Target *unstructured.Unstructured
	// Image is the stashplane image.
	Image string
	// SessionName names the BackupSession (or RestoreSession) of this run.
	SessionName string
	// Repository read from (restore), with its storage reference and
	// encryption Secret.
	Repository *storagev1alpha1.Repository
	// Snapshot restored, already resolved from a name or "latest".
	Snapshot *storagev1alpha1.Snapshot
	// Nodes the target's pods run on: a DaemonSet has one component per
	// node. A restore without them takes the node from the component name.
	Nodes []string
	// PodNodes are the nodes the target's running pods are on, by pod
	// name: a component that mounts a pod's claims runs on its node.
	PodNodes map[string]string
	// ObjectsOnly plans, of a restore, only the tasks that recreate
	// Kubernetes objects (an Addon task with a component): the target does
	// not exist yet, and its data is planned once they have made it.
	ObjectsOnly bool
}

// Backup returns one render.Input per task and repository of the named
// session of a BackupConfiguration.
func Backup(bc *corev1alpha1.BackupConfiguration, session string, in Inputs) ([]render.Input, error) {
	var s *corev1alpha1.Session
	for i := range bc.Spec.Sessions {
		if bc.Spec.Sessions[i].Name == session {
			s = &bc.Spec.Sessions[i]
		}
	}
	if s == nil {
		return nil, fmt.Errorf("cannot find session %q in backupconfiguration %q", session, bc.Name)
	}
	if s.Addon == nil {
		return nil, fmt.Errorf("cannot plan session %q: no addon is set", session)
	}
	addon, err := in.Catalog.Addon(s.Addon.Name)
	if err != nil {
		return nil, err
	}
	var out []render.Input
	for _, repo := range s.Repositories {
		storage, err := storageOf(bc, repo, in.Storages)
		if err != nil {
			return nil, err
		}
		for _, ref := range s.Addon.Tasks {
			task, err := render.FindTask(addon, render.TaskBackup, ref.Name)
			if err != nil {
				return nil, err
			}
			fn, err := in.Catalog.Function(task.Function)
			if err != nil {
				return nil, err
			}
			target, err := targetFor(bc.Spec.Target, bc.Namespace, ref, in.Target)
			if err != nil {
				return nil, err
			}
			parts := []component{{name: task.Component, target: target}}
			if task.Component == "" {
				// The target's data: one component per part of it.
				if parts, err = components(target, in.Target, listsVolumes(ref), in.Nodes, in.PodNodes); err != nil {
					return nil, err
				}
			}
			var params []byte
			if ref.Params != nil {
				params = ref.Params.Raw
			}
			for _, c := range parts {
				out = append(out, render.Input{
					Addon: addon, TaskKind: render.TaskBackup, Task: ref.Name, Function: fn, Params: params,
					Context: render.Context{
						Namespace: bc.Namespace,
						Invoker:   render.ObjectRef{APIGroup: corev1alpha1.Group, Kind: "BackupConfiguration", Name: bc.Name},
						Session:   render.ObjectRef{APIGroup: corev1alpha1.Group, Kind: "BackupSession", Name: in.SessionName},
						Target:    c.target,
						Repository: render.Repository{
							Name: repo.Name, Namespace: bc.Namespace, Directory: repo.RepositoryPath(),
							EncryptionSecret: repo.EncryptionSecret.Name,
						},
						Storage:   storage,
						Snapshot:  naming.SnapshotName(repo.Name, in.SessionName),
						Component: c.name,
						Image:     in.Image,
						Variables: variables(ref.Variables),
						Runtime:   runtimeOf(s.Addon, ref.Variables),
					},
				})
			}
		}
	}
	return out, nil
}

// storageOf describes the BackupStorage behind a repository's backend.
func storageOf(bc *corev1alpha1.BackupConfiguration, repo corev1alpha1.RepositoryInfo, storages map[string]*storagev1alpha1.BackupStorage) (render.Storage, error) {
	for _, b := range bc.Spec.Backends {
		if b.Name != repo.Backend {
			continue
		}
		ns := b.Storage().Namespace
		if ns == "" {
			ns = bc.Namespace
		}
		return describeStorage(ns, b.Storage().Name, storages), nil
	}
	return render.Storage{}, fmt.Errorf("cannot find backend %q of repository %q in backupconfiguration %q", repo.Backend, repo.Name, bc.Name)
}

// describeStorage describes a BackupStorage for the render context; a
// storage not among the inputs is only named.
func describeStorage(ns, name string, storages map[string]*storagev1alpha1.BackupStorage) render.Storage {
	out := render.Storage{Name: name, Namespace: ns}
	bs, ok := storages[ns+"/"+name]
	if !ok {
		return out
	}
	st := bs.Spec.Storage
	out.Provider = string(st.Provider)
	out.Brokered = bs.Brokered()
	switch {
	case st.S3 != nil:
		out.SecretName = st.S3.SecretName
	case st.GCS != nil:
		out.SecretName = st.GCS.SecretName
	case st.Azure != nil:
		out.SecretName = st.Azure.SecretName
	case st.Local != nil:
		out.Volumes = []corev1.Volume{{Name: "storage-local", VolumeSource: st.Local.VolumeSource}}
		out.VolumeMounts = []corev1.VolumeMount{{Name: "storage-local", MountPath: st.Local.MountPath, SubPath: st.Local.SubPath}}
	}
	return out
}

// listsVolumes says whether a task names the volumes it works on itself.
func listsVolumes(task corev1alpha1.TaskReference) bool {
	return task.TargetVolumes != nil && len(task.TargetVolumes.Volumes) > 0
}

// targetFor describes a target reference, whose empty namespace means ns,
// with the volumes a task reads or writes: those the task lists, or else
// the data volumes of the target's pod template with the mounts its
// containers use (or, when the task lists only volumeMounts, those
// mounts of them). A StatefulSet's claim templates are mounted too; which
// claims they are depends on the pod (see components).
func targetFor(ref *storagev1alpha1.TypedObjectReference, ns string, task corev1alpha1.TaskReference, workload *unstructured.Unstructured) (render.Target, error) {
	var t render.Target
	if ref != nil {
		t = render.Target{APIGroup: ref.APIGroup, Kind: ref.Kind, Name: ref.Name, Namespace: ref.Namespace}
		if t.Namespace == "" {
			t.Namespace = ns
		}
	}
	if tv := task.TargetVolumes; listsVolumes(task) {
		b, err := json.Marshal(tv.Volumes)
		if err != nil {
			return t, fmt.Errorf("cannot encode target volumes: %w", err)
		}
		if err := json.Unmarshal(b, &t.Volumes); err != nil {
			return t, fmt.Errorf("cannot decode target volumes: %w", err)
		}
		t.VolumeMounts = tv.VolumeMounts
		return t, nil
	}
	if !isTarget(t, workload) {
		return t, nil
	}
	tmpl, found, err := unstructured.NestedMap(workload.Object, "spec", "template", "spec")
	if err != nil || !found {
		return t, nil
	}
	spec := &corev1.PodSpec{}
	b, _ := json.Marshal(tmpl)
	if err := json.Unmarshal(b, spec); err != nil {
		return t, fmt.Errorf("cannot decode pod template of %s %q: %w", t.Kind, t.Name, err)
	}
	data := map[string]bool{}
	for _, v := range spec.Volumes {
		// Only volumes that hold the workload's data; Secrets, ConfigMaps
		// and projected volumes come from the cluster, not from backups.
		if v.PersistentVolumeClaim != nil || v.HostPath != nil || v.EmptyDir != nil || v.NFS != nil || v.CSI != nil || v.Ephemeral != nil {
			t.Volumes = append(t.Volumes, v)
			data[v.Name] = true
		}
	}
	for _, name := range claimTemplates(workload) {
		data[name] = true
	}
	if tv := task.TargetVolumes; tv != nil && len(tv.VolumeMounts) > 0 {
		// volumeMounts alone, as KubeStash's guides write them: the
		// template's data volumes they name, mounted where they say.
		for _, m := range tv.VolumeMounts {
			if !data[m.Name] {
				return t, fmt.Errorf("targetVolumes.volumeMounts: %q is not a data volume of %s %q; name one of its pod template's volumes or claim templates", m.Name, t.Kind, t.Name)
			}
		}
		t.VolumeMounts = tv.VolumeMounts
		return t, nil
	}
	seen := map[string]bool{}
	for _, c := range spec.Containers {
		for _, m := range c.VolumeMounts {
			if data[m.Name] && !seen[m.Name] {
				seen[m.Name] = true
				t.VolumeMounts = append(t.VolumeMounts, m)
			}
		}
	}
	return t, nil
}

// variables keeps the literal values of a task's variables for the
// template's context.variables. Values taken from a Secret or ConfigMap
// are never rendered: they reach the task's containers as environment
// variables (runtimeOf), resolved by the kubelet in the Job's namespace,
// so that no template can put them in a process's arguments or a status.
func variables(env []corev1.EnvVar) map[string]string {
	out := map[string]string{}
	for _, e := range env {
		if e.ValueFrom == nil {
			out[e.Name] = e.Value
		}
	}
	return out
}

// runtimeOf collects an addon reference's runtime settings: the
// jobTemplate's Job, pod and resource settings, then the container
// settings, whose resources win key by key, then the task's variables
// taken from a Secret or ConfigMap as the containers' environment (they
// win over containerRuntimeSettings.env of the same name: the task's
// setting is the narrower one).
func runtimeOf(a *corev1alpha1.AddonInfo, vars []corev1.EnvVar) render.Runtime {
	rt := addonRuntime(a)
	for _, v := range vars {
		if v.ValueFrom == nil {
			continue
		}
		env := rt.Container.Env[:0:0]
		for _, e := range rt.Container.Env {
			if e.Name != v.Name {
				env = append(env, e)
			}
		}
		rt.Container.Env = append(env, *v.DeepCopy())
	}
	return rt
}

// addonRuntime is runtimeOf without the task's variables.
func addonRuntime(a *corev1alpha1.AddonInfo) render.Runtime {
	var rt render.Runtime
	if t := a.JobTemplate; t != nil {
		rt.Pod = t.Spec.PodRuntimeSettings
		rt.PodLabels = t.Metadata.Labels
		rt.PodAnnotations = t.Metadata.Annotations
		rt.Container.Resources = *t.Spec.Resources.DeepCopy()
		rt.Job = render.JobSettings{BackoffLimit: t.BackoffLimit, ActiveDeadlineSeconds: t.ActiveDeadlineSeconds, TTLSecondsAfterFinished: t.TTLSecondsAfterFinished}
	}
	if c := a.ContainerRuntimeSettings; c != nil {
		rt.Container.Env = c.Env
		rt.Container.SecurityContext = c.SecurityContext
		rt.Container.Resources.Requests = mergeResources(rt.Container.Resources.Requests, c.Resources.Requests)
		rt.Container.Resources.Limits = mergeResources(rt.Container.Resources.Limits, c.Resources.Limits)
		rt.Container.Resources.Claims = append(rt.Container.Resources.Claims, c.Resources.Claims...)
	}
	return rt
}

// mergeResources sets over's quantities on base, key by key.
func mergeResources(base, over corev1.ResourceList) corev1.ResourceList {
	if len(over) == 0 {
		return base
	}
	out := corev1.ResourceList{}
	for k, q := range base {
		out[k] = q
	}
	for k, q := range over {
		out[k] = q
	}
	return out
}
