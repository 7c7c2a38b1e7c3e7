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
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestApplyDryRunBindings(t *testing.T) {
	role := func(name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role"}}
		u.SetNamespace("ns")
		u.SetName(name)
		return u
	}
	binding := func(name, roleKind, roleName string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
			"roleRef": map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": roleKind, "name": roleName},
		}}
		u.SetNamespace("ns")
		u.SetName(name)
		return u
	}
	// The server cannot resolve the Role of any binding: as for a Role a
	// dry run accepted, which does not exist.
	noRole := interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		if obj.GetObjectKind().GroupVersionKind().Kind == "RoleBinding" {
			return kerrors.NewNotFound(schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"}, obj.GetName())
		}
		return c.Create(ctx, obj, opts...)
	}}
	cases := map[string]struct {
		reason string
		objs   []*unstructured.Unstructured
		dryRun bool
		want   []Result
	}{
		"RoleOfTheDump": {
			reason: "A binding of a Role the same dry run accepted is accepted.",
			objs:   []*unstructured.Unstructured{role("reader"), binding("reader", "Role", "reader")},
			dryRun: true,
			want:   []Result{Created, Created},
		},
		"RoleNotInTheDump": {
			reason: "A binding of a Role the dump does not hold stays refused.",
			objs:   []*unstructured.Unstructured{role("reader"), binding("other", "Role", "other")},
			dryRun: true,
			want:   []Result{Created, Refused},
		},
		"ClusterRole": {
			reason: "A binding of a missing ClusterRole stays refused, even named as a Role of the dump.",
			objs:   []*unstructured.Unstructured{role("reader"), binding("reader", "ClusterRole", "reader")},
			dryRun: true,
			want:   []Result{Created, Refused},
		},
		"NotDryRun": {
			reason: "Outside a dry run a refused binding is refused.",
			objs:   []*unstructured.Unstructured{role("reader"), binding("reader", "Role", "reader")},
			want:   []Result{Created, Refused},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithInterceptorFuncs(noRole).Build()
			outcomes, _ := Apply(context.Background(), c, tc.objs, ApplyOptions{DryRun: tc.dryRun})
			var got []Result
			for _, oc := range outcomes {
				got = append(got, oc.Result)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nApply(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
