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
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	kubetesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestDiscoverCustom(t *testing.T) {
	all := []string{"get", "list", "watch", "create", "update", "delete"}
	d := &fakediscovery.FakeDiscovery{Fake: &kubetesting.Fake{Resources: []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "configmaps", Kind: "ConfigMap", Namespaced: true, Verbs: all}}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{{Name: "deployments", Kind: "Deployment", Namespaced: true, Verbs: all}}},
		{GroupVersion: "apiextensions.k8s.io/v1", APIResources: []metav1.APIResource{{Name: "customresourcedefinitions", Kind: "CustomResourceDefinition", Verbs: all}}},
		{GroupVersion: "storage.stashplane.io/v1alpha1", APIResources: []metav1.APIResource{{Name: "snapshots", Kind: "Snapshot", Namespaced: true, Verbs: all}}},
		{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
			{Name: "widgets", Kind: "Widget", Namespaced: true, Verbs: all},
			{Name: "widgets/status", Kind: "Widget", Namespaced: true, Verbs: []string{"get", "update"}},
			{Name: "regions", Kind: "Region", Verbs: all},
			{Name: "reviews", Kind: "Review", Namespaced: true, Verbs: []string{"create"}},
		}},
		{GroupVersion: "snapshot.storage.k8s.io/v1", APIResources: []metav1.APIResource{{Name: "volumesnapshots", Kind: "VolumeSnapshot", Namespaced: true, Verbs: all}}},
	}}}
	got, skipped, err := DiscoverCustom(d)
	if err != nil {
		t.Fatal(err)
	}
	want := []CustomResource{
		{Name: "regions.example.com", GVK: schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Region"}},
		{Name: "volumesnapshots.snapshot.storage.k8s.io", GVK: schema.GroupVersionKind{Group: "snapshot.storage.k8s.io", Version: "v1", Kind: "VolumeSnapshot"}, Namespaced: true},
		{Name: "widgets.example.com", GVK: schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}, Namespaced: true},
	}
	// Kubernetes' own kinds, Stashplane's, a subresource and a kind that
	// cannot be listed are not custom resources a dump holds; a CRD's kind
	// in a k8s.io group is.
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DiscoverCustom: -want +got:\n%s", diff)
	}
	if len(skipped) != 0 {
		t.Errorf("DiscoverCustom skipped %v", skipped)
	}
}

