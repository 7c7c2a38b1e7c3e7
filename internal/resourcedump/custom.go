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
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CustomResource is a kind of object an extension of the API serves (a
// CustomResourceDefinition's, mostly), which a dump holds beside the kinds
// it knows by name.
type CustomResource struct {
	// Name is kubectl's "plural.group", as includeResources names it.
	Name       string
	GVK        schema.GroupVersionKind
	Namespaced bool
}

// notCustomGroups are API groups that are not extensions of a cluster's
// own, though client-go's scheme lacks them: Kubernetes' own extension
// machinery and metrics, and Stashplane's groups, whose objects its
// controllers make (the BackupConfigurations a dump holds are listed by
// name).
var notCustomGroups = []string{
	"apiextensions.k8s.io", "apiregistration.k8s.io",
	"metrics.k8s.io", "custom.metrics.k8s.io", "external.metrics.k8s.io",
	"core.stashplane.io", "storage.stashplane.io", "addons.stashplane.io",
}

// custom says whether objects of group are custom resources: neither
// Kubernetes' own (client-go's scheme knows every built-in group) nor in
// notCustomGroups.
func custom(group string) bool {
	return group != "" && !clientgoscheme.Scheme.IsGroupRegistered(group) && !slices.Contains(notCustomGroups, group)
}

// DiscoverCustom lists the custom resources d's cluster serves that a
// dump can hold and a restore can make: each at its group's preferred
// version, with get, list and create, sorted by name. Groups whose
// discovery failed (an aggregated API that does not answer) are returned
// as Skipped, not as an error: the rest of the dump goes on.
func DiscoverCustom(d discovery.DiscoveryInterface) ([]CustomResource, []Skipped, error) {
	lists, err := discovery.ServerPreferredResources(d)
	var skipped []Skipped
	if err != nil {
		var failed *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &failed) {
			return nil, nil, fmt.Errorf("cannot discover the cluster's resources: %w", err)
		}
		for gv, gerr := range failed.Groups {
			if custom(gv.Group) {
				skipped = append(skipped, Skipped{Object: "the resources of " + gv.String(), Reason: "the API server could not list them: " + gerr.Error()})
			}
		}
	}
	var out []CustomResource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil || !custom(gv.Group) {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !sets.New(r.Verbs...).HasAll("get", "list", "create") {
				continue
			}
			out = append(out, CustomResource{Name: r.Name + "." + gv.Group, GVK: gv.WithKind(r.Kind), Namespaced: r.Namespaced})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	sort.Slice(skipped, func(i, j int) bool { return skipped[i].Object < skipped[j].Object })
	return out, skipped, nil
}

// customNamed finds the custom resource named name ("plural.group").
func customNamed(crs []CustomResource, name string) (CustomResource, bool) {
	for _, cr := range crs {
		if cr.Name == name {
			return cr, true
		}
	}
	return CustomResource{}, false
}

// customNames are the names of crs, for a message.
func customNames(crs []CustomResource) string {
	if len(crs) == 0 {
		return "none is served here"
	}
	names := make([]string, 0, len(crs))
	for _, cr := range crs {
		names = append(names, cr.Name)
	}
	return strings.Join(names, ", ")
}

// listCustom lists the objects of cr (in ns when it is namespaced) that
// the selector picks into col. When the account may not list them and the
// filter did not name cr, they are left out and listed, so that a dump
// by an account that reads only the kinds Stashplane knows still holds
// those; named, that is an error.
func (col *collector) listCustom(cr CustomResource, named bool, opts ...client.ListOption) error {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(cr.GVK.GroupVersion().WithKind(cr.GVK.Kind + "List"))
	err := col.c.List(col.ctx, list, opts...)
	switch {
	case kerrors.IsForbidden(err) && !named:
		where := "the cluster"
		if col.ns != "" {
			where = "namespace " + col.ns
		}
		col.skipped = append(col.skipped, Skipped{Object: cr.Name + " in " + where, Reason: "the Job's account may not list them: grant it get and list on them (a jobTemplate's serviceAccountName), or exclude the resource"})
		return nil
	case err != nil:
		return fmt.Errorf("cannot list %s: %w", cr.Name, err)
	}
	for i := range list.Items {
		col.add(&list.Items[i])
	}
	return nil
}
