package restoresession

import (
	"context"
	"errors"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// The chain's first checks refuse a session that cannot run as written
// before the API server is asked anything, and a missing target before
// its source is looked at.
func TestStartChain(t *testing.T) {
	addon := &corev1alpha1.AddonInfo{Name: "workload-addon"}
	target := &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "app"}
	cases := map[string]struct {
		reason  string
		spec    corev1alpha1.RestoreSessionSpec
		dumps   []string
		want    xpv2.ConditionReason
		wantMsg string
	}{
		"NoAddon": {
			reason: "A session without an addon is invalid.",
			spec:   corev1alpha1.RestoreSessionSpec{Target: target},
			want:   corev1alpha1.ReasonRestoreSpecInvalid, wantMsg: "spec.addon names no addon to restore with",
		},
		"NoTarget": {
			reason: "A session without a target is invalid.",
			spec:   corev1alpha1.RestoreSessionSpec{Addon: addon},
			want:   corev1alpha1.ReasonRestoreSpecInvalid, wantMsg: "spec.target names no target to restore into (a dump of the whole cluster is recreated a namespace at a time: " +
				"the target {kind: Namespace, name: <the session's namespace>} with the kubedump-addon's manifest-restore and its sourceNamespace parameter)",
		},
		"TargetElsewhere": {
			reason: "A target in another namespace is invalid.",
			spec: corev1alpha1.RestoreSessionSpec{Addon: addon,
				Target: &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "app", Namespace: "other"}},
			want: corev1alpha1.ReasonRestoreSpecInvalid, wantMsg: `the target must be in the restoresession's namespace "demo"`,
		},
		"WholeClusterNotListed": {
			reason: "Recreating a whole cluster dump writes into every namespace: refused in a namespace the provider does not list, naming the flag.",
			spec: corev1alpha1.RestoreSessionSpec{Target: &storagev1alpha1.TypedObjectReference{Kind: "Namespace", Name: "demo"},
				Addon: &corev1alpha1.AddonInfo{Name: "kubedump-addon", Tasks: []corev1alpha1.TaskReference{
					{Name: "manifest-restore", Params: &runtime.RawExtension{Raw: []byte(`{"sourceNamespace": "*"}`)}}}}},
			want: corev1alpha1.ReasonRestoreSpecInvalid, wantMsg: `task "manifest-restore" recreates a whole dump of the cluster (sourceNamespace "*"), writing into every namespace; ` +
				`namespace "demo" may not: the provider lets only the namespaces its --cluster-dump-namespaces flag lists do so`,
		},
		"WholeClusterListedWorkloadTarget": {
			reason: "A whole cluster dump is recreated with the session's own namespace as the target.",
			dumps:  []string{"demo"},
			spec: corev1alpha1.RestoreSessionSpec{Target: target,
				Addon: &corev1alpha1.AddonInfo{Name: "kubedump-addon", Tasks: []corev1alpha1.TaskReference{
					{Name: "manifest-restore", Params: &runtime.RawExtension{Raw: []byte(`{"sourceNamespace": "*"}`)}}}}},
			want: corev1alpha1.ReasonRestoreSpecInvalid, wantMsg: `task "manifest-restore" recreates a whole dump of the cluster (sourceNamespace "*"): ` +
				`the target is the session's own namespace, {kind: Namespace, name: demo}`,
		},
		"TargetMissing": {
			reason: "A missing target refuses the restore before its Repository is looked up.",
			spec: corev1alpha1.RestoreSessionSpec{Addon: addon, Target: target,
				DataSource: corev1alpha1.RestoreDataSource{Repository: "gone", Snapshot: corev1alpha1.SnapshotLatest}},
			want: corev1alpha1.ReasonRestoreTargetNotFound, wantMsg: `Deployment "app" does not exist in namespace "demo"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kube := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
			r := &reconciler{kube: kube, reader: kube, clusterDump: tc.dumps}
			rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "demo"}, Spec: tc.spec}
			_, reason, msg, err := r.check(context.Background(), rs)
			if err != nil {
				t.Fatalf("check(): %v", err)
			}
			if diff := cmp.Diff(tc.want, reason); diff != "" {
				t.Errorf("\n%s\nreason: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantMsg, msg); diff != "" {
				t.Errorf("\n%s\nmessage: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// A restore whose Jobs cannot be created is retried until its deadline,
// then fails, so that a verification waiting for it gets an outcome.
func TestCannotStart(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		reason  string
		timeout *metav1.Duration
		at      time.Duration
		want    corev1alpha1.RestorePhase
	}{
		"BeforeTheDeadline": {reason: "Before the deadline the restore is retried.", at: 10 * time.Minute, want: corev1alpha1.RestorePending},
		"PastStartTimeout":  {reason: "Without a timeout it fails once StartTimeout passed.", at: 31 * time.Minute, want: corev1alpha1.RestoreFailed},
		"PastOwnTimeout": {reason: "Its own restoreTimeout also bounds creating its Jobs.",
			timeout: &metav1.Duration{Duration: 5 * time.Minute}, at: 6 * time.Minute, want: corev1alpha1.RestoreFailed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := &reconciler{clock: clocktesting.NewFakeClock(t0.Add(tc.at))}
			rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "demo", CreationTimestamp: metav1.NewTime(t0)}}
			rs.Spec.RestoreTimeout = tc.timeout
			cause := errors.New(`cannot create job "r-dump": forbidden`)
			_, err := r.cannotStart(rs, cause)
			if retried := errors.Is(err, cause); retried != (tc.want == corev1alpha1.RestorePending) {
				t.Errorf("\n%s\ncannotStart(): error %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, phase(rs)); diff != "" {
				t.Errorf("\n%s\nphase: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
