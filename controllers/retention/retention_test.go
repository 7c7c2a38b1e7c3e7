package retention

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stashplane/stashplane/apis"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

var now = time.Date(2026, 3, 18, 20, 30, 0, 0, time.UTC)

func config(policy *storagev1alpha1.ObjectReference) *corev1alpha1.BackupConfiguration {
	bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "app-backup", Namespace: "demo"}}
	bc.Spec.Backends = []corev1alpha1.BackendReference{{Name: "local", RetentionPolicy: policy}}
	bc.Spec.Sessions = []corev1alpha1.Session{{Name: "nightly", Repositories: []corev1alpha1.RepositoryInfo{{Name: "app", Backend: "local"}}}}
	return bc
}

// snapshot is the Snapshot of the nightly run days ago.
func snapshot(days int, change ...func(*storagev1alpha1.Snapshot)) *storagev1alpha1.Snapshot {
	s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-d%d", days), Namespace: "demo", Labels: map[string]string{
		storagev1alpha1.LabelRepository: "app", corev1alpha1.LabelInvokerName: "app-backup", corev1alpha1.LabelSession: "nightly"}}}
	s.Spec.Repository, s.Spec.DeletionPolicy = "app", storagev1alpha1.DeletionPolicyDelete
	s.Status.Phase = storagev1alpha1.SnapshotSucceeded
	s.Status.SnapshotTime = ptr.To(metav1.NewTime(now.Add(-time.Duration(days) * 24 * time.Hour)))
	for _, c := range change {
		c(s)
	}
	return s
}

func policy(name string, change func(*storagev1alpha1.RetentionPolicy)) *storagev1alpha1.RetentionPolicy {
	rp := &storagev1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}}
	rp.Spec.SuccessfulSnapshots = &storagev1alpha1.SuccessfulSnapshotsKeepPolicy{Last: ptr.To[int32](2)}
	if change != nil {
		change(rp)
	}
	return rp
}

type result struct {
	Left      []string
	WipedOut  []string
	Status    []corev1alpha1.RetentionPolicyApplyStatus
	Condition string
	Requeue   time.Duration
}

