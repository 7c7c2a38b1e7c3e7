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

// Package resourcedump turns a workload and the objects it needs into
// resource manifests, and resource manifests back into objects: it
// collects and cleans them for a backup, encodes them as one YAML stream,
// and recreates them, possibly in another namespace, in the order a
// cluster needs, holding workloads without pods until their data is back.
package resourcedump

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// serverSetMetadata are the metadata fields the API server sets.
var serverSetMetadata = []string{
	"uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
	"deletionGracePeriodSeconds", "managedFields", "selfLink", "ownerReferences",
}

// serverSetAnnotations are annotations the API server or a controller
// writes, which would be wrong on a recreated object.
var serverSetAnnotations = []string{
	"kubectl.kubernetes.io/last-applied-configuration",
	"deployment.kubernetes.io/revision",
	"pv.kubernetes.io/bind-completed",
	"pv.kubernetes.io/bound-by-controller",
	"volume.beta.kubernetes.io/storage-provisioner",
	"volume.kubernetes.io/storage-provisioner",
	"volume.kubernetes.io/selected-node",
}

// Clean removes from u what the API server set, or what would not hold in
// another namespace or cluster: identity and bookkeeping metadata, owner
// references, status, a claim's bound volume, a Service's allocated IPs
// and node ports, a ServiceAccount's token Secrets.
func Clean(u *unstructured.Unstructured) {
	for _, f := range serverSetMetadata {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(u.Object, "status")
	if a := u.GetAnnotations(); a != nil {
		for _, k := range serverSetAnnotations {
			delete(a, k)
		}
		u.SetAnnotations(a)
		if len(a) == 0 {
			unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
		}
	}
	if l := u.GetLabels(); l != nil && len(l) == 0 {
		unstructured.RemoveNestedField(u.Object, "metadata", "labels")
	}
	switch groupKind(u) {
	case "/PersistentVolumeClaim":
		unstructured.RemoveNestedField(u.Object, "spec", "volumeName")
	case "/Service":
		if ip, _, _ := unstructured.NestedString(u.Object, "spec", "clusterIP"); ip != "None" {
			unstructured.RemoveNestedField(u.Object, "spec", "clusterIP")
			unstructured.RemoveNestedField(u.Object, "spec", "clusterIPs")
		}
		unstructured.RemoveNestedField(u.Object, "spec", "healthCheckNodePort")
		if ports, ok, _ := unstructured.NestedSlice(u.Object, "spec", "ports"); ok {
			for i := range ports {
				if p, ok := ports[i].(map[string]any); ok {
					delete(p, "nodePort")
				}
			}
			_ = unstructured.SetNestedSlice(u.Object, ports, "spec", "ports")
		}
	case "/ServiceAccount":
		unstructured.RemoveNestedField(u.Object, "secrets")
	}
}

// groupKind is "<group>/<kind>" of u; the core group is empty.
func groupKind(u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	return gvk.Group + "/" + gvk.Kind
}
