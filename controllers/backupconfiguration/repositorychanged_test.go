package backupconfiguration

import (
	"testing"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// TestRepositoryChanged shows which Repository updates reach the
// scheduler: what it reports on the configuration, not the Snapshot
// bookkeeping every backup changes.
func TestRepositoryChanged(t *testing.T) {
	base := func() *storagev1alpha1.Repository {
		r := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "app", Generation: 1, Labels: map[string]string{"a": "b"}}}
		r.Status.Phase = storagev1alpha1.RepositoryReady
		r.Status.SnapshotCount = ptr.To[int32](3)
		return r
	}
	cases := map[string]struct {
		reason string
		change func(*storagev1alpha1.Repository)
		want   bool
	}{
		"SnapshotCount": {"A new Snapshot counted is no news to the scheduler.", func(r *storagev1alpha1.Repository) { r.Status.SnapshotCount = ptr.To[int32](4) }, false},
		"RecentSnapshots": {"Nor is the list of recent Snapshots.", func(r *storagev1alpha1.Repository) {
			r.Status.RecentSnapshots = []storagev1alpha1.SnapshotInfo{{Name: "s"}}
		}, false},
		"Phase": {"The phase is reported on the configuration.", func(r *storagev1alpha1.Repository) { r.Status.Phase = storagev1alpha1.RepositoryNotReady }, true},
		"Initialized": {"So is why it is not initialized.", func(r *storagev1alpha1.Repository) {
			r.SetConditions(xpv2.Condition{Type: storagev1alpha1.TypeRepositoryInitialized, Status: corev1.ConditionFalse, Reason: "Failed", Message: "wrong password"})
		}, true},
		"Spec":     {"A changed spec may need the configuration's attention.", func(r *storagev1alpha1.Repository) { r.Generation = 2 }, true},
		"Labels":   {"Labels tie it to its configuration.", func(r *storagev1alpha1.Repository) { r.Labels = nil }, true},
		"Deletion": {"A Repository being deleted is remade or reported.", func(r *storagev1alpha1.Repository) { r.DeletionTimestamp = &metav1.Time{} }, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			n := base()
			tc.change(n)
			if got := repositoryChanged.Update(event.UpdateEvent{ObjectOld: base(), ObjectNew: n}); got != tc.want {
				t.Errorf("%s\nrepositoryChanged = %t, want %t", tc.reason, got, tc.want)
			}
		})
	}
}
