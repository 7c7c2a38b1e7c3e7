package storagekind

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/crossplane/crossplane-runtime/v2/pkg/meta"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/stashplane/stashplane/apis"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// The finalizer goes with the write that marks a create pending only when
// that write follows: the record was just observed absent and the
// object's policies let the reconciler create it.
func TestFinalizerWithCreate(t *testing.T) {
	type want struct {
		finalizers []string
		updates    int
	}
	cases := map[string]struct {
		observedAbsent bool
		policies       xpv2.ManagementPolicies
		finalizers     []string
		want           want
	}{
		"AbsentAndCreated": {
			observedAbsent: true,
			policies:       xpv2.ManagementPolicies{xpv2.ManagementActionAll},
			want:           want{finalizers: []string{managed.FinalizerName}},
		},
		"AbsentAndCreatedByPolicy": {
			observedAbsent: true,
			policies:       xpv2.ManagementPolicies{xpv2.ManagementActionObserve, xpv2.ManagementActionCreate},
			want:           want{finalizers: []string{managed.FinalizerName}},
		},
		"Present": {
			policies: xpv2.ManagementPolicies{xpv2.ManagementActionAll},
			want:     want{finalizers: []string{managed.FinalizerName}, updates: 1},
		},
		"AbsentObserveOnly": {
			observedAbsent: true,
			policies:       xpv2.ManagementPolicies{xpv2.ManagementActionObserve},
			want:           want{finalizers: []string{managed.FinalizerName}, updates: 1},
		},
		"AlreadyThere": {
			observedAbsent: true,
			policies:       xpv2.ManagementPolicies{xpv2.ManagementActionAll},
			finalizers:     []string{managed.FinalizerName},
			want:           want{finalizers: []string{managed.FinalizerName}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "demo", UID: "u1", Finalizers: tc.finalizers}}
			s.Spec.ManagementPolicies = tc.policies
			updates := 0
			kube := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(s.DeepCopy()).
				WithInterceptorFuncs(interceptor.Funcs{Update: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
					updates++
					return c.Update(ctx, o, opts...)
				}}).Build()
			if err := kube.Get(context.Background(), client.ObjectKeyFromObject(s), s); err != nil {
				t.Fatal(err)
			}
			absent := &absentRecords{}
			absent.set(s.UID, tc.observedAbsent)
			f := finalizerWithCreate{api: resource.NewAPIFinalizer(kube, managed.FinalizerName), absent: absent}
			if err := f.AddFinalizer(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			got := want{finalizers: s.Finalizers, updates: updates}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
			if absent.take(s.UID) {
				t.Error("the observation was not forgotten once used")
			}
		})
	}
}

// A status is not written when the cache holds the object at the same
// resourceVersion with the same status, and is written otherwise.
func TestStatusUnchanged(t *testing.T) {
	cached := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "demo"}}
	cached.Status.Phase = storagev1alpha1.SnapshotSucceeded
	cases := map[string]snapshotChange{
		"Same":            {change: func(*storagev1alpha1.Snapshot) {}, want: true},
		"StatusChanged":   {change: func(s *storagev1alpha1.Snapshot) { s.Status.Phase = storagev1alpha1.SnapshotFailed }},
		"ConditionAdded":  {change: func(s *storagev1alpha1.Snapshot) { s.SetConditions(xpv2.ReconcileSuccess()) }},
		"CacheBehind":     {change: func(s *storagev1alpha1.Snapshot) { s.ResourceVersion = "1000" }},
		"NotInCache":      {change: func(s *storagev1alpha1.Snapshot) { s.Name = "app-2" }},
		"NoVersion":       {change: func(s *storagev1alpha1.Snapshot) { s.ResourceVersion = "" }},
		"OnlySpecChanged": {change: func(s *storagev1alpha1.Snapshot) { s.Spec.Session = "other" }, want: true},
	}
	runSnapshotChanges(t, cached, cases, statusUnchanged)
}

type snapshotChange = struct {
	change func(s *storagev1alpha1.Snapshot)
	want   bool
}

