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
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

// obj is an object from a YAML document, as Decode reads it.
func obj(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	objs, err := Decode([]byte(doc))
	if err != nil || len(objs) != 1 {
		t.Fatalf("Decode(%q): %d objects, %v", doc, len(objs), err)
	}
	return objs[0]
}

func TestClean(t *testing.T) {
	cases := map[string]struct {
		reason string
		in     string
		want   string
	}{
		"Metadata": {
			reason: "What the API server set goes; names, labels and the user's annotations stay.",
			in: `apiVersion: v1
kind: ConfigMap
metadata:
  name: app
  namespace: shop
  uid: 1b2c
  resourceVersion: "42"
  creationTimestamp: "2026-01-01T00:00:00Z"
  managedFields: [{manager: kubectl}]
  ownerReferences: [{kind: Thing, name: x}]
  labels: {app: shop}
  annotations: {team: blue, kubectl.kubernetes.io/last-applied-configuration: "{}"}
data: {k: v}
`,
			want: `apiVersion: v1
data:
  k: v
kind: ConfigMap
metadata:
  annotations:
    team: blue
  labels:
    app: shop
  name: app
  namespace: shop
`,
		},
		"Claim": {
			reason: "A claim forgets the volume it was bound to, so that a new cluster provisions one.",
			in: `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: shop, annotations: {pv.kubernetes.io/bind-completed: "yes"}}
spec: {volumeName: pvc-1, accessModes: [ReadWriteOnce]}
status: {phase: Bound}
`,
			want: `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: shop
spec:
  accessModes:
  - ReadWriteOnce
`,
		},
		"Service": {
			reason: "A Service forgets its allocated IPs and node ports.",
			in: `apiVersion: v1
kind: Service
metadata: {name: app, namespace: shop}
spec: {clusterIP: 10.0.0.7, clusterIPs: [10.0.0.7], ports: [{port: 80, nodePort: 30080}]}
`,
			want: `apiVersion: v1
kind: Service
metadata:
  name: app
  namespace: shop
spec:
  ports:
  - port: 80
`,
		},
		"HeadlessService": {
			reason: "A headless Service stays headless.",
			in: `apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {clusterIP: None}
`,
			want: `apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: shop
spec:
  clusterIP: None
`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			u := obj(t, tc.in)
			Clean(u)
			got, err := Encode([]*unstructured.Unstructured{u})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff("---\n"+tc.want, string(got)); diff != "" {
				t.Errorf("\n%s\nClean(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestOrder(t *testing.T) {
	var objs []*unstructured.Unstructured
	for _, d := range []string{
		"apiVersion: core.stashplane.io/v1alpha1\nkind: BackupConfiguration\nmetadata: {name: a, namespace: s}\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, namespace: s}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: s}\n",
		"apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: a, namespace: s}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: b, namespace: s}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: s}\n",
		"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: a, namespace: s}\n",
		"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: a, namespace: s}\n",
		"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: s}\n",
		"apiVersion: example.io/v1\nkind: Widget\nmetadata: {name: a, namespace: s}\n",
	} {
		objs = append(objs, obj(t, d))
	}
	Order(objs)
	var got []string
	for _, u := range objs {
		got = append(got, u.GetKind())
	}
	want := []string{"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Secret", "PersistentVolumeClaim", "Service", "Widget", "Deployment", "BackupConfiguration"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Order(): what others refer to comes first, workloads and their protection last: -want +got:\n%s", diff)
	}
}

func TestRetarget(t *testing.T) {
	binding := obj(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: r, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
subjects:
- {kind: ServiceAccount, name: app, namespace: shop}
- {kind: ServiceAccount, name: monitor, namespace: monitoring}
`)
	bc := obj(t, `apiVersion: core.stashplane.io/v1alpha1
kind: BackupConfiguration
metadata: {name: b, namespace: shop}
spec:
  target: {kind: Deployment, name: app, namespace: shop}
  backends: [{name: s, storageRef: {name: shared, namespace: platform}}, {name: own, storageRef: {name: local}}]
`)
	dump := obj(t, `apiVersion: core.stashplane.io/v1alpha1
kind: BackupConfiguration
metadata: {name: d, namespace: shop}
spec:
  target: {kind: Namespace, name: shop}
`)
	Retarget([]*unstructured.Unstructured{binding, bc, dump}, "shop", "shop-dr")
	if name, _, _ := unstructured.NestedString(dump.Object, "spec", "target", "name"); name != "shop-dr" {
		t.Errorf("Retarget(): a namespace dump's configuration targets namespace %q, want its new namespace shop-dr", name)
	}
	subjects, _, _ := unstructured.NestedSlice(binding.Object, "subjects")
	want := []any{
		map[string]any{"kind": "ServiceAccount", "name": "app", "namespace": "shop-dr"},
		map[string]any{"kind": "ServiceAccount", "name": "monitor", "namespace": "monitoring"},
	}
	if diff := cmp.Diff(want, subjects); diff != "" {
		t.Errorf("Retarget(): a subject of the namespace moves with it, one of another stays: -want +got:\n%s", diff)
	}
	target, _, _ := unstructured.NestedString(bc.Object, "spec", "target", "namespace")
	backends, _, _ := unstructured.NestedSlice(bc.Object, "spec", "backends")
	ref := func(i int) any { return backends[i].(map[string]any)["storageRef"].(map[string]any)["namespace"] }
	if target != "shop-dr" || bc.GetNamespace() != "shop-dr" || ref(0) != "platform" || ref(1) != "shop" {
		t.Errorf("Retarget(): configuration in %q targeting %q with storages in %q and %q; want shop-dr, shop-dr, platform and shop (the storage it had)", bc.GetNamespace(), target, ref(0), ref(1))
	}
}

func TestHoldAndClaims(t *testing.T) {
	cases := map[string]struct {
		reason     string
		in         string
		held       bool
		wantHeld   string
		wantClaims []string
	}{
		"StatefulSet": {
			reason: "A StatefulSet starts with no pod; its claims are those of the replicas it will have, from its ordinals' start.",
			in: `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  replicas: 2
  ordinals: {start: 3}
  selector: {matchLabels: {app: db}}
  volumeClaimTemplates: [{metadata: {name: data}, spec: {accessModes: [ReadWriteOnce]}}]
`,
			held: true, wantHeld: "2", wantClaims: []string{"data-db-3", "data-db-4"},
		},
		"DeploymentDefaultReplicas": {
			reason: "A Deployment without replicas gets one back.",
			in:     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, namespace: shop}\nspec: {}\n",
			held:   true, wantHeld: "1",
		},
		"DaemonSet": {
			reason: "A DaemonSet has no replicas: its pods select a node label no node has.",
			in:     "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, namespace: shop}\nspec: {template: {spec: {nodeSelector: {disk: ssd}}}}\n",
			held:   true,
		},
		"ConfigMap": {
			reason: "Other kinds are not held.",
			in:     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			u := obj(t, tc.in)
			if got := Hold(u); got != tc.held {
				t.Fatalf("\n%s\nHold() = %t, want %t", tc.reason, got, tc.held)
			}
			if got := u.GetAnnotations()[AnnotationHeldReplicas]; got != tc.wantHeld {
				t.Errorf("\n%s\nheld replicas %q, want %q", tc.reason, got, tc.wantHeld)
			}
			if u.GetKind() == "DaemonSet" {
				sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "template", "spec", "nodeSelector")
				if diff := cmp.Diff(map[string]string{"disk": "ssd", corev1alpha1.LabelHeld: "true"}, sel); diff != "" || u.GetAnnotations()[corev1alpha1.LabelHeld] != "true" {
					t.Errorf("\n%s\nheld DaemonSet's nodeSelector: -want +got:\n%s\nannotations %v", tc.reason, diff, u.GetAnnotations())
				}
				return
			}
			if r, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); tc.held && (!found || r != 0) {
				t.Errorf("\n%s\nheld object has replicas %d (set: %t), want 0", tc.reason, r, found)
			}
			if u.GetKind() != "StatefulSet" {
				return
			}
			claims, err := ClaimsFromTemplates(u)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range claims {
				got = append(got, c.GetName())
				if c.GetLabels()["app"] != "db" || c.GetNamespace() != "shop" {
					t.Errorf("claim %s: namespace %q, labels %v; want shop and the StatefulSet's selector", c.GetName(), c.GetNamespace(), c.GetLabels())
				}
			}
			if diff := cmp.Diff(tc.wantClaims, got); diff != "" {
				t.Errorf("\n%s\nClaimsFromTemplates(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	cases := map[string]struct {
		reason  string
		in      string
		want    int
		wantErr string
	}{
		"Stream": {
			reason: "Each document is one object; empty documents are passed over.",
			in:     "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n",
			want:   2,
		},
		"NoName": {
			reason:  "A document that names no object is refused, by its place.",
			in:      "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\n",
			wantErr: "cannot decode document 2 of the resource manifests: it names no apiVersion, kind or name",
		},
		"NotYAML": {
			reason:  "A document that does not parse is refused.",
			in:      "---\n{{{\n",
			wantErr: "cannot decode document 1 of the resource manifests",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Decode([]byte(tc.in))
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if tc.wantErr != "" && (len(gotErr) < len(tc.wantErr) || gotErr[:len(tc.wantErr)] != tc.wantErr) {
				t.Fatalf("\n%s\nDecode() error %q, want it to start with %q", tc.reason, gotErr, tc.wantErr)
			}
			if tc.wantErr == "" && (err != nil || len(got) != tc.want) {
				t.Fatalf("\n%s\nDecode(): %d objects, %v; want %d", tc.reason, len(got), err, tc.want)
			}
		})
	}
}
