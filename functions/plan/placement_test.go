package plan

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestPodNodes(t *testing.T) {
	workload := func(kind string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "db"}}},
		}}
		u.SetAPIVersion("apps/v1")
		u.SetKind(kind)
		u.SetNamespace("demo")
		u.SetName("db")
		u.SetUID(types.UID("db-uid"))
		return u
	}
	pod := func(name, node, ownerKind, ownerName string, uid types.UID, mutate ...func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", Labels: map[string]string{"app": "db"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: ownerKind, Name: ownerName, UID: uid, Controller: ptr.To(true)}}},
			Spec:   corev1.PodSpec{NodeName: node},
			Status: corev1.PodStatus{Phase: corev1.PodRunning},
		}
		for _, m := range mutate {
			m(p)
		}
		return p
	}
	cases := map[string]struct {
		reason string
		kind   string
		pods   []client.Object
		want   map[string]string
	}{
		"StatefulSet": {
			reason: "Each scheduled, live pod the StatefulSet controls gives its node; pods of others, unscheduled and finished pods do not.",
			kind:   "StatefulSet",
			pods: []client.Object{
				pod("db-0", "node-a", "StatefulSet", "db", "db-uid"),
				pod("db-1", "node-b", "StatefulSet", "db", "db-uid"),
				pod("db-2", "", "StatefulSet", "db", "db-uid"),
				pod("db-3", "node-c", "StatefulSet", "db", "db-uid", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }),
				pod("impostor-0", "node-d", "StatefulSet", "db", "other-uid"),
			},
			want: map[string]string{"db-0": "node-a", "db-1": "node-b"},
		},
		"Deployment": {
			reason: "A Deployment's pods belong to its ReplicaSets, named after it.",
			kind:   "Deployment",
			pods: []client.Object{
				pod("db-7c9-x2", "node-a", "ReplicaSet", "db-7c9", "rs-uid"),
				pod("dbx-1-y", "node-b", "ReplicaSet", "dbx-1", "rs2-uid"),
			},
			want: map[string]string{"db-7c9-x2": "node-a"},
		},
		"ScaledToZero": {
			reason: "A workload without pods gives no node.",
			kind:   "StatefulSet",
			want:   map[string]string{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			api := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(tc.pods...).Build()
			got, err := PodNodes(context.Background(), api, workload(tc.kind))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\nPodNodes(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
