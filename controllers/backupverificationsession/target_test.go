package backupverificationsession

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A scratch claim of a verifier whose target names another namespace is
// made there, labelled with the session's name and namespace (no owner
// reference can cross namespaces), and is the session's to remove.
func TestScratchInAnotherNamespace(t *testing.T) {
	ctx := context.Background()
	s := session("app-nightly-1", "snap-1", 0)
	v := verifier(0, 0, 1)
	v.Spec.RestoreOption.Target = storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Namespace: "verify", Name: "scratch"}
	r, kube, _ := newReconciler(t, t0, &s)
	got, msg, err := r.target(ctx, &s, v, &storagev1alpha1.Snapshot{})
	if err != nil || msg != "" {
		t.Fatalf("target(): %q, %v", msg, err)
	}
	name := naming.ScratchClaim("scratch", s.Name)
	if diff := cmp.Diff(&storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: name}, got); diff != "" {
		t.Errorf("target(): -want +got:\n%s", diff)
	}
	pvc := &corev1.PersistentVolumeClaim{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "verify", Name: name}, pvc); err != nil {
		t.Fatalf("the scratch claim is not in namespace verify: %v", err)
	}
	want := map[string]string{corev1alpha1.LabelBackupVerificationSession: s.Name, corev1alpha1.LabelBackupVerificationSessionNamespace: "default"}
	if diff := cmp.Diff(want, pvc.Labels); diff != "" || len(pvc.OwnerReferences) != 0 {
		t.Errorf("scratch claim labels -want +got:\n%s\nowners %v, want none", diff, pvc.OwnerReferences)
	}
	if !madeBy(pvc, &s) {
		t.Errorf("madeBy(): the session does not recognise its claim in namespace verify")
	}
	other := session("app-nightly-1", "snap-1", 0)
	other.Namespace = "elsewhere"
	if madeBy(pvc, &other) {
		t.Errorf("madeBy(): a session of the same name in another namespace claims the claim")
	}

	s.Status.RestoreSessionNamespace, s.Status.RestoreSession = "verify", s.Name
	if err := r.removeScratch(ctx, &s); err != nil {
		t.Fatal(err)
	}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(pvc), pvc); client.IgnoreNotFound(err) != nil || err == nil {
		t.Errorf("removeScratch(): the claim in namespace verify is still there (%v)", err)
	}
}
