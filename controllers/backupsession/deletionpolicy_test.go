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

func TestEnsureSnapshotsTakeRepositoryDeletionPolicy(t *testing.T) {
	cases := map[string]struct {
		reason string
		repo   storagev1alpha1.DeletionPolicy
		want   storagev1alpha1.DeletionPolicy
	}{
		"WipeOut": {
			reason: "A Snapshot of a WipeOut Repository removes its data when deleted.",
			repo:   storagev1alpha1.DeletionPolicyWipeOut,
			want:   storagev1alpha1.DeletionPolicyWipeOut,
		},
		"Delete": {
			reason: "A Snapshot of a Delete Repository keeps its data when deleted.",
			repo:   storagev1alpha1.DeletionPolicyDelete,
			want:   storagev1alpha1.DeletionPolicyDelete,
		},
		"Unset": {
			reason: "A Repository without a policy (made before the default) gives Delete.",
			want:   storagev1alpha1.DeletionPolicyDelete,
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
			repo.Spec.DeletionPolicy = tc.repo
			kube := fake.NewClientBuilder().WithScheme(s).WithObjects(repo).WithStatusSubresource(&storagev1alpha1.Snapshot{}).Build()
			r := &reconciler{kube: kube, api: kube}
			bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "db-backup", Namespace: "demo"}}
			bc.Spec.Sessions = []corev1alpha1.Session{{Name: "nightly", Repositories: []corev1alpha1.RepositoryInfo{{Name: "db"}}}}
			bs := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: "db-backup-nightly-1", Namespace: "demo"}}
			bs.Spec.Session = "nightly"
			if _, err := r.ensureSnapshots(context.Background(), bs, bc, map[string]int{"db": 1}, nil); err != nil {
				t.Fatal(err)
			}
			got := &storagev1alpha1.Snapshot{}
			if err := kube.Get(context.Background(), client.ObjectKey{Namespace: "demo", Name: "db-db-backup-nightly-1"}, got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Spec.DeletionPolicy); diff != "" {
				t.Errorf("\n%s\ndeletionPolicy of the Snapshot: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
