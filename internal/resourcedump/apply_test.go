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
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
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

func TestApplyDryRunBeyondRights(t *testing.T) {
	role := func(name string, extra map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
			"rules": []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"secrets"}, "verbs": []any{"*"}}}}}
		for k, v := range extra {
			u.Object[k] = v
		}
		u.SetNamespace("ns")
		u.SetName(name)
		return u
	}
	gr := schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "roles"}
	refusals := map[string]error{
		"escalating": kerrors.NewForbidden(gr, "escalating", errors.New(`user "system:serviceaccount:ns:restore" (groups=["system:serviceaccounts"]) is attempting to grant RBAC permissions not currently held`)),
		"denied":     kerrors.NewForbidden(gr, "denied", errors.New(`User "system:serviceaccount:ns:restore" cannot create resource "roles" in API group "rbac.authorization.k8s.io" in the namespace "ns"`)),
		"webhook":    kerrors.NewForbidden(gr, "webhook", errors.New(`admission webhook "policy.example.com" denied the request: no wildcard verbs`)),
		"malformed":  kerrors.NewForbidden(gr, "malformed", errors.New(`user "x" is attempting to grant RBAC permissions not currently held`)),
	}
	refuse := interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		if err, ok := refusals[obj.GetName()]; ok {
			return err
		}
		return c.Create(ctx, obj, opts...)
	}}
	cases := map[string]struct {
		reason string
		obj    *unstructured.Unstructured
		dryRun bool
		want   Result
	}{
		"Escalating":   {reason: "A Role granting more than the account holds is checked against the schema and accepted.", obj: role("escalating", nil), dryRun: true, want: Created},
		"Denied":       {reason: "A kind the account may not create is checked against the schema and accepted.", obj: role("denied", nil), dryRun: true, want: Created},
		"Webhook":      {reason: "An admission webhook's refusal is about the object: refused.", obj: role("webhook", nil), dryRun: true, want: Refused},
		"Malformed":    {reason: "An object that does not match the schema stays refused.", obj: role("malformed", map[string]any{"ruels": []any{}}), dryRun: true, want: Refused},
		"NotADryRun":   {reason: "Outside a dry run, a refusal is a refusal.", obj: role("escalating", nil), want: Refused},
		"AcceptedAsIs": {reason: "What the server accepts is accepted.", obj: role("fine", nil), dryRun: true, want: Created},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithInterceptorFuncs(refuse).Build()
			outcomes, _ := Apply(context.Background(), c, []*unstructured.Unstructured{tc.obj}, ApplyOptions{DryRun: tc.dryRun})
			if diff := cmp.Diff(tc.want, outcomes[0].Result); diff != "" {
				t.Errorf("%s\nApply(...): -want +got:\n%s\n(message %q)", tc.reason, diff, outcomes[0].Message)
			}
		})
	}
}

// TestApplyOverwrite: what exists is kept unless Update says to replace
// it (a manifest-restore's overwriteResources).
func TestApplyOverwrite(t *testing.T) {
	cm := func(value string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"greeting": value}}}
		u.SetNamespace("ns")
		u.SetName("app-config")
		return u
	}
	cases := map[string]struct {
		reason    string
		update    bool
		want      Result
		wantValue string
	}{
		"Kept":     {reason: "Without Update an object that exists is kept as it is.", want: Kept, wantValue: "changed"},
		"Replaced": {reason: "With Update it is replaced by the dump's.", update: true, want: Updated, wantValue: "hello"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithObjects(cm("changed")).Build()
			outcomes, _ := Apply(context.Background(), c, []*unstructured.Unstructured{cm("hello")}, ApplyOptions{Update: tc.update})
			got := &unstructured.Unstructured{}
			got.SetAPIVersion("v1")
			got.SetKind("ConfigMap")
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "app-config"}, got); err != nil {
				t.Fatal(err)
			}
			value, _, _ := unstructured.NestedString(got.Object, "data", "greeting")
			if diff := cmp.Diff([]string{string(tc.want), tc.wantValue}, []string{string(outcomes[0].Result), value}); diff != "" {
				t.Errorf("%s\nApply(...): result and value: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
