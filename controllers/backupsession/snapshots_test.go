package backupsession

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
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
			s := runtime.NewScheme()
			for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, corev1alpha1.AddToScheme, storagev1alpha1.AddToScheme} {
				if err := add(s); err != nil {
					t.Fatal(err)
				}
			}
			repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"}}
			kube := fake.NewClientBuilder().WithScheme(s).WithObjects(repo).WithStatusSubresource(&storagev1alpha1.Snapshot{}).Build()
			r := &reconciler{kube: kube, api: kube}
			bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "db-backup", Namespace: "demo"}}
			bc.Spec.Sessions = []corev1alpha1.Session{{Name: "nightly", Repositories: []corev1alpha1.RepositoryInfo{{Name: "db"}}}}
			bs := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: "db-backup-nightly-1", Namespace: "demo"}}
			bs.Spec.Session = "nightly"
			if _, err := r.ensureSnapshots(context.Background(), bs, bc, map[string]int{"db": len(tc.nodes)}, tc.nodes); err != nil {
				t.Fatal(err)
			}
			got := &storagev1alpha1.Snapshot{}
			if err := kube.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "db-db-backup-nightly-1"}, got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Annotations); diff != "" {
				t.Errorf("\n%s\nannotations of the Snapshot: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