// runSnapshotChanges reads cached back from a fake cache holding it,
// changes it as each case says and compares what check says of it.
func runSnapshotChanges(t *testing.T, cached *storagev1alpha1.Snapshot, cases map[string]snapshotChange, check func(context.Context, client.Reader, client.Object) bool) {
	t.Helper()
	kube := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(cached.DeepCopy()).Build()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &storagev1alpha1.Snapshot{}
			if err := kube.Get(context.Background(), client.ObjectKeyFromObject(cached), s); err != nil {
				t.Fatal(err)
			}
			tc.change(s)
			if diff := cmp.Diff(tc.want, check(context.Background(), kube, s)); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func scheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s, err := apis.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// What a create set in the status is kept over the write of its result,
// unless that write met someone else's: the status is then the server's.
func TestCreatedStatusKept(t *testing.T) {
	cases := map[string]struct {
		conflicts int
		want      storagev1alpha1.SnapshotPhase
	}{
		"AcceptedAtOnce": {want: storagev1alpha1.SnapshotSucceeded},
		"AfterConflict":  {conflicts: 1, want: storagev1alpha1.SnapshotRunning},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			stored := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "demo"}}
			stored.Status.Phase = storagev1alpha1.SnapshotRunning
			conflicts := tc.conflicts
			kube := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(stored).WithStatusSubresource(stored).
				WithInterceptorFuncs(interceptor.Funcs{Update: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
					if conflicts > 0 {
						conflicts--
						return kerrors.NewConflict(storagev1alpha1.GroupVersion.WithResource("snapshots").GroupResource(), o.GetName(), errors.New("changed"))
					}
					return c.Update(ctx, o, opts...)
				}}).Build()
			s := &storagev1alpha1.Snapshot{}
			if err := kube.Get(context.Background(), client.ObjectKeyFromObject(stored), s); err != nil {
				t.Fatal(err)
			}
			s.Status.Phase = storagev1alpha1.SnapshotSucceeded
			s.SetAnnotations(map[string]string{"crossplane.io/external-create-succeeded": "now"})
			u := createdStatusKept{kube: kube, retrying: managed.NewRetryingCriticalAnnotationUpdater(kube)}
			if err := u.UpdateCriticalAnnotations(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, s.Status.Phase); diff != "" {
				t.Errorf("status phase after the write: -want +got:\n%s", diff)
			}
			if diff := cmp.Diff("now", s.GetAnnotations()["crossplane.io/external-create-succeeded"]); diff != "" {
				t.Errorf("annotation: -want +got:\n%s", diff)
			}
		})
	}
}

// An observation is remembered only for a live object whose record is
// absent; one of an object being deleted forgets it.
func TestObservingRemembers(t *testing.T) {
	now := metav1.Now()
	cases := map[string]struct {
		exists   bool
		err      error
		deleting bool
		want     bool
	}{
		"Absent":         {want: true},
		"Exists":         {exists: true},
		"ObserveFailed":  {err: errors.New("unreachable")},
		"AbsentDeleting": {deleting: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "demo", UID: "u1"}}
			if tc.deleting {
				s.DeletionTimestamp = &now
			}
			absent := &absentRecords{}
			absent.set(s.UID, true)
			e := observingClient{absent: absent, ExternalClient: &managed.ExternalClientFns{
				ObserveFn: func(context.Context, resource.Managed) (managed.ExternalObservation, error) {
					return managed.ExternalObservation{ResourceExists: tc.exists}, tc.err
				},
			}}
			_, _ = e.Observe(context.Background(), s)
			if diff := cmp.Diff(tc.want, absent.take(s.UID)); diff != "" {
				t.Errorf("remembered absent: -want +got:\n%s", diff)
			}
		})
	}
}

// Only a write that adds nothing but the mark of a pending create and the
// managed finalizer to the cached object is held back for the write of the
// create's result.
func TestCreatePendingOnly(t *testing.T) {
	cached := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "demo",
		Annotations: map[string]string{"team": "a"}, Finalizers: []string{"example.com/keep"}}}
	cached.Status.Phase = storagev1alpha1.SnapshotSucceeded
	mark := func(s *storagev1alpha1.Snapshot) {
		meta.SetExternalCreatePending(s, time.Unix(1700000000, 0))
		meta.AddFinalizer(s, managed.FinalizerName)
	}
	cases := map[string]snapshotChange{
		"MarkAndFinalizer": {change: mark, want: true},
		"MarkOnly": {change: func(s *storagev1alpha1.Snapshot) {
			meta.SetExternalCreatePending(s, time.Unix(1700000000, 0))
		}, want: true},
		"MarkAndStatus": {change: func(s *storagev1alpha1.Snapshot) {
			mark(s)
			s.Status.Phase = storagev1alpha1.SnapshotFailed
		}, want: true},
		"NoMark":    {change: func(s *storagev1alpha1.Snapshot) { meta.AddFinalizer(s, managed.FinalizerName) }},
		"Unchanged": {change: func(*storagev1alpha1.Snapshot) {}},
		"CreateSucceeded": {change: func(s *storagev1alpha1.Snapshot) {
			mark(s)
			meta.SetExternalCreateSucceeded(s, time.Unix(1700000001, 0))
		}},
		"SpecChanged": {change: func(s *storagev1alpha1.Snapshot) {
			mark(s)
			s.Spec.Session = "other"
		}},
		"AnnotationRemoved": {change: func(s *storagev1alpha1.Snapshot) {
			mark(s)
			delete(s.Annotations, "team")
		}},
		"OtherFinalizer": {change: func(s *storagev1alpha1.Snapshot) {
			mark(s)
			meta.AddFinalizer(s, "example.com/other")
		}},
		"CacheBehind": {change: func(s *storagev1alpha1.Snapshot) {
			mark(s)
			s.ResourceVersion = "1000"
		}},
		"NotInCache": {change: func(s *storagev1alpha1.Snapshot) {
			mark(s)
			s.Name = "app-2"
		}},
	}
	runSnapshotChanges(t, cached, cases, createPendingOnly)
}

