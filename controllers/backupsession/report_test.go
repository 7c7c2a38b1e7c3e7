package backupsession

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
)

// TestRevokeReportOnce: a run's report grant is deleted on the first pass
// after its outcome and the later passes of the same run send no delete;
// a delete that failed is tried again on the next pass.
func TestRevokeReportOnce(t *testing.T) {
	cases := map[string]struct {
		reason     string
		failFirst  bool
		wantDelete []int // deletes sent by each of three passes
	}{
		"Once": {reason: "The grant is deleted once; later passes send nothing.", wantDelete: []int{2, 0, 0}},
		"FailedDeleteTriedAgain": {reason: "A pass whose delete failed is not remembered as revoked.",
			failFirst: true, wantDelete: []int{1, 2, 0}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			bs := finished("app-hourly-1", 0, corev1alpha1.BackupSessionSucceeded, 0)
			bs.UID = "uid-1"
			grant := naming.BackupReportGrant(bs.Name)
			role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: grant, Namespace: bs.Namespace}}
			binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: grant, Namespace: bs.Namespace}}
			s := runtime.NewScheme()
			if err := clientgoscheme.AddToScheme(s); err != nil {
				t.Fatal(err)
			}
			deletes, failed := 0, false
			kube := fake.NewClientBuilder().WithScheme(s).WithObjects(role, binding).WithInterceptorFuncs(interceptor.Funcs{
				Delete: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
					deletes++
					if tc.failFirst && !failed {
						failed = true
						return errors.New("the API server is unavailable")
					}
					return c.Delete(ctx, o, opts...)
				},
			}).Build()
			r := &reconciler{kube: kube, api: kube, clock: clocktesting.NewFakeClock(t0), log: logr.Discard(), revoked: newRevocations()}
			var got []int
			for range tc.wantDelete {
				deletes = 0
				_, _, _ = r.revokeReport(ctx, &run{bs: &bs})
				got = append(got, deletes)
			}
			if diff := cmp.Diff(tc.wantDelete, got); diff != "" {
				t.Errorf("\n%s\ndeletes sent per pass: -want +got:\n%s", tc.reason, diff)
			}
			for _, o := range []client.Object{&rbacv1.Role{}, &rbacv1.RoleBinding{}} {
				if err := kube.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: grant}, o); err == nil {
					t.Errorf("\n%s\nthe grant's %T is still there", tc.reason, o)
				}
			}
		})
	}
}
