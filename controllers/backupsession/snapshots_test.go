package backupsession

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestEnsureSnapshotsRecordsNodes(t *testing.T) {
	cases := map[string]struct {
		reason string
		nodes  map[string]string
		want   map[string]string
	}{
		"DaemonSet": {
			reason: "The node of each component that lives on one is recorded on the new Snapshot.",
			nodes:  map[string]string{"dump-node-a": "node-a", "dump-ip-10-0-0-1-0f3a9c1b": "ip-10-0-0-1.eu-west-1.compute.internal.pool"},
			want:   map[string]string{storagev1alpha1.AnnotationComponentNodes: `{"dump-ip-10-0-0-1-0f3a9c1b":"ip-10-0-0-1.eu-west-1.compute.internal.pool","dump-node-a":"node-a"}`},
		},
		"NoNodes": {
			reason: "Components that live on no one node leave the Snapshot without the record.",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := ensureOneSnapshot(t, &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"}}, tc.nodes)
			if diff := cmp.Diff(tc.want, got.Annotations); diff != "" {
				t.Errorf("\n%s\nannotations of the Snapshot: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
