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
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

func TestCollectNamespace(t *testing.T) {
	meta := func(ns, name string, l map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l}
	}
	team := map[string]string{"team": "blue"}
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: meta("shop", "default", nil)},
		&corev1.ServiceAccount{ObjectMeta: meta("shop", "app-sa", team)},
		&corev1.ConfigMap{ObjectMeta: meta("shop", "kube-root-ca.crt", nil)},
		&corev1.ConfigMap{ObjectMeta: meta("shop", "app-config", team)},
		&corev1.Secret{ObjectMeta: meta("shop", "app-secret", nil), Data: map[string][]byte{"k": []byte("v")}},
		&corev1.Service{ObjectMeta: meta("shop", "app", team)},
		&appsv1.Deployment{ObjectMeta: meta("shop", "app", team)},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "made", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "example.com/v1", Kind: "Thing", Name: "x", UID: "1", Controller: ptr.To(true)}}}},
		&corev1.ConfigMap{ObjectMeta: meta("other", "elsewhere", team)},
		&batchv1.CronJob{ObjectMeta: meta("shop", "nightly", team)},
		&networkingv1.Ingress{ObjectMeta: meta("shop", "app", nil)},
		&networkingv1.NetworkPolicy{ObjectMeta: meta("shop", "deny", nil)},
		&policyv1.PodDisruptionBudget{ObjectMeta: meta("shop", "app", nil)},
		&autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: meta("shop", "app", team)},
	}
	noConfigs := []string{"backupconfigurations"}
	cases := map[string]struct {
		reason  string
		filter  NamespaceFilter
		want    []string
		wantErr string
	}{
		"All": {
			reason: "Every object of the namespace but what a dump leaves out, in restore order.",
			filter: NamespaceFilter{Exclude: noConfigs},
			want: []string{"ServiceAccount/app-sa", "ConfigMap/app-config", "Secret/app-secret", "Ingress/app", "NetworkPolicy/deny", "Service/app",
				"PodDisruptionBudget/app", "CronJob/nightly", "Deployment/app", "HorizontalPodAutoscaler/app"},
		},
		"Include": {
			reason: "Only the resources included.",
			filter: NamespaceFilter{Include: []string{"configmaps", "deployments"}},
			want:   []string{"ConfigMap/app-config", "Deployment/app"},
		},
		"Selector": {
			reason: "Only the objects the selector matches.",
			filter: NamespaceFilter{Exclude: noConfigs, Selector: "team=blue"},
			want:   []string{"ServiceAccount/app-sa", "ConfigMap/app-config", "Service/app", "CronJob/nightly", "Deployment/app", "HorizontalPodAutoscaler/app"},
		},
		"BadSelector": {
			reason:  "A selector that does not parse is refused.",
			filter:  NamespaceFilter{Selector: "team in (blue"},
			wantErr: "cannot read label selector",
		},
		"Unknown": {
			reason:  "A resource a namespace dump does not hold is refused, by name.",
			filter:  NamespaceFilter{Include: []string{"pods"}},
			wantErr: `cannot dump resource "pods"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).Build()
			got, _, err := CollectNamespace(context.Background(), c, "shop", tc.filter)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\nCollectNamespace: error %v, want one saying %q", tc.reason, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nCollectNamespace: %v", tc.reason, err)
			}
			var names []string
			for _, u := range got {
				names = append(names, u.GetKind()+"/"+u.GetName())
			}
			if diff := cmp.Diff(tc.want, names, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nCollectNamespace: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestHoldAndReleaseCronJob: a recreated CronJob is suspended until the
// restore's data is back, then given the suspension it was backed up with.
func TestHoldAndReleaseCronJob(t *testing.T) {
	cases := map[string]struct {
		reason    string
		suspended bool
	}{
		"Running":   {reason: "A CronJob that ran is suspended while held and runs again once released."},
		"Suspended": {reason: "A CronJob backed up suspended stays suspended once released.", suspended: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "nightly"}, Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", Suspend: ptr.To(tc.suspended)}}
			raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cj)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: raw}
			u.SetAPIVersion("batch/v1")
			u.SetKind("CronJob")
			if !Hold(u) {
				t.Fatalf("%s\nHold() = false for a CronJob", tc.reason)
			}
			if s, _, _ := unstructured.NestedBool(u.Object, "spec", "suspend"); !s {
				t.Errorf("%s\nheld CronJob is not suspended", tc.reason)
			}
			c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(u).Build()
			if err := Release(ctx, c, []*unstructured.Unstructured{u}); err != nil {
				t.Fatal(err)
			}
			got := &batchv1.CronJob{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(cj), got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.suspended, ptr.Deref(got.Spec.Suspend, false)); diff != "" {
				t.Errorf("%s\nreleased CronJob's suspend: -want +got:\n%s", tc.reason, diff)
			}
			if _, ok := got.Annotations[corev1alpha1.LabelHeld]; ok {
				t.Errorf("%s\nreleased CronJob keeps annotation %s", tc.reason, corev1alpha1.LabelHeld)
			}
		})
	}
}