func TestCollectCustomResources(t *testing.T) {
	widgetGVK := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}
	regionGVK := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Region"}
	crs := []CustomResource{
		{Name: "regions.example.com", GVK: regionGVK},
		{Name: "widgets.example.com", GVK: widgetGVK, Namespaced: true},
	}
	obj := func(gvk schema.GroupVersionKind, ns, name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		u.SetNamespace(ns)
		u.SetName(name)
		_ = unstructured.SetNestedField(u.Object, "blue", "spec", "colour")
		return u
	}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(widgetGVK, meta.RESTScopeNamespace)
	mapper.Add(regionGVK, meta.RESTScopeRoot)
	for _, gvk := range []schema.GroupVersionKind{{Version: "v1", Kind: "ConfigMap"}, {Version: "v1", Kind: "ServiceAccount"}} {
		mapper.Add(gvk, meta.RESTScopeNamespace)
	}
	forbidWidgets := interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if u, ok := list.(*unstructured.UnstructuredList); ok && u.GetKind() == "WidgetList" {
			return kerrors.NewForbidden(schema.GroupResource{Group: "example.com", Resource: "widgets"}, "", nil)
		}
		return c.List(ctx, list, opts...)
	}}
	cases := map[string]struct {
		reason      string
		filter      NamespaceFilter
		forbidden   bool
		want        []string
		wantSkipped []string
		wantErr     string
	}{
		"HeldByDefault": {
			reason: "A namespace dump holds the namespace's custom resources beside the kinds it knows, after them.",
			filter: NamespaceFilter{Include: []string{"configmaps", "widgets.example.com"}, Custom: crs},
			want:   []string{"ConfigMap/prices", "Widget/blue"},
		},
		"AllKinds": {
			reason: "With no include list every namespaced custom resource is held; a cluster-scoped one is not a namespace's.",
			filter: NamespaceFilter{Exclude: []string{"backupconfigurations"}, Custom: crs},
			want:   []string{"ConfigMap/prices", "Widget/blue"},
		},
		"Excluded": {
			reason: "An excluded custom resource is not held.",
			filter: NamespaceFilter{Exclude: []string{"widgets.example.com", "backupconfigurations"}, Custom: crs},
			want:   []string{"ConfigMap/prices"},
		},
		"NotServed": {
			reason:  "A custom resource the cluster does not serve is refused, naming those it does.",
			filter:  NamespaceFilter{Include: []string{"gadgets.example.com"}, Custom: crs},
			wantErr: `cannot dump resource "gadgets.example.com": a namespace dump holds only serviceaccounts`,
		},
		"ClusterScopedInNamespace": {
			reason:  "A cluster-scoped custom resource named in a namespace dump is refused.",
			filter:  NamespaceFilter{Include: []string{"regions.example.com"}, Custom: crs},
			wantErr: `(widgets.example.com)`,
		},
		"ForbiddenLeftOut": {
			reason:      "Custom resources the account may not list are left out and listed when the filter does not name them.",
			filter:      NamespaceFilter{Exclude: []string{"backupconfigurations"}, Custom: crs},
			forbidden:   true,
			want:        []string{"ConfigMap/prices"},
			wantSkipped: []string{"ServiceAccount shop/default", "widgets.example.com in namespace shop"},
		},
		"ForbiddenNamed": {
			reason:    "A custom resource the filter names and the account may not list fails the dump.",
			filter:    NamespaceFilter{Include: []string{"widgets.example.com"}, Custom: crs},
			forbidden: true,
			wantErr:   "cannot list widgets.example.com",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithRESTMapper(mapper).WithObjects(
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "prices"}},
				&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "default"}},
				obj(widgetGVK, "shop", "blue"), obj(widgetGVK, "other", "red"), obj(regionGVK, "", "north"))
			if tc.forbidden {
				b = b.WithInterceptorFuncs(forbidWidgets)
			}
			got, skipped, err := CollectNamespace(context.Background(), b.Build(), "shop", tc.filter)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\nCollectNamespace: error %v, want one saying %q", tc.reason, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nCollectNamespace: %v", tc.reason, err)
			}
			var names, left []string
			for _, u := range got {
				names = append(names, u.GetKind()+"/"+u.GetName())
			}
			for _, s := range skipped {
				left = append(left, s.Object)
			}
			if diff := cmp.Diff(tc.want, names, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nCollectNamespace: -want +got:\n%s", tc.reason, diff)
			}
			if tc.wantSkipped != nil {
				if diff := cmp.Diff(tc.wantSkipped, left); diff != "" {
					t.Errorf("%s\nleft out: -want +got:\n%s", tc.reason, diff)
				}
			}
		})
	}
}

// TestCollectClusterRefusesVolumes: a dump of the cluster refuses
// PersistentVolumes by name, saying where a claim's data comes back from.
func TestCollectClusterRefusesVolumes(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).Build()
	_, _, err := CollectCluster(context.Background(), c, ClusterFilter{NamespaceFilter: NamespaceFilter{Include: []string{"persistentvolumes"}}})
	if err == nil || !strings.Contains(err.Error(), "data components") {
		t.Errorf("CollectCluster with persistentvolumes: error %v, want one saying the data comes back through the data components", err)
	}
}

