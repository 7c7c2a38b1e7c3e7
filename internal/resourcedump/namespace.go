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
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NamespaceResources are the resources a namespace dump holds, by the
// name kubectl gives them, in the order they are listed: what a workload
// needs to run and the workloads, the kinds a workload's dump holds, and
// what serves, shields and scales them (CronJobs, Ingresses,
// NetworkPolicies, PodDisruptionBudgets, HorizontalPodAutoscalers); a
// restore Job may recreate the same kinds (agentapi's object rules).
var NamespaceResources = []string{
	"serviceaccounts", "configmaps", "secrets", "services", "persistentvolumeclaims",
	"roles", "rolebindings", "deployments", "statefulsets", "daemonsets", "backupconfigurations",
	"cronjobs", "ingresses", "networkpolicies", "poddisruptionbudgets", "horizontalpodautoscalers",
}

// resourceKinds maps each of NamespaceResources to its group and kind.
var resourceKinds = map[string]schema.GroupKind{
	"serviceaccounts": {Kind: "ServiceAccount"}, "configmaps": {Kind: "ConfigMap"}, "secrets": {Kind: "Secret"},
	"services": {Kind: "Service"}, "persistentvolumeclaims": {Kind: "PersistentVolumeClaim"},
	"roles": {Group: "rbac.authorization.k8s.io", Kind: "Role"}, "rolebindings": {Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"},
	"deployments": {Group: "apps", Kind: "Deployment"}, "statefulsets": {Group: "apps", Kind: "StatefulSet"}, "daemonsets": {Group: "apps", Kind: "DaemonSet"},
	"backupconfigurations": {Group: stashplaneGroup, Kind: "BackupConfiguration"},
	"cronjobs":             {Group: "batch", Kind: "CronJob"},
	"ingresses":            {Group: "networking.k8s.io", Kind: "Ingress"}, "networkpolicies": {Group: "networking.k8s.io", Kind: "NetworkPolicy"},
	"poddisruptionbudgets": {Group: "policy", Kind: "PodDisruptionBudget"}, "horizontalpodautoscalers": {Group: "autoscaling", Kind: "HorizontalPodAutoscaler"},
}

// groupVersions are the versions a namespace dump reads its groups at; a
// group not listed is read at v1.
var groupVersions = map[string]string{stashplaneGroup: "v1alpha1", "autoscaling": "v2"}

// NamespaceFilter picks what a namespace dump holds: the resources of
// Include (all of NamespaceResources and of Custom when empty) but those
// of Exclude, and of those the objects whose labels Selector (kubectl's
// -l syntax) matches.
type NamespaceFilter struct {
	Include, Exclude []string
	Selector         string
	// Custom are the custom resources the cluster serves (DiscoverCustom),
	// which Include and Exclude may name as "plural.group"; the
	// namespaced ones are held unless excluded.
	Custom []CustomResource
}

// resources are the filter's resources in listing order, and the
// namespaced custom resources it picks after them, or an error naming one
// a namespace dump does not hold.
func (f NamespaceFilter) resources() ([]string, []CustomResource, error) {
	for _, r := range slices.Concat(f.Include, f.Exclude) {
		if _, ok := resourceKinds[r]; ok {
			continue
		}
		if cr, ok := customNamed(f.Custom, r); ok && cr.Namespaced {
			continue
		}
		var namespaced []CustomResource
		for _, cr := range f.Custom {
			if cr.Namespaced {
				namespaced = append(namespaced, cr)
			}
		}
		return nil, nil, fmt.Errorf("cannot dump resource %q: a namespace dump holds only %s, and the namespaced custom resources this cluster serves, named plural.group (%s)",
			r, strings.Join(NamespaceResources, ", "), customNames(namespaced))
	}
	picked := func(r string) bool {
		return (len(f.Include) == 0 || slices.Contains(f.Include, r)) && !slices.Contains(f.Exclude, r)
	}
	var out []string
	for _, r := range NamespaceResources {
		if picked(r) {
			out = append(out, r)
		}
	}
	var crs []CustomResource
	for _, cr := range f.Custom {
		if cr.Namespaced && picked(cr.Name) {
			crs = append(crs, cr)
		}
	}
	return out, crs, nil
}

// CollectNamespace reads the objects of namespace ns the filter picks.
// Left out, and listed: the ServiceAccount "default" (every namespace has
// it), what a workload's dump leaves out (token Secrets,
// kube-root-ca.crt, objects another controller made), and custom
// resources the account may not list unless the filter names them. The
// objects come cleaned and in restore Order.
func CollectNamespace(ctx context.Context, c client.Reader, ns string, f NamespaceFilter) ([]*unstructured.Unstructured, []Skipped, error) {
	resources, crs, err := f.resources()
	if err != nil {
		return nil, nil, err
	}
	sel, err := labels.Parse(f.Selector)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read label selector %q: %w", f.Selector, err)
	}
	col := &collector{ctx: ctx, c: c, ns: ns, objs: map[string]*unstructured.Unstructured{}}
	for _, r := range resources {
		gk := resourceKinds[r]
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(schema.GroupVersionKind{Group: gk.Group, Version: versionOf(gk.Group), Kind: gk.Kind + "List"})
		if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			return nil, nil, fmt.Errorf("cannot list %s: %w", r, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			if gk.Kind == "ServiceAccount" && u.GetName() == "default" {
				col.skipped = append(col.skipped, Skipped{Object: describe("ServiceAccount", ns, "default"), Reason: "every namespace has it"})
				continue
			}
			col.add(u)
		}
	}
	for _, cr := range crs {
		if err := col.listCustom(cr, slices.Contains(f.Include, cr.Name), client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
			return nil, nil, err
		}
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

// versionOf is the version a namespace dump reads a group's kinds at.
func versionOf(group string) string {
	if v, ok := groupVersions[group]; ok {
		return v
	}
	return "v1"
}
