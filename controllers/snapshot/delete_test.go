package snapshot

import (
	"context"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/backend"
)

func TestDelete(t *testing.T) {
	const (
		idA   = "aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"
		idB   = "bbbb1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"
		older = "cccc1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"
	)
	pod0 := backend.ResticPrefix("demo/db", "nightly", "dump-pod-0")
	pod1 := backend.ResticPrefix("demo/db", "nightly", "dump-pod-1")
	all := []string{
		"demo/db/manifests/db-1/dump-pod-0.json.gz", "demo/db/manifests/db-1/dump-pod-1.json.gz", "demo/db/manifests/db-0/dump-pod-0.json.gz",
		"demo/db/repository.yaml", pod0 + "data/00/00", pod0 + "snapshots/" + idA, pod0 + "snapshots/" + older,
		pod1 + "snapshots/" + idB, "demo/db/snapshots/db-1.yaml", "demo/db/snapshots/db-0.yaml",
	}
	cases := map[string]struct {
		reason string
		policy storagev1alpha1.DeletionPolicy
		want   []string
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
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			bucket := memblob.OpenBucket(nil)
			defer bucket.Close()
			for _, k := range all {
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
			e := &external{bucket: bucket, repoPath: "demo/db", key: backend.SnapshotKey("demo/db", "db-1"),
				reason: func(err error) (string, string) { return "Failed", err.Error() }}
			if _, err := e.Delete(ctx, s); err != nil {
				t.Fatal(err)
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
	c := &connector{kube: kube}
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
