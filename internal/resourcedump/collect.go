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

package resourcedump

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Ref names a workload: its API group ("apps", or "" for a
// PersistentVolumeClaim), kind, name and namespace.
type Ref struct{ APIGroup, Kind, Name, Namespace string }

// Skipped is an object a dump leaves out, with why.
type Skipped struct{ Object, Reason string }

// collector gathers the objects of one namespace, each once.
type collector struct {
	ctx     context.Context
	c       client.Reader
	ns      string
	objs    map[string]*unstructured.Unstructured
	skipped []Skipped
}

// key names an object within the dump.
func key(u *unstructured.Unstructured) string {
	return groupKind(u) + " " + u.GetNamespace() + "/" + u.GetName()
}

// describe names an object for a person: "Kind namespace/name".
func describe(kind, ns, name string) string { return kind + " " + ns + "/" + name }

// CollectWorkload reads the workload ref and what it needs to run, in its
// namespace: its ServiceAccount (not "default", which every namespace
// has), the ConfigMaps and Secrets it reads, the Services that select its
// pods (and a StatefulSet's governing Service), the claims its pods
// mount, the RoleBindings naming its ServiceAccount with their Roles, and
// the BackupConfigurations that protect it. Token Secrets,
// kube-root-ca.crt and objects another controller made are left out and
// listed. The objects come cleaned (Clean) and in restore Order; an object
// referred to that does not exist is not an error.
func CollectWorkload(ctx context.Context, c client.Reader, ref Ref) ([]*unstructured.Unstructured, []Skipped, error) {
	col := &collector{ctx: ctx, c: c, ns: ref.Namespace, objs: map[string]*unstructured.Unstructured{}}
	w := &unstructured.Unstructured{}
	w.SetGroupVersionKind(schema.GroupVersionKind{Group: ref.APIGroup, Version: "v1", Kind: ref.Kind})
	if err := c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, w); err != nil {
		return nil, nil, fmt.Errorf("cannot get %s %q: %w", ref.Kind, ref.Name, err)
	}
	col.objs[key(w)] = w
	if ref.Kind != "PersistentVolumeClaim" {
		if err := col.podTemplate(w); err != nil {
			return nil, nil, err
		}
	}
	if err := col.configurations(ref); err != nil {
		return nil, nil, err
	}
	out := make([]*unstructured.Unstructured, 0, len(col.objs))
	for _, u := range col.objs {
		Clean(u)
		out = append(out, u)
	}
	Order(out)
	sort.SliceStable(col.skipped, func(i, j int) bool { return col.skipped[i].Object < col.skipped[j].Object })
	return out, col.skipped, nil
}

// podTemplate collects what the workload's pod template refers to.
func (col *collector) podTemplate(w *unstructured.Unstructured) error {
	raw, found, err := unstructured.NestedMap(w.Object, "spec", "template")
	if err != nil || !found {
		return err
	}
	tpl := &corev1.PodTemplateSpec{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, tpl); err != nil {
		return fmt.Errorf("cannot read the pod template of %s %q: %w", w.GetKind(), w.GetName(), err)
	}
	spec := tpl.Spec
	sa := spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	if sa == "default" {
		col.skipped = append(col.skipped, Skipped{Object: describe("ServiceAccount", col.ns, sa), Reason: "every namespace has it"})
	} else if err := col.get("", "ServiceAccount", sa); err != nil {
		return err
	}
	for _, name := range configMapsOf(spec) {
		if err := col.get("", "ConfigMap", name); err != nil {
			return err
		}
	}
	for _, name := range secretsOf(spec) {
		if err := col.get("", "Secret", name); err != nil {
			return err
		}
	}
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			if err := col.get("", "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName); err != nil {
				return err
			}
		}
	}
	if err := col.services(w, tpl.Labels); err != nil {
		return err
	}
	if sa != "default" {
		return col.rbac(sa)
	}
	return nil
}

// configMapsOf are the ConfigMaps a pod spec reads, sorted, each once.
func configMapsOf(s corev1.PodSpec) []string {
	set := map[string]bool{}
	for _, v := range s.Volumes {
		if v.ConfigMap != nil {
			set[v.ConfigMap.Name] = true
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.ConfigMap != nil {
					set[src.ConfigMap.Name] = true
				}
			}
		}
	}
	for _, ctr := range containersOf(s) {
		for _, e := range ctr.EnvFrom {
			if e.ConfigMapRef != nil {
				set[e.ConfigMapRef.Name] = true
			}
		}
		for _, e := range ctr.Env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				set[e.ValueFrom.ConfigMapKeyRef.Name] = true
			}
		}
	}
	return sortedSet(set)
}

// secretsOf are the Secrets a pod spec reads, sorted, each once.
func secretsOf(s corev1.PodSpec) []string {
	set := map[string]bool{}
	for _, v := range s.Volumes {
		if v.Secret != nil {
			set[v.Secret.SecretName] = true
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					set[src.Secret.Name] = true
				}
			}
		}
	}
	for _, ctr := range containersOf(s) {
		for _, e := range ctr.EnvFrom {
			if e.SecretRef != nil {
				set[e.SecretRef.Name] = true
			}
		}
		for _, e := range ctr.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				set[e.ValueFrom.SecretKeyRef.Name] = true
			}
		}
	}
	for _, p := range s.ImagePullSecrets {
		set[p.Name] = true
	}
	return sortedSet(set)
}