// A write held back sends nothing; any other is sent.
func TestPendingMarkHeldBack(t *testing.T) {
	cached := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "demo"}}
	sent := 0
	kube := unchangedStatusSkipped{Client: fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(cached.DeepCopy()).
		WithInterceptorFuncs(interceptor.Funcs{Update: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
			sent++
			return c.Update(ctx, o, opts...)
		}}).Build()}
	ctx := context.Background()
	s := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(cached), s); err != nil {
		t.Fatal(err)
	}
	meta.SetExternalCreatePending(s, time.Unix(1700000000, 0))
	meta.AddFinalizer(s, managed.FinalizerName)
	if err := kube.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(0, sent); diff != "" {
		t.Errorf("writes sent for the pending mark: -want +got:\n%s", diff)
	}
	meta.SetExternalCreateSucceeded(s, time.Unix(1700000001, 0))
	if err := kube.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	got := &storagev1alpha1.Snapshot{}
	if err := kube.Get(ctx, client.ObjectKeyFromObject(cached), got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(1, sent); diff != "" {
		t.Errorf("writes sent for the create's result: -want +got:\n%s", diff)
	}
	if !meta.FinalizerExists(got, managed.FinalizerName) || meta.GetExternalCreatePending(got).IsZero() || meta.GetExternalCreateSucceeded(got).IsZero() {
		t.Errorf("the create's result did not carry the finalizer and both marks: %v %v", got.Finalizers, got.Annotations)
	}
}

// A create remembers the Ready its kind set with the record, and the status
// write that ends the create carries it in place of the managed
// reconciler's Creating; a Ready the create did not set (one left from an
// earlier failure, a kind whose Create sets none) is not remembered, nor
// one whose create failed.
func TestCreatedReadiness(t *testing.T) {
	earlier := xpv2.Unavailable()
	earlier.Message = "bucket not found"
	cases := map[string]struct {
		before, set *xpv2.Condition
		err         error
		want        string
	}{
		"SetByCreate":       {set: ptrTo(xpv2.Available()), want: string(xpv2.ReasonAvailable)},
		"LeftFromBefore":    {before: &earlier, want: string(xpv2.ReasonCreating)},
		"NoneSet":           {want: string(xpv2.ReasonCreating)},
		"CreateFailed":      {set: ptrTo(xpv2.Available()), err: errors.New("denied"), want: string(xpv2.ReasonCreating)},
		"SetAgainUnchanged": {before: ptrTo(xpv2.Available()), set: ptrTo(xpv2.Available()), want: string(xpv2.ReasonCreating)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "demo", UID: "u1"}}
			if tc.before != nil {
				s.SetConditions(*tc.before)
			}
			created := &createdReadiness{}
			e := observingClient{absent: &absentRecords{}, created: created, ExternalClient: &managed.ExternalClientFns{
				CreateFn: func(_ context.Context, mg resource.Managed) (managed.ExternalCreation, error) {
					if tc.set != nil {
						mg.SetConditions(*tc.set)
					}
					return managed.ExternalCreation{}, tc.err
				},
			}}
			_, _ = e.Create(context.Background(), s)
			// What the managed reconciler does after a create.
			s.SetConditions(xpv2.Creating(), xpv2.ReconcileSuccess())
			w := statusWriter{SubResourceWriter: discardStatus{}, cache: fake.NewClientBuilder().Build(), created: created}
			if err := w.Update(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(s.GetCondition(xpv2.TypeReady).Reason)); diff != "" {
				t.Errorf("Ready's reason in the status that ends the create: -want +got:\n%s", diff)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// discardStatus takes status writes and sends nothing.
type discardStatus struct{ client.SubResourceWriter }

func (discardStatus) Update(context.Context, client.Object, ...client.SubResourceUpdateOption) error {
	return nil
}
