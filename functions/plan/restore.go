package plan

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

// Restore returns one render.Input per restore task and component of a
// RestoreSession. The Snapshot must already be resolved (a name, never
// "latest") and given in Inputs with its Repository; the target workload,
// when given, supplies the volumes the restore writes into.
func Restore(rs *corev1alpha1.RestoreSession, in Inputs) ([]render.Input, error) {
	if rs.Spec.Addon == nil {
		return nil, fmt.Errorf("cannot plan restoresession %q: no addon is set", rs.Name)
	}
	if in.Repository == nil || in.Snapshot == nil {
		return nil, fmt.Errorf("cannot plan restoresession %q: the repository and snapshot must be resolved first", rs.Name)
	}
	addon, err := in.Catalog.Addon(rs.Spec.Addon.Name)
	if err != nil {
		return nil, err
	}
	refs := rs.Spec.Addon.Tasks
	if len(refs) == 0 {
		// No task named: every restore task of the addon, with defaults,
		// but for those of a component the Snapshot lacks.
		for _, kt := range render.Tasks(addon) {
			if kt.Kind == render.TaskRestore && (kt.Task.Component == "" || slices.Contains(RestoreComponents(rs, in.Snapshot), kt.Task.Component)) {
				refs = append(refs, corev1alpha1.TaskReference{Name: kt.Task.Name})
			}
		}
		if len(refs) == 0 {
			return nil, fmt.Errorf("cannot plan restoresession %q: addon %q has no restore task", rs.Name, addon.Name)
		}
	}
	repo := in.Repository
	sns := repo.Spec.StorageRef.Namespace
	if sns == "" {
		sns = repo.Namespace
	}
	storage := describeStorage(sns, repo.Spec.StorageRef.Name, in.Storages)
	secret := repo.Spec.EncryptionSecret.Name
	if es := rs.Spec.DataSource.EncryptionSecret; es != nil && es.Name != "" {
		secret = es.Name
	}
	var out []render.Input
	names := RestoreComponents(rs, in.Snapshot)
	// The data components: those no task of a component of its own
	// restores. Only they share a claim and name nodes.
	var data []string
	for _, c := range names {
		if c != storagev1alpha1.ComponentManifest {
			data = append(data, c)
		}
	}
	for _, ref := range refs {
		task, err := render.FindTask(addon, render.TaskRestore, ref.Name)
		if err != nil {
			return nil, err
		}
		if task.Component != "" && !slices.Contains(names, task.Component) {
			return nil, fmt.Errorf("cannot plan task %q: snapshot %q has no %q component, so it holds no resource manifests to recreate objects from; back up with the addon's manifest-backup task, or leave task %q out",
				ref.Name, in.Snapshot.Name, task.Component, ref.Name)
		}
	}
	for _, component := range names {
		for _, ref := range refs {
			task, err := render.FindTask(addon, render.TaskRestore, ref.Name)
			if err != nil {
				return nil, err
			}
			if task.Component != component && (task.Component != "" || !slices.Contains(data, component)) {
				continue
			}
			if in.ObjectsOnly && task.Component == "" {
				continue
			}
			fn, err := in.Catalog.Function(task.Function)
			if err != nil {
				return nil, err
			}
			whole, err := restoreTargetOf(rs, ref, in.Target)
			if err != nil {
				return nil, err
			}
			target := whole
			if task.Component == "" {
				parts, err := components(whole, in.Target, listsVolumes(ref), restoreNodes(whole, in.Nodes, data, in.Snapshot), in.PodNodes)
				if err != nil {
					return nil, err
				}
				// Each component goes back where it came from: a
				// StatefulSet's pod's data into the claims of the same
				// ordinal, a DaemonSet's node's into the same node.
				if target, err = pick(parts, whole, component); err != nil {
					return nil, err
				}
				target.SubPath = claimSubPath(rs, data, component)
			}
			var params []byte
			if ref.Params != nil {
				params = ref.Params.Raw
			}
			out = append(out, render.Input{
				Addon: addon, TaskKind: render.TaskRestore, Task: ref.Name, Function: fn, Params: params,
				Context: render.Context{
					Namespace: rs.Namespace,
					Invoker:   render.ObjectRef{APIGroup: corev1alpha1.Group, Kind: "RestoreSession", Name: rs.Name},
					Session:   render.ObjectRef{APIGroup: corev1alpha1.Group, Kind: "RestoreSession", Name: rs.Name},
					Target:    target,
					Repository: render.Repository{
						Name: repo.Name, Namespace: repo.Namespace, Directory: repo.Spec.Path, EncryptionSecret: secret,
					},
					Storage:   storage,
					Snapshot:  in.Snapshot.Name,
					Component: component,
					Image:     in.Image,
					Variables: variables(ref.Variables),
					Runtime:   runtimeOf(rs.Spec.Addon, ref.Variables),
				},
			})
		}
	}
	return out, nil
}

// RestoreComponents are the components a RestoreSession restores: those it
// names, else every component the Snapshot recorded, else the one
// component a workload backup writes.
func RestoreComponents(rs *corev1alpha1.RestoreSession, snap *storagev1alpha1.Snapshot) []string {
	if len(rs.Spec.DataSource.Components) > 0 {
		return rs.Spec.DataSource.Components
	}
	var out []string
	if snap != nil {
		for name := range snap.Status.Components {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return []string{storagev1alpha1.ComponentDump}
	}
	sort.Strings(out)
	return out
}

// ComponentNodes are the nodes of the planned components that live on one
// node, by component, for storagev1alpha1.AnnotationComponentNodes; nil when none does.
func ComponentNodes(inputs []render.Input) map[string]string {
	var out map[string]string
	for _, in := range inputs {
		if t := in.Context.Target; t.Kind == "DaemonSet" && t.NodeName != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[in.Context.Component] = t.NodeName
		}
	}
	return out
}

// restoreNodes are the nodes a DaemonSet's components are restored on: the
// nodes given, else those the Snapshot recorded for them, else (a Snapshot
// made before nodes were recorded) those the components are named after.
func restoreNodes(t render.Target, nodes, components []string, snap *storagev1alpha1.Snapshot) []string {
	if len(nodes) > 0 || t.Kind != "DaemonSet" {
		return nodes
	}
	var recorded map[string]string
	if snap != nil {
		if v := snap.Annotations[storagev1alpha1.AnnotationComponentNodes]; v != "" {
			// An unreadable record leaves the names to go by.
			_ = json.Unmarshal([]byte(v), &recorded)
		}
	}
	var out []string
	for _, c := range components {
		if n := recorded[c]; n != "" {
			out = append(out, n)
		} else if n, ok := strings.CutPrefix(c, nodeComponentPrefix); ok && n != "" {
			out = append(out, n)
		}
	}
	return out
}

// restoreTargetOf describes a RestoreSession's target. A claim is its own
// volume: the restore writes into the claim, wherever a task mounts it.
func restoreTargetOf(rs *corev1alpha1.RestoreSession, ref corev1alpha1.TaskReference, workload *unstructured.Unstructured) (render.Target, error) {
	t, err := targetFor(rs.Spec.Target, rs.Namespace, ref, workload)
	if err != nil {
		return t, err
	}
	if rs.Spec.Target != nil && rs.Spec.Target.Kind == "PersistentVolumeClaim" && len(t.Volumes) == 0 {
		t.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: t.Name},
		}}}
	}
	return t, nil
}
