package snapshot

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stashplane/stashplane/apis"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
)

func TestDelete(t *testing.T) {
	const (
		idA   = "aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"
		idB   = "bbbb1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"
		older = "cccc1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"
	)
	pod0 := layout.ResticPrefix("demo/db", "nightly", "dump-pod-0")
	pod1 := layout.ResticPrefix("demo/db", "nightly", "dump-pod-1")
	all := []string{
		"demo/db/manifests/db-1/dump-pod-0.json.gz", "demo/db/manifests/db-1/dump-pod-1.json.gz", "demo/db/manifests/db-0/dump-pod-0.json.gz",
		"demo/db/repository.yaml", pod0 + "data/00/00", pod0 + "snapshots/" + idA, pod0 + "snapshots/" + older,
		pod1 + "snapshots/" + idB, "demo/db/snapshots/db-1.yaml", "demo/db/snapshots/db-0.yaml",
	}
	sch := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apis.AddToScheme} {
		if err := add(sch); err != nil {
			t.Fatal(err)
		}
	}
	repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "demo"}, Spec: storagev1alpha1.RepositorySpec{Path: "demo/db"}}
	restoring := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "verify-db-0", Namespace: "demo"},
		Spec:   corev1alpha1.RestoreSessionSpec{DataSource: corev1alpha1.RestoreDataSource{Repository: "db", Snapshot: "db-0"}},
		Status: corev1alpha1.RestoreSessionStatus{Phase: corev1alpha1.RestoreRunning}}
	cases := map[string]struct {
		reason  string
		policy  storagev1alpha1.DeletionPolicy
		objs    []client.Object
		locks   []string
		want    []string
		wantErr bool
	}{
		"Delete": {
			reason: "A Snapshot deleted with Delete leaves everything in the backend.",
			policy: storagev1alpha1.DeletionPolicyDelete,
			want:   all,
		},
		"WipeOut": {
			reason: "WipeOut forgets each component's restic snapshot and removes the manifests and the record, and nothing of another Snapshot.",
			policy: storagev1alpha1.DeletionPolicyWipeOut,
			want: []string{
				"demo/db/manifests/db-0/dump-pod-0.json.gz", "demo/db/repository.yaml", pod0 + "data/00/00",
				pod0 + "snapshots/" + older, "demo/db/snapshots/db-0.yaml",
			},
		},
		"WipeOutWaitsForRestore": {
			reason:  "While a restore or a verification reads the Repository (its restic check takes no lock), WipeOut forgets nothing.",
			policy:  storagev1alpha1.DeletionPolicyWipeOut,
			objs:    []client.Object{restoring},
			want:    all,
			wantErr: true,
		},
		"WipeOutWaitsForLock": {
			reason:  "While a component's restic repository holds a lock that is not stale, as restic's forget would, WipeOut forgets nothing there.",
			policy:  storagev1alpha1.DeletionPolicyWipeOut,
			locks:   []string{pod0 + "locks/1234"},
			want:    append([]string{pod0 + "locks/1234"}, all...),
			wantErr: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			bucket := memblob.OpenBucket(nil)
			defer bucket.Close()
			for _, k := range append(tc.locks, all...) {
				if err := bucket.WriteAll(ctx, k, []byte("x"), nil); err != nil {
					t.Fatal(err)
				}
			}
			s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "demo"}}
			s.Spec.Session, s.Spec.DeletionPolicy = "nightly", tc.policy
			s.Status.Components = map[string]storagev1alpha1.Component{
				"dump-pod-0": {ResticStats: []storagev1alpha1.ResticStats{{Summary: &storagev1alpha1.ResticSummary{ID: idA}}}},
				"dump-pod-1": {ResticStats: []storagev1alpha1.ResticStats{{Summary: &storagev1alpha1.ResticSummary{ID: idB[:8]}}}},
			}
			e := &external{kube: fake.NewClientBuilder().WithScheme(sch).WithObjects(tc.objs...).Build(), repo: repo,
				bucket: bucket, repoPath: "demo/db", key: layout.SnapshotKey("demo/db", "db-1"), now: time.Now,
				reason: func(err error) (string, string) { return "Failed", err.Error() }}
			if _, err := e.Delete(ctx, s); (err != nil) != tc.wantErr {
				t.Fatalf("%s\nDelete: error %v, want error %t", tc.reason, err, tc.wantErr)
			}
			if diff := cmp.Diff(sorted(tc.want), keys(t, bucket)); diff != "" {
				t.Errorf("%s\nkeys left: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func sorted(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}

func keys(t *testing.T, b *blob.Bucket) []string {
	t.Helper()
	var out []string
	it := b.List(nil)
	for {
		obj, err := it.Next(context.Background())
		if err != nil {
			break
		}
		out = append(out, obj.Key)
	}
	sort.Strings(out)
	return out
}

func TestConnectDeletingWithoutRepository(t *testing.T) {
	s := runtime.NewScheme()
	if err := storagev1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	wiping := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "wiping", Namespace: "demo", DeletionTimestamp: &now, Finalizers: []string{"x"}}}
	wiping.Spec.DeletionPolicy = storagev1alpha1.DeletionPolicyWipeOut
	kube := fake.NewClientBuilder().WithScheme(s).WithObjects(wiping).Build()
	c := &connector{kube: kube, now: time.Now}
	cases := map[string]struct {
		reason string
		repo   string
	}{
		"RepositoryGone": {
			reason: "A Snapshot deleted after its Repository has nothing left to remove and is not held for ever.",
			repo:   "gone",
		},
		"RepositoryWipedOut": {
			reason: "A Snapshot of a Repository being wiped out leaves the removal to the Repository.",
			repo:   "wiping",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			snap := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "demo", DeletionTimestamp: &now}}
			snap.Spec.Repository = tc.repo
			snap.Spec.DeletionPolicy = storagev1alpha1.DeletionPolicyWipeOut
			got, err := c.Connect(context.Background(), snap)
			if err != nil {
				t.Fatalf("%s\nConnect: %v", tc.reason, err)
			}
			if _, ok := got.(gone); !ok {
				t.Errorf("%s\nConnect gave %T, want gone", tc.reason, got)
			}
		})
	}
}