// containersOf are a pod spec's init and main containers.
func containersOf(s corev1.PodSpec) []corev1.Container {
	return append(append([]corev1.Container(nil), s.InitContainers...), s.Containers...)
}

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		if k != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// services collects the Services whose selector picks the pod template's
// labels, and a StatefulSet's governing Service.
func (col *collector) services(w *unstructured.Unstructured, podLabels map[string]string) error {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "ServiceList"})
	if err := col.c.List(col.ctx, list, client.InNamespace(col.ns)); err != nil {
		return fmt.Errorf("cannot list services: %w", err)
	}
	governing, _, _ := unstructured.NestedString(w.Object, "spec", "serviceName")
	for i := range list.Items {
		s := &list.Items[i]
		sel, _, _ := unstructured.NestedStringMap(s.Object, "spec", "selector")
		if (len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(podLabels))) || (governing != "" && s.GetName() == governing) {
			col.add(s)
		}
	}
	return nil
}

// rbac collects the RoleBindings of the namespace that name the
// ServiceAccount sa, and the Roles they bind.
func (col *collector) rbac(sa string) error {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBindingList"})
	if err := col.c.List(col.ctx, list, client.InNamespace(col.ns)); err != nil {
		return fmt.Errorf("cannot list rolebindings: %w", err)
	}
	for i := range list.Items {
		b := &list.Items[i]
		if !names(b, sa, col.ns) {
			continue
		}
		if !col.add(b) {
			continue
		}
		kind, _, _ := unstructured.NestedString(b.Object, "roleRef", "kind")
		role, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
		if kind != "Role" {
			col.skipped = append(col.skipped, Skipped{Object: describe(kind, "", role),
				Reason: fmt.Sprintf("cluster-scoped: rolebinding %q refers to it, and the cluster must hold it", b.GetName())})
			continue
		}
		if err := col.get("rbac.authorization.k8s.io", "Role", role); err != nil {
			return err
		}
	}
	return nil
}

// names says whether a binding's subjects include the ServiceAccount sa of
// namespace ns.
func names(b *unstructured.Unstructured, sa, ns string) bool {
	subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
	for _, s := range subjects {
		m, ok := s.(map[string]any)
		if !ok || m["kind"] != "ServiceAccount" || m["name"] != sa {
			continue
		}
		if sns, _ := m["namespace"].(string); sns == "" || sns == ns {
			return true
		}
	}
	return false
}

// configurations collects the BackupConfigurations that target the
// workload, so that its protection resumes after a restore.
func (col *collector) configurations(ref Ref) error {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(schema.GroupVersionKind{Group: stashplaneGroup, Version: "v1alpha1", Kind: "BackupConfigurationList"})
	if err := col.c.List(col.ctx, list, client.InNamespace(col.ns)); err != nil {
		if meta.IsNoMatchError(err) {
			return nil
		}
		return fmt.Errorf("cannot list backupconfigurations: %w", err)
	}
	for i := range list.Items {
		bc := &list.Items[i]
		t, _, _ := unstructured.NestedStringMap(bc.Object, "spec", "target")
		if t["kind"] == ref.Kind && t["name"] == ref.Name && (t["namespace"] == "" || t["namespace"] == ref.Namespace) {
			col.add(bc)
		}
	}
	return nil
}

// get collects the object of kind and name in the namespace; one that does
// not exist is passed over (a reference may be optional).
func (col *collector) get(group, kind, name string) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: "v1", Kind: kind})
	err := col.c.Get(col.ctx, client.ObjectKey{Namespace: col.ns, Name: name}, u)
	if kerrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot get %s %q: %w", kind, name, err)
	}
	col.add(u)
	return nil
}

// add keeps u unless it is one a dump leaves out, which is listed; it says
// whether u was kept.
func (col *collector) add(u *unstructured.Unstructured) bool {
	if why := leftOut(u); why != "" {
		col.skipped = append(col.skipped, Skipped{Object: describe(u.GetKind(), u.GetNamespace(), u.GetName()), Reason: why})
		return false
	}
	col.objs[key(u)] = u.DeepCopy()
	return true
}

// leftOut says why an object is not dumped: it is made by the cluster or
// by a controller that makes it again.
func leftOut(u *unstructured.Unstructured) string {
	switch groupKind(u) {
	case "/Secret":
		if t, _, _ := unstructured.NestedString(u.Object, "type"); t == string(corev1.SecretTypeServiceAccountToken) {
			return "a ServiceAccount token, which the cluster makes"
		}
	case "/ConfigMap":
		if u.GetName() == "kube-root-ca.crt" {
			return "the cluster's CA bundle, which every namespace gets"
		}
	case "/Service":
		if u.GetNamespace() == "default" && u.GetName() == "kubernetes" {
			return "the API server's own Service, which every cluster has"
		}
	}
	if owner := metav1.GetControllerOfNoCopy(u); owner != nil {
		return fmt.Sprintf("made by its controller, %s %q", owner.Kind, owner.Name)
	}
	return ""
}
