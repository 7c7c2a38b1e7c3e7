package backupverificationsession

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestStartChain(t *testing.T) {
	snap := func(repo string, phase storagev1alpha1.SnapshotPhase, verified storagev1alpha1.VerificationStatus) *storagev1alpha1.Snapshot {
		return &storagev1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: "snap-1", Namespace: "default"},
			Spec:       storagev1alpha1.SnapshotSpec{Repository: repo},
			Status:     storagev1alpha1.SnapshotStatus{Phase: phase, VerificationStatus: verified, VerificationSession: "earlier"},
		}
	}
	v := verifier(0, 0, 1)
	v.Spec.RestoreOption.Target = storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "scratch"}
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "scratch", Namespace: "default"}}
	ahead := session("ahead", "snap-1", -1)
	cases := map[string]struct {
		reason  string
		invoker string
		objs    []client.Object
		want    stop
	}{
		"NotAVerifier": {
			reason:  "A session invoked by anything but a BackupVerifier cannot run.",
			invoker: "BackupConfiguration",
			want:    refused("the invoker is a BackupConfiguration, not a BackupVerifier"),
		},
		"NoVerifier": {
			reason: "A missing verifier refuses the session.",
			want:   refused(`backupverifier "v" does not exist`),
		},
		"NoSnapshot": {
			reason: "A missing Snapshot refuses the session.",
			objs:   []client.Object{v},
			want:   refused(`snapshot "snap-1" does not exist`),
		},
		"Verified": {
			reason: "A Verified Snapshot skips the session before anything else is asked of it.",
			objs:   []client.Object{v, snap("other", storagev1alpha1.SnapshotFailed, storagev1alpha1.SnapshotVerified)},
			want: stop{kind: stopSkipped, reason: corev1alpha1.ReasonSnapshotAlreadyVerified,
				msg: `snapshot "snap-1" was verified by backupverificationsession "earlier"`},
		},
		"OtherRepository": {
			reason: "A Snapshot of another Repository refuses the session.",
			objs:   []client.Object{v, snap("other", storagev1alpha1.SnapshotSucceeded, "")},
			want:   refused(`snapshot "snap-1" belongs to repository "other", not "app"`),
		},
		"NotSucceeded": {
			reason: "A Snapshot that did not succeed refuses the session.",
			objs:   []client.Object{v, snap("app", storagev1alpha1.SnapshotFailed, "")},
			want:   refused(`snapshot "snap-1" is "Failed", not Succeeded`),
		},
		"Waiting": {
			reason: "An older unfinished session of the Snapshot goes first; this one waits.",
			objs:   []client.Object{v, snap("app", storagev1alpha1.SnapshotSucceeded, ""), &ahead},
			want: stop{kind: stopWaiting, reason: corev1alpha1.ReasonVerificationWaiting,
				msg: `backupverificationsession "ahead" is verifying snapshot "snap-1"; this session starts when it ends`},
		},
		"VerifiedBeforePrune": {
			reason: "A Verified Snapshot whose verdict predates a prune that freed data is verified again.",
			objs:   []client.Object{v, snap("app", storagev1alpha1.SnapshotSucceeded, storagev1alpha1.SnapshotVerified), claim, prunedRepository()},
		},
		"VerdictAged": {
			reason: "A Verified Snapshot whose verdict is older than a week (the default verdictMaxAge) is verified again.",
			objs:   []client.Object{v, verifiedAt(snap("app", storagev1alpha1.SnapshotSucceeded, storagev1alpha1.SnapshotVerified), t0.Add(-8*24*time.Hour)), claim},
		},
		"VerdictYoung": {
			reason: "A verdict younger than verdictMaxAge spares the Snapshot.",
			objs:   []client.Object{v, verifiedAt(snap("app", storagev1alpha1.SnapshotSucceeded, storagev1alpha1.SnapshotVerified), t0.Add(-6*24*time.Hour)), claim},
			want: stop{kind: stopSkipped, reason: corev1alpha1.ReasonSnapshotAlreadyVerified,
				msg: `snapshot "snap-1" was verified by backupverificationsession "earlier"`},
		},
		"VerdictAgedShorterMaxAge": {
			reason: "A verifier's own verdictMaxAge sets when a verdict ages.",
			objs:   []client.Object{withMaxAge(v, time.Hour), verifiedAt(snap("app", storagev1alpha1.SnapshotSucceeded, storagev1alpha1.SnapshotVerified), t0.Add(-2*time.Hour)), claim},
		},
		"VerdictNeverAges": {
			reason: "verdictMaxAge 0s keeps a verdict for ever.",
			objs:   []client.Object{withMaxAge(v, 0), verifiedAt(snap("app", storagev1alpha1.SnapshotSucceeded, storagev1alpha1.SnapshotVerified), t0.Add(-800*24*time.Hour)), claim},
			want: stop{kind: stopSkipped, reason: corev1alpha1.ReasonSnapshotAlreadyVerified,
				msg: `snapshot "snap-1" was verified by backupverificationsession "earlier"`},
		},
		"Starts": {
			reason: "With every check passed the chain stops nowhere and the target is found.",
			objs:   []client.Object{v, snap("app", storagev1alpha1.SnapshotSucceeded, ""), claim},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := session("s", "snap-1", 0)
			if tc.invoker != "" {
				s.Spec.Invoker.Kind = tc.invoker
			}
			r, _, _ := newReconciler(t, t0, append(tc.objs, &s)...)
			in, got, err := r.check(context.Background(), &s)
			if err != nil {
				t.Fatalf("check(): %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(stop{})); diff != "" {
				t.Errorf("\n%s\ncheck(): -want +got:\n%s", tc.reason, diff)
			}
			if tc.want.reason == "" && (in.target == nil || in.target.Name != "scratch") {
				t.Errorf("\n%s\ncheck() found target %+v, want the claim scratch", tc.reason, in.target)
			}
		})
	}
}

// verifiedAt gives s a verdict given at t.
func verifiedAt(s *storagev1alpha1.Snapshot, t time.Time) *storagev1alpha1.Snapshot {
	s.Status.VerificationTime = &metav1.Time{Time: t}
	return s
}

// withMaxAge is a copy of v with verdictMaxAge d.
func withMaxAge(v *corev1alpha1.BackupVerifier, d time.Duration) *corev1alpha1.BackupVerifier {
	v = v.DeepCopy()
	v.Spec.VerdictMaxAge = &metav1.Duration{Duration: d}
	return v
}

// prunedRepository is Repository "app", pruned (freeing data) just now.
func prunedRepository() *storagev1alpha1.Repository {
	r := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default"}}
	r.Status.LastPruneTime, r.Status.LastPruneFreed = ptr.To(metav1.Now()), "3 MiB"
	return r
}
