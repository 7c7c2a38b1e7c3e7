package backupsession

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stashplane/stashplane/apis"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestEnsureSnapshotsTakeRepositoryDeletionPolicy(t *testing.T) {
	cases := map[string]struct {
		reason string
		repo   storagev1alpha1.DeletionPolicy
		want   storagev1alpha1.DeletionPolicy
	}{
		"WipeOut": {
			reason: "A Snapshot of a WipeOut Repository removes its data when deleted.",
			repo:   storagev1alpha1.DeletionPolicyWipeOut,
			want:   storagev1alpha1.DeletionPolicyWipeOut,
		},
		"Delete": {
			reason: "A Snapshot of a Delete Repository keeps its data when deleted.",
			repo:   storagev1alpha1.DeletionPolicyDelete,
			want:   storagev1alpha1.DeletionPolicyDelete,
		},
		"Unset": {
			reason: "A Repository without a policy (made before the default) gives Delete.",
			want:   storagev1alpha1.DeletionPolicyDelete,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"}}
			repo.Spec.DeletionPolicy = tc.repo
			got := ensureOneSnapshot(t, repo, nil)
			if diff := cmp.Diff(tc.want, got.Spec.DeletionPolicy); diff != "" {
				t.Errorf("\n%s\ndeletionPolicy of the Snapshot: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// ensureOneSnapshot runs ensureSnapshots for run 1 of session "nightly" of
// configuration db-backup, whose one repository is repo, and returns the
// Snapshot it made.
func ensureOneSnapshot(t *testing.T, repo *storagev1alpha1.Repository, nodes map[string]string) *storagev1alpha1.Snapshot {
	t.Helper()
	s := testScheme(t)
	kube := fake.NewClientBuilder().WithScheme(s).WithObjects(repo).WithIndex(&storagev1alpha1.Snapshot{}, storagev1alpha1.SnapshotBackupSessionField, storagev1alpha1.SnapshotBackupSession).WithStatusSubresource(&storagev1alpha1.Snapshot{}).Build()
	r := &reconciler{kube: kube, api: kube}
	bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "db-backup", Namespace: repo.Namespace}}
	bc.Spec.Sessions = []corev1alpha1.Session{{Name: "nightly", Repositories: []corev1alpha1.RepositoryInfo{{Name: repo.Name}}}}
	bs := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: "db-backup-nightly-1", Namespace: repo.Namespace}}
	bs.Spec.Session = "nightly"
	if _, err := r.ensureSnapshots(context.Background(), bs, bc, false, map[string]int{repo.Name: max(len(nodes), 1)}, nodes, nil); err != nil {
		t.Fatal(err)
	}
	got := &storagev1alpha1.Snapshot{}
	if err := kube.Get(context.Background(), client.ObjectKey{Namespace: repo.Namespace, Name: "db-db-backup-nightly-1"}, got); err != nil {
		t.Fatal(err)
	}
	return got
}

// testScheme knows Kubernetes' kinds and Stashplane's.
func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apis.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestEnsureSnapshotsStarted: a run whose Jobs were made makes no new
// Snapshot (a repository unpaused since would get one without Jobs), and
// still finds the Snapshots it made, though their repository was paused
// since (its Jobs are writing into it).
func TestEnsureSnapshotsStarted(t *testing.T) {
	cases := map[string]struct {
		reason  string
		started bool
		have    bool
		paused  bool
		want    int
	}{
		"NotStarted":             {reason: "A run not started makes its Snapshot.", want: 1},
		"NotStartedPaused":       {reason: "A run not started makes no Snapshot in a paused repository.", paused: true, want: 0},
		"StartedNew":             {reason: "A started run makes no new Snapshot.", started: true, want: 0},
		"StartedExists":          {reason: "A started run finds the Snapshot it made.", started: true, have: true, want: 1},
		"NotStartedPausedExists": {reason: "A Snapshot the run made before its repository was paused stays the run's, so that it gets its Jobs.", have: true, paused: true, want: 1},
		"StartedPaused":          {reason: "A started run keeps the Snapshot it made in a repository paused since, and so is not skipped while its Jobs run.", started: true, have: true, paused: true, want: 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"}}
			repo.Spec.Paused = tc.paused
			objs := []client.Object{repo}
			if tc.have {
				objs = append(objs, &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "db-db-backup-nightly-1", Namespace: "demo"}, Spec: storagev1alpha1.SnapshotSpec{Repository: "db"}})
			}
			kube := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).WithIndex(&storagev1alpha1.Snapshot{}, storagev1alpha1.SnapshotBackupSessionField, storagev1alpha1.SnapshotBackupSession).WithStatusSubresource(&storagev1alpha1.Snapshot{}).Build()
			r := &reconciler{kube: kube, api: kube}
			bc := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "db-backup", Namespace: "demo"}}
			bc.Spec.Sessions = []corev1alpha1.Session{{Name: "nightly", Repositories: []corev1alpha1.RepositoryInfo{{Name: "db"}}}}
			bs := &corev1alpha1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: "db-backup-nightly-1", Namespace: "demo"}}
			bs.Spec.Session = "nightly"
			snaps, err := r.ensureSnapshots(context.Background(), bs, bc, tc.started, map[string]int{"db": 1}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			list := &storagev1alpha1.SnapshotList{}
			if err := kube.List(context.Background(), list); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]int{tc.want, tc.want}, []int{len(snaps), len(list.Items)}); diff != "" {
				t.Errorf("\n%s\nSnapshots returned and existing: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
