package backupstorage

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/accessor"
)

// TestRollOnRotation: a brokered object store's accessor reads its
// credentials and its token at start, so its pod template carries their
// digest, which changes with either Secret's data and only with it.
func TestRollOnRotation(t *testing.T) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	bs := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "platform"},
		Spec: storagev1alpha1.BackupStorageSpec{Access: storagev1alpha1.AccessBroker, Storage: storagev1alpha1.Backend{
			Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: "creds"}}}}
	token := map[string][]byte{"token": []byte("first")}
	digest := func(data map[string][]byte) string {
		t.Helper()
		kube := fake.NewClientBuilder().WithScheme(s).WithObjects(
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "platform"}, Data: data},
		).Build()
		tokenSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: accessor.Name(bs), Namespace: "platform"}, Data: token}
		d := &appsv1.Deployment{}
		if err := (&accessorReconciler{kube: kube}).rollOnRotation(context.Background(), bs, tokenSecret, d); err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Annotations[annotationSecretHash]
	}
	first := digest(map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("a"), "AWS_SECRET_ACCESS_KEY": []byte("one")})
	if first == "" {
		t.Fatal("rollOnRotation: no digest on the pod template")
	}
	if again := digest(map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("a"), "AWS_SECRET_ACCESS_KEY": []byte("one")}); again != first {
		t.Errorf("rollOnRotation: the same credentials give digest %q, then %q; want one", first, again)
	}
	if rotated := digest(map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("a"), "AWS_SECRET_ACCESS_KEY": []byte("two")}); rotated == first {
		t.Errorf("rollOnRotation: rotated credentials keep digest %q; want a new one, so the accessor restarts with them", first)
	}
	token = map[string][]byte{"token": []byte("second")}
	if revoked := digest(map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("a"), "AWS_SECRET_ACCESS_KEY": []byte("one")}); revoked == first {
		t.Errorf("rollOnRotation: a new token keeps digest %q; want a new one, so grants of the old token stop working", first)
	}
	token = map[string][]byte{"token": []byte("first")}
	if moved := digest(map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("aAWS_SECRET_ACCESS_KEYone")}); moved == first {
		t.Errorf("rollOnRotation: different keys with the same bytes give the same digest %q", first)
	}
}
