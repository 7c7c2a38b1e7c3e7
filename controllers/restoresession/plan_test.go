package restoresession

import (
	"context"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/functions/render"
)

// TestPlanningRefusal reconciles restores that cannot be planned: each is
// refused at once, before any Job, grant or copy of the storage's Secret,
// instead of being retried for ever.
func TestPlanningRefusal(t *testing.T) {
	type want struct {
		Phase      corev1alpha1.RestorePhase
		Reason     xpv2.ConditionReason
		Message    string
		Finalizers []string
		Jobs       int
		Copies     int
		Bindings   int
	}
	cases := map[string]struct {
		reason     string
		components []string
		task       string
		want       want
	}{
		"ComponentTargetLacks": {
			reason:     "A component whose ordinal the StatefulSet lacks is refused as invalid.",
			components: []string{"dump-pod-5"}, task: "logical-backup-restore",
			want: want{Phase: corev1alpha1.RestoreInvalid, Reason: corev1alpha1.ReasonRestoreSpecInvalid,
				Message: `cannot restore component "dump-pod-5" into StatefulSet "db": it has no part of that name`},
		},
		"UnknownTask": {
			reason:     "A task the addon does not have is refused as invalid.",
			components: []string{"dump-pod-0"}, task: "no-such-task",
			want: want{Phase: corev1alpha1.RestoreInvalid, Reason: corev1alpha1.ReasonRestoreSpecInvalid,
				Message: `cannot find restore task "no-such-task" in addon "workload-addon"`},
		},
		"Planned": {
			reason:     "A restore that can be planned gets its grants, the copy of the storage's Secret and its Job.",
			components: []string{"dump-pod-1"}, task: "logical-backup-restore",
			want: want{Phase: corev1alpha1.RestoreRunning, Reason: corev1alpha1.ReasonRestoreExecutorEnsured,
				Finalizers: []string{finalizer}, Jobs: 1, Copies: 1, Bindings: 1},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			all := &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromAll)}}
			objs := crossObjects(t, all, nil)
			bs := objs[0].(*storagev1alpha1.BackupStorage)
			bs.Spec.Storage = storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: "s3-creds"}}
			rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "clone"}}
			rs.Spec.Target = &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "StatefulSet", Name: "db"}
			rs.Spec.Addon = &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{Name: tc.task}}}
			rs.Spec.DataSource = corev1alpha1.RestoreDataSource{Namespace: "team", Repository: "app", Snapshot: "latest",
				EncryptionSecret: &storagev1alpha1.ObjectReference{Name: "pw"}, Components: tc.components}
			sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "clone"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2)}}
			objs = append(objs, rs, sts, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: "platform"}, Data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("id")}})
			kube := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).WithStatusSubresource(&corev1alpha1.RestoreSession{}).Build()
			r := &reconciler{kube: kube, reader: kube, renderer: render.New(render.Options{}), clock: clocktesting.NewFakeClock(time.Unix(0, 0)), image: "stashplane", log: logr.Discard()}
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "clone", Name: "r"}}); err != nil {
				t.Fatalf("%s\nReconcile(): %v", tc.reason, err)
			}
			got := &corev1alpha1.RestoreSession{}
			if err := kube.Get(ctx, client.ObjectKeyFromObject(rs), got); err != nil {
				t.Fatal(err)
			}
			c := got.GetCondition(corev1alpha1.TypeRestoreExecutorEnsured)
			jobs, copies, bindings := &batchv1.JobList{}, &corev1.SecretList{}, &rbacv1.RoleBindingList{}
			for _, l := range []struct {
				list client.ObjectList
				ns   string
			}{{jobs, "clone"}, {copies, "clone"}, {bindings, "team"}} {
				if err := kube.List(ctx, l.list, client.InNamespace(l.ns)); err != nil {
					t.Fatal(err)
				}
			}
			copied := 0
			for _, s := range copies.Items {
				if metav1.IsControlledBy(&s, got) {
					copied++
				}
			}
			gotWant := want{Phase: got.Status.Phase, Reason: c.Reason, Message: c.Message, Finalizers: got.Finalizers,
				Jobs: len(jobs.Items), Copies: copied, Bindings: len(bindings.Items)}
			if diff := cmp.Diff(tc.want, gotWant); diff != "" {
				t.Errorf("%s\nafter one reconcile: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func mustPlan(t *testing.T, rs *corev1alpha1.RestoreSession, in plan.Inputs) []render.Input {
	t.Helper()
	inputs, reason, msg := planRestore(rs, in)
	if reason != "" {
		t.Fatalf("planRestore(): %s: %s", reason, msg)
	}
	return inputs
}
