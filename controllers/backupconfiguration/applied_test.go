package backupconfiguration

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestApplied(t *testing.T) {
	bc := types.NamespacedName{Namespace: "default", Name: "app"}
	cronJob := func(schedule string) *batchv1.CronJob {
		return &batchv1.CronJob{
			TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app-nightly"},
			Spec:       batchv1.CronJobSpec{Schedule: schedule},
		}
	}
	type step struct {
		// before the apply: what someone else does to the stored object.
		meddle func(ctx context.Context, c client.Client)
		forget bool
		want   *batchv1.CronJob
		// sent: whether the apply reached the API server.
		sent bool
	}
	edit := func(ctx context.Context, c client.Client) {
		cj := &batchv1.CronJob{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app-nightly"}, cj); err != nil {
			t.Fatal(err)
		}
		cj.Spec.Schedule = "@hourly"
		if err := c.Update(ctx, cj); err != nil {
			t.Fatal(err)
		}
	}
	remove := func(ctx context.Context, c client.Client) {
		if err := c.Delete(ctx, cronJob("")); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]struct {
		reason string
		steps  []step
	}{
		"Unchanged": {
			reason: "An object applied and left as it was is not applied again.",
			steps:  []step{{want: cronJob("@daily"), sent: true}, {want: cronJob("@daily")}, {want: cronJob("@daily")}},
		},
		"Wanted differently": {
			reason: "A change of what is wanted is applied.",
			steps:  []step{{want: cronJob("@daily"), sent: true}, {want: cronJob("@weekly"), sent: true}, {want: cronJob("@weekly")}},
		},
		"Changed by someone": {
			reason: "An object someone else changed is applied again, as wanted.",
			steps:  []step{{want: cronJob("@daily"), sent: true}, {meddle: edit, want: cronJob("@daily"), sent: true}},
		},
		"Deleted": {
			reason: "An object deleted is applied again.",
			steps:  []step{{want: cronJob("@daily"), sent: true}, {meddle: remove, want: cronJob("@daily"), sent: true}},
		},
		"Configuration forgotten": {
			reason: "After a configuration is forgotten its objects are applied again.",
			steps:  []step{{want: cronJob("@daily"), sent: true}, {forget: true, want: cronJob("@daily"), sent: true}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			sent := 0
			// The fake client has no server-side apply: a patch stores
			// the object as given, as an apply of every field would.
			kube := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
				Patch: func(ctx context.Context, c client.WithWatch, o client.Object, _ client.Patch, _ ...client.PatchOption) error {
					sent++
					cur := &batchv1.CronJob{}
					err := c.Get(ctx, client.ObjectKeyFromObject(o), cur)
					if kerrors.IsNotFound(err) {
						return c.Create(ctx, o)
					} else if err != nil {
						return err
					}
					o.SetResourceVersion(cur.ResourceVersion)
					return c.Update(ctx, o)
				},
			}).Build()
			a := newApplied()
			for i, st := range tc.steps {
				if st.meddle != nil {
					st.meddle(ctx, kube)
				}
				if st.forget {
					a.forget(bc)
				}
				before := sent
				if err := a.apply(ctx, kube, bc, st.want); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(st.sent, sent > before); diff != "" {
					t.Errorf("%s\nstep %d: sent: -want +got:\n%s", tc.reason, i, diff)
				}
				got := &batchv1.CronJob{}
				if err := kube.Get(ctx, client.ObjectKeyFromObject(st.want), got); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(st.want.Spec.Schedule, got.Spec.Schedule); diff != "" {
					t.Errorf("%s\nstep %d: stored schedule: -want +got:\n%s", tc.reason, i, diff)
				}
			}
		})
	}
}

// Past its resourceVersion, an object is as the last apply left it when its
// generation (its spec) has not moved and it still carries the labels,
// annotations and owners that apply set; what others add beside them
// (a finalizer, annotations of their own, a status) changes nothing.
func TestAppliedKept(t *testing.T) {
	owner := metav1.OwnerReference{APIVersion: "core.stashplane.io/v1alpha1", Kind: "BackupConfiguration", Name: "app", UID: "u1"}
	wanted := func() *batchv1.CronJob {
		return &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app-nightly",
			Labels: map[string]string{"app": "a"}, Annotations: map[string]string{"note": "n"}, OwnerReferences: []metav1.OwnerReference{owner}}}
	}
	last := appliedAs{resourceVersion: "10", generation: 3}
	cases := map[string]struct {
		last   appliedAs
		cached func(c *batchv1.CronJob)
		want   bool
	}{
		"SameVersion": {last: last, cached: func(c *batchv1.CronJob) { c.ResourceVersion, c.Generation, c.Labels = "10", 9, nil }, want: true},
		"OthersWroteBeside": {last: last, cached: func(c *batchv1.CronJob) {
			c.ResourceVersion, c.Generation = "14", 3
			c.Finalizers = []string{"example.com/f"}
			c.Labels["other"], c.Annotations["other"] = "x", "y"
			c.OwnerReferences = append(c.OwnerReferences, metav1.OwnerReference{Kind: "Other", Name: "o", UID: "u2"})
		}, want: true},
		"SpecChanged":    {last: last, cached: func(c *batchv1.CronJob) { c.ResourceVersion, c.Generation = "14", 4 }},
		"LabelRemoved":   {last: last, cached: func(c *batchv1.CronJob) { c.ResourceVersion, c.Generation = "14", 3; delete(c.Labels, "app") }},
		"LabelChanged":   {last: last, cached: func(c *batchv1.CronJob) { c.ResourceVersion, c.Generation = "14", 3; c.Labels["app"] = "b" }},
		"AnnotationGone": {last: last, cached: func(c *batchv1.CronJob) { c.ResourceVersion, c.Generation, c.Annotations = "14", 3, nil }},
		"OwnerGone":      {last: last, cached: func(c *batchv1.CronJob) { c.ResourceVersion, c.Generation, c.OwnerReferences = "14", 3, nil }},
		"NoGeneration":   {last: appliedAs{resourceVersion: "10"}, cached: func(c *batchv1.CronJob) { c.ResourceVersion = "14" }},
		"BeingDeleted": {last: last, cached: func(c *batchv1.CronJob) {
			c.ResourceVersion, c.Generation = "14", 3
			c.DeletionTimestamp = &metav1.Time{}
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cached := wanted()
			tc.cached(cached)
			if diff := cmp.Diff(tc.want, tc.last.kept(wanted(), cached)); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}
