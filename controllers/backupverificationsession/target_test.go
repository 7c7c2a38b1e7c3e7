package backupverificationsession

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// TestTargetInAnotherNamespace shows a verifier whose scratch target names
// another namespace refused before anything is looked up or made.
func TestTargetInAnotherNamespace(t *testing.T) {
	s := &corev1alpha1.BackupVerificationSession{ObjectMeta: metav1.ObjectMeta{Name: "app-nightly-1", Namespace: "team"}}
	v := &corev1alpha1.BackupVerifier{Spec: corev1alpha1.BackupVerifierSpec{RestoreOption: corev1alpha1.RestoreOption{
		Target: storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Namespace: "verify", Name: "scratch"},
	}}}
	// No client: the refusal comes before any lookup.
	got, msg, err := (&reconciler{}).target(context.Background(), s, v, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != nil {
		t.Errorf("target(...): got %+v, want no target", got)
	}
	if diff := cmp.Diff(`the verifier's target must be in the session's namespace "team"`, msg); diff != "" {
		t.Errorf("target(...): -want +got:\n%s", diff)
	}
}
