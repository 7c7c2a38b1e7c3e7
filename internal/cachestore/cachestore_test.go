package cachestore

import (
	"context"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestObjects(t *testing.T) {
	a := storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}}
	b := storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}}
	withStore := func() *informertest.FakeInformers {
		inf := toolscache.NewSharedIndexInformer(&toolscache.ListWatch{}, &storagev1alpha1.Snapshot{}, 0, toolscache.Indexers{})
		for _, s := range []*storagev1alpha1.Snapshot{&a, &b} {
			if err := inf.GetStore().Add(s); err != nil {
				t.Fatal(err)
			}
		}
		return &informertest.FakeInformers{InformersByGVK: map[schema.GroupVersionKind]toolscache.SharedIndexInformer{
			storagev1alpha1.GroupVersion.WithKind("Snapshot"): inf,
		}}
	}
	cases := map[string]struct {
		reason  string
		cache   *informertest.FakeInformers
		want    []*storagev1alpha1.Snapshot
		wantErr string
	}{
		"Store": {
			reason: "The informer's own objects are read, not copies of them.",
			cache:  withStore(),
			want:   []*storagev1alpha1.Snapshot{&a, &b},
		},
		"NoStore": {
			reason:  "An informer that keeps no store is an error, not an empty list (a scrape would zero every gauge).",
			cache:   &informertest.FakeInformers{},
			wantErr: "cannot read the cache of *v1alpha1.Snapshot: its informer keeps no store",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := runtime.NewScheme()
			if err := storagev1alpha1.AddToScheme(s); err != nil {
				t.Fatal(err)
			}
			tc.cache.Scheme = s
			got, err := Objects[storagev1alpha1.Snapshot](context.Background(), tc.cache)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tc.wantErr, gotErr); diff != "" {
				t.Errorf("%s\nObjects(): -want +got error:\n%s", tc.reason, diff)
			}
			sort.Slice(got, func(i, j int) bool { return got[i].Name < got[j].Name })
			// The very objects of the store: compared by address.
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(x, y *storagev1alpha1.Snapshot) bool { return x == y })); diff != "" {
				t.Errorf("%s\nObjects(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