// TestApplyUnservedKind: a custom resource whose kind no API serves is
// refused naming its missing definition, unless the same dry run accepted
// that definition, which it says.
func TestApplyUnservedKind(t *testing.T) {
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	crd.SetName("widgets.example.com")
	_ = unstructured.SetNestedField(crd.Object, "example.com", "spec", "group")
	_ = unstructured.SetNestedField(crd.Object, "Widget", "spec", "names", "kind")
	widget := &unstructured.Unstructured{}
	widget.SetAPIVersion("example.com/v1")
	widget.SetKind("Widget")
	widget.SetNamespace("shop")
	widget.SetName("blue")
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, meta.RESTScopeRoot)
	cases := map[string]struct {
		reason  string
		objs    []*unstructured.Unstructured
		want    []string
		wantMsg string
	}{
		"WithItsDefinition": {
			reason:  "A dry run that accepted the definition accepts the object unchecked, and says so.",
			objs:    []*unstructured.Unstructured{crd, widget},
			want:    []string{"CustomResourceDefinition/widgets.example.com=Created", "Widget/blue=Created"},
			wantMsg: "checked without its CustomResourceDefinition",
		},
		"WithoutItsDefinition": {
			reason:  "Without its definition the object is refused, naming what is missing.",
			objs:    []*unstructured.Unstructured{widget},
			want:    []string{"Widget/blue=Refused"},
			wantMsg: "no CustomResourceDefinition serves Widget.example.com",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			// The API server serves no Widget: the client finds no mapping.
			c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithRESTMapper(mapper).WithInterceptorFuncs(interceptor.Funcs{
				Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					if gvk := obj.GetObjectKind().GroupVersionKind(); gvk.Kind == "Widget" {
						return &meta.NoKindMatchError{GroupKind: gvk.GroupKind(), SearchedVersions: []string{gvk.Version}}
					}
					return c.Create(ctx, obj, opts...)
				},
			}).Build()
			outcomes, _ := Apply(context.Background(), c, tc.objs, ApplyOptions{DryRun: true})
			var got []string
			for _, oc := range outcomes {
				got = append(got, oc.Kind+"/"+oc.Name+"="+string(oc.Result))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nApply: -want +got:\n%s", tc.reason, diff)
			}
			if last := outcomes[len(outcomes)-1]; !strings.Contains(last.Message, tc.wantMsg) {
				t.Errorf("%s\nthe Widget's message %q does not say %q", tc.reason, last.Message, tc.wantMsg)
			}
		})
	}
}

// TestBeyondRightsCustom: a custom resource a verification's dry run may
// not make is checked against the schema of its CustomResourceDefinition,
// the one the dump carries: accepted, saying how, when it matches;
// refused, naming the field, when it does not.
func TestBeyondRightsCustom(t *testing.T) {
	crd := unstructuredFrom(t, map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "regions.example.com"},
		"spec": map[string]any{
			"group": "example.com", "scope": "Cluster",
			"names": map[string]any{"plural": "regions", "kind": "Region"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true, "schema": map[string]any{
				"openAPIV3Schema": map[string]any{"type": "object", "properties": map[string]any{
					"spec": map[string]any{"type": "object", "properties": map[string]any{"zones": map[string]any{"type": "integer"}}},
				}},
			}}},
		},
	})
	region := func(name string, zones any) *unstructured.Unstructured {
		return unstructuredFrom(t, map[string]any{
			"apiVersion": "example.com/v1", "kind": "Region", "metadata": map[string]any{"name": name},
			"spec": map[string]any{"zones": zones},
		})
	}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, meta.RESTScopeRoot)
	mapper.Add(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Region"}, meta.RESTScopeRoot)
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithRESTMapper(mapper).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if obj.GetObjectKind().GroupVersionKind().Kind == "Region" {
				return kerrors.NewForbidden(schema.GroupResource{Group: "example.com", Resource: "regions"}, obj.GetName(),
					errors.New(`User "verifier" cannot create resource "regions" in API group "example.com" at the cluster scope`))
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build()
	outcomes, _ := Apply(context.Background(), c, []*unstructured.Unstructured{crd, region("north", int64(3)), region("south", "many")}, ApplyOptions{DryRun: true})
	got := map[string]string{}
	for _, oc := range outcomes {
		got[oc.Name] = string(oc.Result)
	}
	if diff := cmp.Diff(map[string]string{"regions.example.com": "Created", "north": "Created", "south": "Refused"}, got); diff != "" {
		t.Errorf("Apply: -want +got:\n%s", diff)
	}
	for _, oc := range outcomes {
		switch {
		case oc.Name == "north" && !strings.Contains(oc.Message, "checked against its CustomResourceDefinition's schema only"):
			t.Errorf("the well formed Region's message %q does not say how it was checked", oc.Message)
		case oc.Name == "south" && !strings.Contains(oc.Message, "spec.zones"):
			t.Errorf("the ill formed Region's message %q does not name the field", oc.Message)
		}
	}
}

func unstructuredFrom(t *testing.T, obj map[string]any) *unstructured.Unstructured {
	t.Helper()
	return &unstructured.Unstructured{Object: obj}
}
