package backupconfiguration

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A backend that omits storageRef takes the default BackupStorage as
// KubeStash resolves it, and a configuration with none to take, or with
// several of other namespaces, is NotReady naming the field.
func TestCheckDefaultStorage(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	storage := func(ns, name string, isDefault bool, age time.Duration, policy *storagev1alpha1.UsagePolicy) *storagev1alpha1.BackupStorage {
		return &storagev1alpha1.BackupStorage{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(t0.Add(-age))},
			Spec:       storagev1alpha1.BackupStorageSpec{Default: isDefault, UsagePolicy: policy},
		}
	}
	all := &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromAll)}}
	type want struct {
		msg string
		ref *storagev1alpha1.ObjectReference
	}
	cases := map[string]struct {
		reason string
		named  *storagev1alpha1.ObjectReference
		objs   []client.Object
		want   want
	}{
		"Named": {
			reason: "A backend that names its storage keeps it, defaults or not.",
			named:  &storagev1alpha1.ObjectReference{Name: "mine"},
			objs:   []client.Object{storage("team", "dflt", true, 0, nil)},
			want:   want{ref: &storagev1alpha1.ObjectReference{Name: "mine"}},
		},
		"OwnNamespace": {
			reason: "The default of the configuration's namespace comes first, before any of another namespace.",
			objs:   []client.Object{storage("team", "plain", false, 0, nil), storage("team", "dflt", true, 0, nil), storage("platform", "shared", true, 0, all)},
			want:   want{ref: &storagev1alpha1.ObjectReference{Namespace: "team", Name: "dflt"}},
		},
		"OlderOfTwoInOwnNamespace": {
			reason: "Of two claimants in one namespace the older is the default; the newer is refused by its own controller.",
			objs:   []client.Object{storage("team", "newer", true, time.Hour, nil), storage("team", "older", true, 2*time.Hour, nil)},
			want:   want{ref: &storagev1alpha1.ObjectReference{Namespace: "team", Name: "older"}},
		},
		"OtherNamespaceAdmits": {
			reason: "Without one of its own, the one default of another namespace that admits it is taken.",
			objs:   []client.Object{storage("platform", "shared", true, 0, all), storage("private", "closed", true, 0, nil)},
			want:   want{ref: &storagev1alpha1.ObjectReference{Namespace: "platform", Name: "shared"}},
		},
		"None": {
			reason: "No default anywhere that admits the namespace: NotReady naming the field.",
			objs:   []client.Object{storage("private", "closed", true, 0, nil), storage("team", "plain", false, 0, nil)},
			want: want{msg: `spec.backends[0].storageRef: omitted, and no default BackupStorage (spec.default: true) is in namespace "team" ` +
				`or admits it by its usagePolicy; name a storage or mark one the default`},
		},
		"SeveralElsewhere": {
			reason: "Two defaults of other namespaces admit it: which one is for the user to say.",
			objs:   []client.Object{storage("platform", "shared", true, 0, all), storage("dr", "far", true, 0, all)},
			want: want{msg: `spec.backends[0].storageRef: omitted, and namespace "team" has no default BackupStorage and the defaults of ` +
				`2 other namespaces admit it (dr/far, platform/shared); name one`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := runtime.NewScheme()
			for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, storagev1alpha1.AddToScheme, corev1alpha1.AddToScheme} {
				if err := add(s); err != nil {
					t.Fatal(err)
				}
			}
			objs := append(tc.objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}})
			kube := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
			bc := config(func(spec *corev1alpha1.BackupConfigurationSpec) { spec.Backends[0].StorageRef = tc.named })
			bc.Namespace = "team"
			msg, invalid, err := checkDefaultStorage(context.Background(), &input{kube: kube, bc: bc, status: &bc.Status})
			if err != nil || invalid {
				t.Fatalf("checkDefaultStorage(): invalid %v, %v", invalid, err)
			}
			got := want{msg: msg, ref: bc.Spec.Backends[0].StorageRef}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
