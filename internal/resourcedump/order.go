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
	"bytes"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// stashplaneGroup is the group of Stashplane's own kinds that a dump
// holds (BackupConfigurations): they come last, once what they protect
// exists.
const stashplaneGroup = "core.stashplane.io"

// tiers rank kinds in the order a cluster needs them: what others refer
// to first, workloads once everything they mount and run as exists.
var tiers = map[string]int{
	"/Namespace": 0,
	"apiextensions.k8s.io/CustomResourceDefinition": 0,
	"/ServiceAccount":                              1,
	"storage.k8s.io/StorageClass":                  1,
	"scheduling.k8s.io/PriorityClass":              1,
	"rbac.authorization.k8s.io/Role":               2,
	"rbac.authorization.k8s.io/ClusterRole":        2,
	"rbac.authorization.k8s.io/RoleBinding":        3,
	"rbac.authorization.k8s.io/ClusterRoleBinding": 3,
	"/Secret":                             4,
	"/ConfigMap":                          4,
	"/PersistentVolumeClaim":              5,
	"/Service":                            6,
	"networking.k8s.io/NetworkPolicy":     6,
	"networking.k8s.io/Ingress":           6,
	"apps/Deployment":                     8,
	"apps/StatefulSet":                    8,
	"apps/DaemonSet":                      8,
	"apps/ReplicaSet":                     8,
	"batch/Job":                           8,
	"batch/CronJob":                       8,
	"/Pod":                                8,
	"autoscaling/HorizontalPodAutoscaler": 8,
}

// otherTier is the rank of a kind not listed, custom resources among
// them: after Services, before workloads.
const otherTier = 7

// tier is u's rank; Stashplane's kinds come last.
func tier(u *unstructured.Unstructured) int {
	if u.GroupVersionKind().Group == stashplaneGroup {
		return 9
	}
	if t, ok := tiers[groupKind(u)]; ok {
		return t
	}
	return otherTier
}

// Order sorts objects into the order a cluster needs them, stable; within
// a rank by kind, namespace and name.
func Order(objs []*unstructured.Unstructured) {
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := objs[i], objs[j]
		if ta, tb := tier(a), tier(b); ta != tb {
			return ta < tb
		}
		if a.GetKind() != b.GetKind() {
			return a.GetKind() < b.GetKind()
		}
		if a.GetNamespace() != b.GetNamespace() {
			return a.GetNamespace() < b.GetNamespace()
		}
		return a.GetName() < b.GetName()
	})
}

// separator ends each document of a stream.
const separator = "---\n"

// Encode writes objects as a multi-document YAML stream, the same bytes
// for the same objects.
func Encode(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for _, u := range objs {
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, fmt.Errorf("cannot encode %s %q: %w", u.GetKind(), u.GetName(), err)
		}
		buf.WriteString(separator)
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// Decode reads a stream Encode wrote. A document that does not parse, or
// names no apiVersion, kind or name, is an error naming its place.
func Decode(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for i, doc := range splitDocuments(data) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		// Through JSON, so that numbers are integers as the API server
		// gave them.
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("cannot decode document %d of the resource manifests: %w", i, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, fmt.Errorf("cannot decode document %d of the resource manifests: %w", i, err)
		}
		if u.GetName() == "" {
			return nil, fmt.Errorf("cannot decode document %d of the resource manifests: it names no apiVersion, kind or name", i)
		}
		out = append(out, u)
	}
	return out, nil
}

// splitDocuments cuts a stream at its separator lines.
func splitDocuments(data []byte) []string {
	var docs []string
	var cur strings.Builder
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.TrimRight(line, "\r\n") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, cur.String())
}

// Retarget moves objects recorded in namespace from into namespace to:
// each namespaced object, the subjects of RoleBindings and
// ClusterRoleBindings that were in from, and a BackupConfiguration's
// target when it named from. References to other namespaces stay, and a
// BackupConfiguration's storage named without a namespace (from's) is
// named with from, so that it stays the same storage.
func Retarget(objs []*unstructured.Unstructured, from, to string) {
	// Objects of no namespace (cluster-scoped ones) are never moved into one.
	if from == to || from == "" {
		return
	}
	for _, u := range objs {
		if u.GetNamespace() == from {
			u.SetNamespace(to)
		}
		switch {
		case u.GroupVersionKind().Group == "rbac.authorization.k8s.io" && strings.HasSuffix(u.GetKind(), "Binding"):
			subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
			for i := range subjects {
				if s, ok := subjects[i].(map[string]any); ok && s["namespace"] == from {
					s["namespace"] = to
				}
			}
			if subjects != nil {
				_ = unstructured.SetNestedSlice(u.Object, subjects, "subjects")
			}
		case u.GroupVersionKind().Group == stashplaneGroup && u.GetKind() == "BackupConfiguration":
			if ns, _, _ := unstructured.NestedString(u.Object, "spec", "target", "namespace"); ns == from {
				_ = unstructured.SetNestedField(u.Object, to, "spec", "target", "namespace")
			}
			// A namespace dump's target is its own namespace.
			kind, _, _ := unstructured.NestedString(u.Object, "spec", "target", "kind")
			if name, _, _ := unstructured.NestedString(u.Object, "spec", "target", "name"); kind == "Namespace" && name == from {
				_ = unstructured.SetNestedField(u.Object, to, "spec", "target", "name")
			}
			// A storage named without a namespace was the configuration's
			// own namespace's: it stays the one it was.
			backends, _, _ := unstructured.NestedSlice(u.Object, "spec", "backends")
			for i := range backends {
				ref, ok := backends[i].(map[string]any)["storageRef"].(map[string]any)
				if ok && (ref["namespace"] == nil || ref["namespace"] == "") {
					ref["namespace"] = from
				}
			}
			if backends != nil {
				_ = unstructured.SetNestedSlice(u.Object, backends, "spec", "backends")
			}
		}
	}
}