func TestReconcile(t *testing.T) {
	keep2 := &storagev1alpha1.ObjectReference{Name: "keep-2"}
	cases := map[string]struct {
		reason    string
		objs      []client.Object
		conflicts int
		want      result
	}{
		"StatusConflict": {
			reason:    "A status write that conflicts with the BackupSession controller's is made again, so the removals stay recorded.",
			objs:      []client.Object{config(keep2), policy("keep-2", nil), snapshot(0), snapshot(1), snapshot(2)},
			conflicts: 2,
			want: result{
				Left: []string{"app-d0", "app-d1"},
				Status: []corev1alpha1.RetentionPolicyApplyStatus{{Ref: storagev1alpha1.ObjectReference{Namespace: "demo", Name: "keep-2"}, Repository: "app",
					Phase: corev1alpha1.RetentionPolicyApplied, Removed: []corev1alpha1.RetentionRemoval{{Snapshot: "app-d2", Rule: "successfulSnapshots of retentionpolicy demo/keep-2"}}}},
				Condition: "True/RetentionPolicyApplied",
			},
		},
		"LastTwo": {
			reason: "The named policy keeps the two newest Snapshots; the others go, WipeOut, each recorded with its rule.",
			objs:   []client.Object{config(keep2), policy("keep-2", nil), snapshot(0), snapshot(1), snapshot(2), snapshot(3)},
			want: result{
				Left: []string{"app-d0", "app-d1"},
				Status: []corev1alpha1.RetentionPolicyApplyStatus{{Ref: storagev1alpha1.ObjectReference{Namespace: "demo", Name: "keep-2"}, Repository: "app",
					Phase: corev1alpha1.RetentionPolicyApplied, Removed: []corev1alpha1.RetentionRemoval{
						{Snapshot: "app-d2", Rule: "successfulSnapshots of retentionpolicy demo/keep-2"},
						{Snapshot: "app-d3", Rule: "successfulSnapshots of retentionpolicy demo/keep-2"}}}},
				Condition: "True/RetentionPolicyApplied",
			},
		},
		"DefaultPolicy": {
			reason: "A backend that names no policy gets the namespace's default one.",
			objs:   []client.Object{config(nil), policy("ns-default", func(rp *storagev1alpha1.RetentionPolicy) { rp.Spec.Default = true }), policy("other", nil), snapshot(0), snapshot(1), snapshot(2)},
			want: result{
				Left: []string{"app-d0", "app-d1"},
				Status: []corev1alpha1.RetentionPolicyApplyStatus{{Ref: storagev1alpha1.ObjectReference{Namespace: "demo", Name: "ns-default"}, Repository: "app",
					Phase: corev1alpha1.RetentionPolicyApplied, Removed: []corev1alpha1.RetentionRemoval{{Snapshot: "app-d2", Rule: "successfulSnapshots of retentionpolicy demo/ns-default"}}}},
				Condition: "True/RetentionPolicyApplied",
			},
		},
		"NoPolicy": {
			reason: "Without a named or default policy nothing is removed.",
			objs:   []client.Object{config(nil), policy("other", nil), snapshot(0), snapshot(1), snapshot(2)},
			want:   result{Left: []string{"app-d0", "app-d1", "app-d2"}, Condition: "True/RetentionPolicyApplied"},
		},
		"MissingPolicy": {
			reason: "A policy that does not exist fails, naming the field, and removes nothing.",
			objs:   []client.Object{config(&storagev1alpha1.ObjectReference{Name: "gone"}), snapshot(0), snapshot(1), snapshot(2)},
			want: result{
				Left: []string{"app-d0", "app-d1", "app-d2"},
				Status: []corev1alpha1.RetentionPolicyApplyStatus{{Ref: storagev1alpha1.ObjectReference{Namespace: "demo", Name: "gone"}, Repository: "app",
					Phase: corev1alpha1.RetentionPolicyFailedToApply, Error: `spec.backends[0].retentionPolicy: retentionpolicy demo/gone not found`}},
				Condition: "False/RetentionPolicyFailedToApply",
			},
		},
		"OverflowingPeriod": {
			reason: "A period the schema admits but that overflows fails, naming the field, and removes nothing.",
			objs: []client.Object{config(keep2), policy("keep-2", func(rp *storagev1alpha1.RetentionPolicy) { rp.Spec.MaxRetentionPeriod = "99999999999999999999d" }),
				snapshot(0), snapshot(1), snapshot(2)},
			want: result{
				Left: []string{"app-d0", "app-d1", "app-d2"},
				Status: []corev1alpha1.RetentionPolicyApplyStatus{{Ref: storagev1alpha1.ObjectReference{Namespace: "demo", Name: "keep-2"}, Repository: "app",
					Phase: corev1alpha1.RetentionPolicyFailedToApply,
					Error: `spec.backends[0].retentionPolicy: retentionpolicy demo/keep-2: spec.maxRetentionPeriod: cannot parse period "99999999999999999999d": "99999999999999999999d" is too large`}},
				Condition: "False/RetentionPolicyFailedToApply",
			},
		},
		"NotAdmitted": {
			reason: "A policy of another namespace whose usagePolicy does not admit the configuration's fails, naming the field, and removes nothing.",
			objs: []client.Object{config(&storagev1alpha1.ObjectReference{Namespace: "platform", Name: "shared"}),
				&storagev1alpha1.RetentionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "platform"}}, snapshot(0), snapshot(1), snapshot(2)},
			want: result{
				Left: []string{"app-d0", "app-d1", "app-d2"},
				Status: []corev1alpha1.RetentionPolicyApplyStatus{{Ref: storagev1alpha1.ObjectReference{Namespace: "platform", Name: "shared"}, Repository: "app",
					Phase: corev1alpha1.RetentionPolicyFailedToApply,
					Error: `spec.backends[0].retentionPolicy: retentionpolicy platform/shared may not be used from namespace "demo": its usagePolicy allows only namespace "platform"`}},
				Condition: "False/RetentionPolicyFailedToApply",
			},
		},
		"InUseWaits": {
			reason: "A Snapshot due to go that a running verification reads stays, and the session says retention waits.",
			objs: []client.Object{config(keep2), policy("keep-2", nil), snapshot(0), snapshot(1), snapshot(2), snapshot(3),
				&corev1alpha1.BackupVerificationSession{ObjectMeta: metav1.ObjectMeta{Name: "v1", Namespace: "demo"},
					Spec:   corev1alpha1.BackupVerificationSessionSpec{Repository: "app", Snapshot: "app-d3", Session: "nightly"},
					Status: corev1alpha1.BackupVerificationSessionStatus{Phase: corev1alpha1.VerificationSessionRunning}}},
			want: result{
				Left: []string{"app-d0", "app-d1", "app-d3"},
				Status: []corev1alpha1.RetentionPolicyApplyStatus{{Ref: storagev1alpha1.ObjectReference{Namespace: "demo", Name: "keep-2"}, Repository: "app",
					Phase: corev1alpha1.RetentionPolicyPending, Removed: []corev1alpha1.RetentionRemoval{{Snapshot: "app-d2", Rule: "successfulSnapshots of retentionpolicy demo/keep-2"}},
					Message: `snapshot "app-d3" due to go by successfulSnapshots, waits while in use by backupverificationsession demo/v1`}},
				Condition: "False/RetentionPolicyPending",
				Requeue:   waitInterval,
			},
		},
		"NewestVerifiedPastMaxRetention": {
			reason: "The newest Verified Snapshot stays past maxRetentionPeriod, and the status says so.",
			objs: []client.Object{config(keep2), policy("keep-2", func(rp *storagev1alpha1.RetentionPolicy) { rp.Spec.MaxRetentionPeriod = "2d" }),
				snapshot(0), snapshot(1), snapshot(3, func(s *storagev1alpha1.Snapshot) { s.Status.VerificationStatus = storagev1alpha1.SnapshotVerified }), snapshot(4)},
			want: result{
				Left: []string{"app-d0", "app-d1", "app-d3"},
				Status: []corev1alpha1.RetentionPolicyApplyStatus{{Ref: storagev1alpha1.ObjectReference{Namespace: "demo", Name: "keep-2"}, Repository: "app",
					Phase: corev1alpha1.RetentionPolicyApplied, Removed: []corev1alpha1.RetentionRemoval{{Snapshot: "app-d4", Rule: "maxRetentionPeriod of retentionpolicy demo/keep-2"}},
					Message: `snapshot "app-d3" kept past maxRetentionPeriod 2d until a newer Snapshot is Verified`}},
				Condition: "True/RetentionPolicyApplied",
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := runtime.NewScheme()
			for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apis.AddToScheme} {
				if err := add(s); err != nil {
					t.Fatal(err)
				}
			}
			bs := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: "app-backup-nightly-1", Namespace: "demo"}}
			bs.Spec.Invoker.Name, bs.Spec.Session = "app-backup", "nightly"
			bs.Status.Phase = corev1alpha1.BackupSessionSucceeded
			kube := fake.NewClientBuilder().WithScheme(s).WithObjects(append(tc.objs, bs)...).WithStatusSubresource(&corev1alpha1.BackupSession{}).Build()
			// Deletions are seen through a wrapper that records the
			// deletionPolicy each removed Snapshot had when it went.
			rec := &recordingClient{Client: kube, conflicts: tc.conflicts}
			r := &reconciler{kube: rec, api: kube, clock: clocktesting.NewFakeClock(now), events: record.NewFakeRecorder(10), log: logr.Discard()}
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(bs)})
			if err != nil {
				t.Fatal(err)
			}
			got := result{Requeue: res.RequeueAfter, WipedOut: rec.wipedOut}
			list := &storagev1alpha1.SnapshotList{}
			if err := kube.List(context.Background(), list); err != nil {
				t.Fatal(err)
			}
			for _, sn := range list.Items {
				got.Left = append(got.Left, sn.Name)
			}
			sort.Strings(got.Left)
			after := &corev1alpha1.BackupSession{}
			if err := kube.Get(context.Background(), client.ObjectKeyFromObject(bs), after); err != nil {
				t.Fatal(err)
			}
			got.Status = after.Status.RetentionPolicy
			c := after.GetCondition(corev1alpha1.TypeRetentionPolicyExecutorEnsured)
			got.Condition = fmt.Sprintf("%s/%s", c.Status, c.Reason)
			want := tc.want
			for _, st := range want.Status {
				for _, rm := range st.Removed {
					want.WipedOut = append(want.WipedOut, rm.Snapshot)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s\nReconcile: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestReconcileLeavesUnfinishedAndDone(t *testing.T) {
	cases := map[string]struct {
		reason string
		phase  corev1alpha1.BackupSessionPhase
		cond   *xpv2.Condition
	}{
		"Running": {reason: "A running session has no outcome yet.", phase: corev1alpha1.BackupSessionRunning},
		"Skipped": {reason: "A skipped session took no Snapshot.", phase: corev1alpha1.BackupSessionSkipped},
		"Applied": {reason: "Retention runs once per session.", phase: corev1alpha1.BackupSessionSucceeded, cond: &xpv2.Condition{Type: corev1alpha1.TypeRetentionPolicyExecutorEnsured, Status: corev1.ConditionTrue}},
		"Failed":  {reason: "A policy that could not be applied is not retried by the same session.", phase: corev1alpha1.BackupSessionFailed, cond: &xpv2.Condition{Type: corev1alpha1.TypeRetentionPolicyExecutorEnsured, Status: corev1.ConditionFalse, Reason: corev1alpha1.ReasonRetentionPolicyFailedToApply}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bs := &corev1alpha1.BackupSession{}
			bs.Status.Phase = tc.phase
			if tc.cond != nil {
				bs.SetConditions(*tc.cond)
			}
			if due(bs) {
				t.Errorf("%s\ndue: got true, want false", tc.reason)
			}
		})
	}
}

// recordingClient records the Snapshots deleted with deletionPolicy WipeOut,
// and fails the first status patches with a conflict while conflicts is
// above zero, as when the BackupSession controller wrote the status first.
type recordingClient struct {
	client.Client
	wipedOut  []string
	conflicts int
}

func (c *recordingClient) Status() client.SubResourceWriter {
	return &conflictingWriter{SubResourceWriter: c.Client.Status(), c: c}
}

type conflictingWriter struct {
	client.SubResourceWriter
	c *recordingClient
}

func (w *conflictingWriter) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	if w.c.conflicts > 0 {
		w.c.conflicts--
		return kerrors.NewConflict(schema.GroupResource{Group: corev1alpha1.Group, Resource: "backupsessions"}, o.GetName(), errors.New("the object has been modified"))
	}
	return w.SubResourceWriter.Patch(ctx, o, p, opts...)
}

