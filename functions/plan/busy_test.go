package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestRepositoryOfRun(t *testing.T) {
	type want struct {
		Key client.ObjectKey
		OK  bool
	}
	meta := metav1.ObjectMeta{Name: "x", Namespace: "apps"}
	cases := map[string]struct {
		reason string
		run    client.Object
		want   want
	}{
		"Snapshot": {reason: "A Snapshot's backup writes into its Repository.",
			run:  &storagev1alpha1.Snapshot{ObjectMeta: meta, Spec: storagev1alpha1.SnapshotSpec{Repository: "app"}},
			want: want{client.ObjectKey{Namespace: "apps", Name: "app"}, true}},
		"Restore": {reason: "A restore reads its source Repository, in its own namespace by default.",
			run:  &corev1alpha1.RestoreSession{ObjectMeta: meta, Spec: corev1alpha1.RestoreSessionSpec{DataSource: corev1alpha1.RestoreDataSource{Repository: "app"}}},
			want: want{client.ObjectKey{Namespace: "apps", Name: "app"}, true}},
		"RestoreFromElsewhere": {reason: "A restore from another namespace reads the Repository there.",
			run:  &corev1alpha1.RestoreSession{ObjectMeta: meta, Spec: corev1alpha1.RestoreSessionSpec{DataSource: corev1alpha1.RestoreDataSource{Namespace: "prod", Repository: "app"}}},
			want: want{client.ObjectKey{Namespace: "prod", Name: "app"}, true}},
		"PruneJob": {reason: "A prune Job names its Repository by label.",
			run:  &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "app-prune", Namespace: "apps", Labels: map[string]string{LabelPruneOf: "app"}}},
			want: want{client.ObjectKey{Namespace: "apps", Name: "app"}, true}},
		"OtherJob": {reason: "Any other Job is no run of a Repository.",
			run: &batchv1.Job{ObjectMeta: meta}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			key, ok := RepositoryOfRun(tc.run)
			if diff := cmp.Diff(tc.want, want{key, ok}); diff != "" {
				t.Errorf("%s\nRepositoryOfRun: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
