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

// ClusterResources are the cluster-scoped resources a dump of the whole
// cluster holds besides the namespaces' objects, by kubectl's names: the
// Namespaces themselves, the cluster's RBAC, its StorageClasses and
// PriorityClasses, and the CustomResourceDefinitions (so that custom
// resources can be made again); the cluster-scoped custom resources come
// with them.
var ClusterResources = []string{"namespaces", "clusterroles", "clusterrolebindings", "storageclasses", "priorityclasses", "customresourcedefinitions"}

// clusterKinds maps each of ClusterResources to its group and kind.
var clusterKinds = map[string]schema.GroupKind{
	"namespaces":                {Kind: "Namespace"},
	"clusterroles":              {Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"},
	"clusterrolebindings":       {Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"},
	"storageclasses":            {Group: "storage.k8s.io", Kind: "StorageClass"},
	"priorityclasses":           {Group: "scheduling.k8s.io", Kind: "PriorityClass"},
	"customresourcedefinitions": {Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"},
}

// notDumped are resources a dump refuses to hold, with why.
var notDumped = map[string]string{
	"persistentvolumes": "a PersistentVolume names storage of the cluster it was made in; a claim's data comes back through the Snapshot's data components, into a volume the recreated claim is given",
}

// ClusterFilter picks what a dump of the whole cluster holds: in each
// namespace of IncludeNamespaces (all when empty) but those of
// ExcludeNamespaces, what the namespace filter picks; and, with
// ClusterResources, the cluster-scoped objects of ClusterResources the
// namespace filter's resource lists and selector pick, the Namespaces
// only for the namespaces dumped.
type ClusterFilter struct {
	NamespaceFilter
	IncludeNamespaces, ExcludeNamespaces []string
	ClusterResources                     bool
}

// CollectCluster reads the objects of the whole cluster the filter picks.
// Left out, and listed, besides what a namespace dump leaves out: the
// roles and bindings the API server makes for itself (named system:*, or
// labelled kubernetes.io/bootstrapping=rbac-defaults). The objects come
// cleaned and in restore Order, Namespaces first.
func CollectCluster(ctx context.Context, c client.Reader, f ClusterFilter) ([]*unstructured.Unstructured, []Skipped, error) {
	for _, r := range slices.Concat(f.Include, f.Exclude) {
		_, known := resourceKinds[r]
		_, cluster := clusterKinds[r]
		_, isCustom := customNamed(f.Custom, r)
		if why, ok := notDumped[r]; ok {
			return nil, nil, fmt.Errorf("cannot dump resource %q: %s", r, why)
		}
		if !known && !cluster && !isCustom {
			return nil, nil, fmt.Errorf("cannot dump resource %q: a dump of the cluster holds only %s, and the custom resources this cluster serves, named plural.group (%s)",
				r, strings.Join(slices.Concat(NamespaceResources, ClusterResources), ", "), customNames(f.Custom))
		}
	}
	nsFilter := f.NamespaceFilter
	nsFilter.Include = f.namespaced(f.Include)
	namespaces := &unstructured.UnstructuredList{}
	namespaces.SetGroupVersionKind(schema.GroupVersionKind{Version: "v1", Kind: "NamespaceList"})
	if err := c.List(ctx, namespaces); err != nil {
		return nil, nil, fmt.Errorf("cannot list namespaces: %w", err)
	}
	var out []*unstructured.Unstructured
	var skipped []Skipped
	dumped := map[string]bool{}
	for _, ns := range namespaces.Items {
		name := ns.GetName()
		if (len(f.IncludeNamespaces) > 0 && !slices.Contains(f.IncludeNamespaces, name)) || slices.Contains(f.ExcludeNamespaces, name) {
			continue
		}
		dumped[name] = true
		if len(f.Include) > 0 && len(nsFilter.Include) == 0 {
			continue
		}
		objs, left, err := CollectNamespace(ctx, c, name, nsFilter.withoutClusterResources())
		if err != nil {
			return nil, nil, fmt.Errorf("cannot dump namespace %q: %w", name, err)
		}
		out = append(out, objs...)
		skipped = append(skipped, left...)
	}
	if f.ClusterResources {
		objs, left, err := collectClusterScoped(ctx, c, f, dumped)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, objs...)
		skipped = append(skipped, left...)
	}
	Order(out)
	sort.SliceStable(skipped, func(i, j int) bool { return skipped[i].Object < skipped[j].Object })
	return out, skipped, nil
}

// withoutClusterResources is the filter with the cluster-scoped names
// taken out of its lists, which CollectNamespace refuses.
func (f NamespaceFilter) withoutClusterResources() NamespaceFilter {
	f.Exclude = f.namespaced(f.Exclude)
	return f
}

// namespaced are the names of names that are namespaced resources: of
// NamespaceResources, or namespaced custom resources.
func (f NamespaceFilter) namespaced(names []string) []string {
	var out []string
	for _, n := range names {
		_, known := resourceKinds[n]
		cr, isCustom := customNamed(f.Custom, n)
		if known || (isCustom && cr.Namespaced) {
			out = append(out, n)
		}
	}
	return out
}

// collectClusterScoped reads the cluster-scoped objects the filter picks;
// of the Namespaces, those dumped.
func collectClusterScoped(ctx context.Context, c client.Reader, f ClusterFilter, dumped map[string]bool) ([]*unstructured.Unstructured, []Skipped, error) {
	sel, err := labels.Parse(f.Selector)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read label selector %q: %w", f.Selector, err)
	}
	col := &collector{ctx: ctx, c: c, objs: map[string]*unstructured.Unstructured{}}
	for _, r := range ClusterResources {
		if (len(f.Include) > 0 && !slices.Contains(f.Include, r)) || slices.Contains(f.Exclude, r) {
			continue
		}
		gk := clusterKinds[r]
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(schema.GroupVersionKind{Group: gk.Group, Version: "v1", Kind: gk.Kind + "List"})
		if err := c.List(ctx, list, client.MatchingLabelsSelector{Selector: sel}); err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			return nil, nil, fmt.Errorf("cannot list %s: %w", r, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			switch {
			case gk.Kind == "Namespace" && !dumped[u.GetName()]:
				continue
			case gk.Group == "rbac.authorization.k8s.io" && (strings.HasPrefix(u.GetName(), "system:") || u.GetLabels()["kubernetes.io/bootstrapping"] == "rbac-defaults"),
				gk.Kind == "PriorityClass" && strings.HasPrefix(u.GetName(), "system-"):
				col.skipped = append(col.skipped, Skipped{Object: describe(gk.Kind, "", u.GetName()), Reason: "the API server makes it for itself"})
				continue
			case gk.Kind == "CustomResourceDefinition":
				if group, _, _ := unstructured.NestedString(u.Object, "spec", "group"); slices.Contains(notCustomGroups, group) {
					col.skipped = append(col.skipped, Skipped{Object: describe(gk.Kind, "", u.GetName()), Reason: "its kinds are not custom resources a dump holds: Stashplane's or Kubernetes' own, which their installation makes"})
					continue
				}
			}
			col.add(u)
		}
	}
	for _, cr := range f.Custom {
		if cr.Namespaced || (len(f.Include) > 0 && !slices.Contains(f.Include, cr.Name)) || slices.Contains(f.Exclude, cr.Name) {
			continue
		}
		if err := col.listCustom(cr, slices.Contains(f.Include, cr.Name), client.MatchingLabelsSelector{Selector: sel}); err != nil {
			return nil, nil, err
		}
	}
	out := make([]*unstructured.Unstructured, 0, len(col.objs))
	for _, u := range col.objs {
		Clean(u)
		out = append(out, u)
	}
	return out, col.skipped, nil
}
