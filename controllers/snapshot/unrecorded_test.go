package snapshot

import (
	"context"
	"sort"
	"testing"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/stashplane/stashplane/apis"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A Repository that appears wakes its Snapshots whose record is not in the
// storage yet, and only those; and only its creation does.
func TestUnrecordedSnapshotsOf(t *testing.T) {
	sch := runtime.NewScheme()
	if err := apis.AddToScheme(sch); err != nil {
		t.Fatal(err)
	}
	snap := func(name, repo string, uploaded corev1.ConditionStatus) *storagev1alpha1.Snapshot {
		s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}, Spec: storagev1alpha1.SnapshotSpec{Repository: repo}}
		if uploaded != "" {
			s.SetConditions(xpv2.Condition{Type: storagev1alpha1.TypeSnapshotMetadataUploaded, Status: uploaded, Reason: "x"})
		}
		return s
	}
	kube := fake.NewClientBuilder().WithScheme(sch).
		WithIndex(&storagev1alpha1.Snapshot{}, storagev1alpha1.SnapshotRepositoryField, storagev1alpha1.SnapshotRepository).
		WithObjects(
			snap("recorded", "app", corev1.ConditionTrue),
			snap("refused", "app", corev1.ConditionFalse),
			snap("never-seen", "app", ""),
			snap("other-repository", "db", corev1.ConditionFalse),
		).Build()
	repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "demo"}}
	var got []string
	for _, r := range unrecordedSnapshotsOf(kube)(context.Background(), repo) {
		got = append(got, r.Name)
	}
	sort.Strings(got)
	if diff := cmp.Diff([]string{"never-seen", "refused"}, got); diff != "" {
		t.Errorf("Snapshots woken: -want +got:\n%s", diff)
	}
	events := map[string]bool{
		"create":  created.Create(event.CreateEvent{Object: repo}),
		"update":  created.Update(event.UpdateEvent{ObjectOld: repo, ObjectNew: repo}),
		"delete":  created.Delete(event.DeleteEvent{Object: repo}),
		"generic": created.Generic(event.GenericEvent{Object: repo}),
	}
	if diff := cmp.Diff(map[string]bool{"create": true, "update": false, "delete": false, "generic": false}, events); diff != "" {
		t.Errorf("events passed: -want +got:\n%s", diff)
	}
}
