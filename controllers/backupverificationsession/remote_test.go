package backupverificationsession

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A verifier may restore into a scratch target of another namespace, as
// KubeStash's verification guide writes it, when the storage admits that
// namespace and it holds the repository's password; otherwise the session
// is refused before anything is made, naming the field and what to do.
func TestCheckRemote(t *testing.T) {
	repo := &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"},
		Spec: storagev1alpha1.RepositorySpec{StorageRef: storagev1alpha1.ObjectReference{Name: "s3"},
			EncryptionSecret: storagev1alpha1.ObjectReference{Name: "app-pw"}},
	}
	storage := func(policy *storagev1alpha1.UsagePolicy) *storagev1alpha1.BackupStorage {
		return &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "s3", Namespace: "default"},
			Spec: storagev1alpha1.BackupStorageSpec{UsagePolicy: policy}}
	}
	all := &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromAll)}}
	password := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-pw", Namespace: "verify"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte("x")}}
	verifyNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "verify"}}
	cases := map[string]struct {
		reason string
		ns     string
		kind   corev1alpha1.VerificationType
		noRepo bool
		objs   []client.Object
		want   stop
	}{
		"SameNamespace": {
			reason: "A target in the session's namespace needs none of this.",
			ns:     "default",
		},
		"Admitted": {
			reason: "A storage that admits the namespace and a password Secret there let the verification run.",
			ns:     "verify",
			objs:   []client.Object{storage(all), password, verifyNS},
		},
		"QueryElsewhere": {
			reason: "A Query verifier's Job runs beside the session, so its target must be there.",
			ns:     "verify",
			kind:   corev1alpha1.VerificationQuery,
			objs:   []client.Object{storage(all), password, verifyNS},
			want: refused(`spec.restoreOption.target.namespace "verify": a Query verifier restores into the session's namespace "default" ` +
				`(its verifier Job runs there); only a RestoreOnly verifier restores into another namespace`),
		},
		"NotAdmitted": {
			reason: "A storage whose usage policy admits only its own namespace refuses the verification.",
			ns:     "verify",
			objs:   []client.Object{storage(nil), password, verifyNS},
			want: refused(`spec.restoreOption.target.namespace "verify": backupstorage default/s3 may not be used from namespace "verify": ` +
				`its usagePolicy allows only namespace "default"`),
		},
		"NoPassword": {
			reason: "Without the password in the target namespace the restore could not decrypt; the Repository's own Secret is never copied.",
			ns:     "verify",
			objs:   []client.Object{storage(all), verifyNS},
			want: refused(`spec.restoreOption.target.namespace "verify": restoring there needs a Secret "app-pw" in namespace "verify" holding RESTIC_PASSWORD, ` +
				`the password of repository "app" (the repository's own Secret is never copied out of namespace "default")`),
		},
		"NoStorage": {
			reason: "A Repository whose storage is gone refuses the verification.",
			ns:     "verify",
			objs:   []client.Object{password},
			want:   refused(`backupstorage default/s3 of repository "app" does not exist`),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v := verifier(0, 0, 1)
			v.Spec.Type = tc.kind
			v.Spec.RestoreOption.Target = storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "scratch", Namespace: tc.ns}
			s := session("s", "snap-1", 0)
			r, _, _ := newReconciler(t, t0, tc.objs...)
			in := &startInput{s: &s, verifier: v, repo: repo, snapshot: &storagev1alpha1.Snapshot{Spec: storagev1alpha1.SnapshotSpec{Repository: "app"}}}
			got, err := checkRemote(context.Background(), r, in)
			if err != nil {
				t.Fatalf("checkRemote(): %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(stop{})); diff != "" {
				t.Errorf("\n%s\ncheckRemote(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
