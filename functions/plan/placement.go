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

package plan

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Pod placement: where the target's pods run decides where a Job that
// mounts their claims, or a DaemonSet's node data, must run. The plan
// itself reads only Inputs.PodNodes and Inputs.Nodes; the controllers fill
// them in with PodNodes and Nodes before planning.

// PodNodes are the nodes a workload's live pods run on, by pod name: the
// pods its selector matches that it controls (a Deployment through one of
// its ReplicaSets), scheduled, not finished and not being deleted. Read it
// straight from the API server: the controllers keep no cache of pods.
func PodNodes(ctx context.Context, api client.Reader, u *unstructured.Unstructured) (map[string]string, error) {
	sel := &metav1.LabelSelector{}
	if m, found, _ := unstructured.NestedMap(u.Object, "spec", "selector"); found {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, sel); err != nil {
			return nil, fmt.Errorf("cannot decode selector of %s %q: %w", u.GetKind(), u.GetName(), err)
		}
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, fmt.Errorf("cannot use selector of %s %q: %w", u.GetKind(), u.GetName(), err)
	}
	pods := &corev1.PodList{}
	if err := api.List(ctx, pods, client.InNamespace(u.GetNamespace()), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("cannot list pods of %s %q: %w", u.GetKind(), u.GetName(), err)
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		if !controlledBy(&p, u) || p.Spec.NodeName == "" || p.DeletionTimestamp != nil ||
			p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out[p.Name] = p.Spec.NodeName
	}
	return out, nil
}

// controlledBy says whether a pod belongs to the workload: its controller
// is the workload or, for a Deployment, one of the Deployment's
// ReplicaSets (named after it).
func controlledBy(p *corev1.Pod, u *unstructured.Unstructured) bool {
	owner := metav1.GetControllerOf(p)
	switch {
	case owner == nil:
		return false
	case owner.UID == u.GetUID():
		return true
	}
	return u.GetKind() == "Deployment" && owner.Kind == "ReplicaSet" && strings.HasPrefix(owner.Name, u.GetName()+"-")
}

// Nodes lists, in order and once each, the nodes pods run on.
func Nodes(podNodes map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range podNodes {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