func (c *recordingClient) Delete(ctx context.Context, o client.Object, opts ...client.DeleteOption) error {
	if s, ok := o.(*storagev1alpha1.Snapshot); ok {
		cur := &storagev1alpha1.Snapshot{}
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(s), cur); err == nil && cur.Spec.DeletionPolicy == storagev1alpha1.DeletionPolicyWipeOut {
			c.wipedOut = append(c.wipedOut, s.Name)
		}
	}
	return c.Client.Delete(ctx, o, opts...)
}

func TestWithRemovals(t *testing.T) {
	entry := func(repo string, removed ...string) corev1alpha1.RetentionPolicyApplyStatus {
		st := corev1alpha1.RetentionPolicyApplyStatus{Repository: repo, Phase: corev1alpha1.RetentionPolicyApplied}
		for _, r := range removed {
			st.Removed = append(st.Removed, corev1alpha1.RetentionRemoval{Snapshot: r, Rule: "last"})
		}
		return st
	}
	cases := map[string]struct {
		reason            string
		applied, recorded []corev1alpha1.RetentionPolicyApplyStatus
		want              []corev1alpha1.RetentionPolicyApplyStatus
	}{
		"KeepsEarlierRemovals": {
			reason:   "A pass that found the Snapshots an earlier pass removed already gone keeps them listed.",
			applied:  []corev1alpha1.RetentionPolicyApplyStatus{entry("app")},
			recorded: []corev1alpha1.RetentionPolicyApplyStatus{entry("app", "s1")},
			want:     []corev1alpha1.RetentionPolicyApplyStatus{entry("app", "s1")},
		},
		"NoDuplicates": {
			reason:   "A removal both recorded and applied is listed once, earlier ones first.",
			applied:  []corev1alpha1.RetentionPolicyApplyStatus{entry("app", "s2", "s3")},
			recorded: []corev1alpha1.RetentionPolicyApplyStatus{entry("app", "s1", "s2"), entry("other", "x")},
			want:     []corev1alpha1.RetentionPolicyApplyStatus{entry("app", "s1", "s2", "s3")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, withRemovals(tc.applied, tc.recorded)); diff != "" {
				t.Errorf("%s\nwithRemovals: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
