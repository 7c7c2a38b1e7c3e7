package verify

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestLinks(t *testing.T) {
	ref := func(n string) *storagev1alpha1.ObjectReference { return &storagev1alpha1.ObjectReference{Name: n} }
	bc := corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}}
	bc.Spec.Sessions = []corev1alpha1.Session{
		{Name: "nightly", Repositories: []corev1alpha1.RepositoryInfo{{Name: "b", BackupVerifier: ref("v")}, {Name: "a", BackupVerifier: ref("v")}, {Name: "none"}}},
		{Name: "weekly", Repositories: []corev1alpha1.RepositoryInfo{{Name: "c", BackupVerifier: ref("other")},
			{Name: "d", BackupVerifier: &storagev1alpha1.ObjectReference{Name: "v", Namespace: "elsewhere"}}}},
	}
	cases := map[string]struct {
		reason   string
		verifier string
		want     []Link
	}{
		"OneVerifier": {
			reason:   "Only the repositories linked to the verifier, in its namespace, sorted.",
			verifier: "v",
			want:     []Link{{Verifier: "v", Repository: "a", Session: "nightly"}, {Verifier: "v", Repository: "b", Session: "nightly"}},
		},
		"AnyVerifier": {
			reason: "Every linked repository when no verifier is named.",
			want: []Link{{Verifier: "v", Repository: "a", Session: "nightly"}, {Verifier: "v", Repository: "b", Session: "nightly"},
				{Verifier: "other", Repository: "c", Session: "weekly"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Links([]corev1alpha1.BackupConfiguration{bc}, tc.verifier)); diff != "" {
				t.Errorf("%s\nLinks(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestLatest(t *testing.T) {
	snap := func(name, repo string, p storagev1alpha1.SnapshotPhase, at int64) storagev1alpha1.Snapshot {
		s := storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: name}}
		s.Spec.Repository, s.Status.Phase, s.Status.SnapshotTime = repo, p, ptr.To(metav1.Unix(at, 0))
		return s
	}
	snaps := []storagev1alpha1.Snapshot{
		snap("app-1", "app", storagev1alpha1.SnapshotSucceeded, 100),
		snap("app-2", "app", storagev1alpha1.SnapshotSucceeded, 200),
		snap("app-3", "app", storagev1alpha1.SnapshotFailed, 300),
		snap("other-1", "other", storagev1alpha1.SnapshotSucceeded, 400),
	}
	cases := map[string]struct {
		reason string
		repo   string
		want   string
	}{
		"Newest":    {reason: "The newest Succeeded Snapshot, not a newer Failed one nor another repository's.", repo: "app", want: "app-2"},
		"NoneFound": {reason: "A repository without a Succeeded Snapshot has none.", repo: "empty"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := ""
			if s := Latest(snaps, tc.repo); s != nil {
				got = s.Name
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nLatest(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestSession(t *testing.T) {
	snap := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-x"}, Spec: storagev1alpha1.SnapshotSpec{Repository: "app", Session: "nightly"}}
	got := Session("ns", "v", snap, time.Unix(1000, 0))
	want := corev1alpha1.BackupVerificationSessionSpec{
		Invoker: storagev1alpha1.TypedObjectReference{APIGroup: corev1alpha1.Group, Kind: "BackupVerifier", Name: "v"},
		Session: "nightly", Repository: "app", Snapshot: "app-x",
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" || got.Name != "app-nightly-1000" {
		t.Errorf("Session(): name %s, spec -want +got:\n%s", got.Name, diff)
	}
}
