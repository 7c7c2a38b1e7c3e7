package backupstorage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/stashplane/stashplane/apis"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/storagekind"
)

func storage(policy storagev1alpha1.DeletionPolicy) *storagev1alpha1.BackupStorage {
	return &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Name: "bs", Namespace: "default"},
		Spec:       storagev1alpha1.BackupStorageSpec{DeletionPolicy: policy},
	}
}

func listKeys(b *blob.Bucket) []string {
	var out []string
	it := b.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err != nil {
			return out
		}
		out = append(out, o.Key)
	}
}

func TestExternal(t *testing.T) {
	ctx := context.Background()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apis.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	// app keeps its data in the storage (a Repository of another
	// namespace); other, in another storage.
	app := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team"},
		Spec: storagev1alpha1.RepositorySpec{Path: "app", StorageRef: storagev1alpha1.ObjectReference{Namespace: "default", Name: "bs"}}}
	other := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "default"},
		Spec: storagev1alpha1.RepositorySpec{Path: "other", StorageRef: storagev1alpha1.ObjectReference{Name: "elsewhere"}}}
	snapshot := func(repo *storagev1alpha1.Repository, phase storagev1alpha1.SnapshotPhase) *storagev1alpha1.Snapshot {
		return &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: repo.Name + "-1", Namespace: repo.Namespace, Labels: map[string]string{storagev1alpha1.LabelRepository: repo.Name}},
			Spec: storagev1alpha1.SnapshotSpec{Repository: repo.Name}, Status: storagev1alpha1.SnapshotStatus{Phase: phase}}
	}
	wipeOut := func(e *external, bs *storagev1alpha1.BackupStorage) (managed.ExternalObservation, error) {
		_, err := e.Delete(ctx, bs)
		return managed.ExternalObservation{}, err
	}
	seeded := map[string]string{layout.MetadataKey: "x", "app/repository.yaml": "y"}
	record := func(owner string) string {
		b, _ := yaml.Marshal(layout.Metadata{APIVersion: layout.RecordAPIVersion, Kind: layout.KindBackendMeta, Owner: owner})
		return string(b)
	}
	owned, legacy := record("uid-of-another-cluster"), record("")
	mine := func(mutate ...func(*storagev1alpha1.BackupStorage)) *storagev1alpha1.BackupStorage {
		bs := storage("")
		bs.UID = "uid-of-this-object"
		for _, m := range mutate {
			m(bs)
		}
		return bs
	}
	observe := func(e *external, bs *storagev1alpha1.BackupStorage) (managed.ExternalObservation, error) {
		return e.Observe(ctx, bs)
	}
	type want struct {
		obs   managed.ExternalObservation
		err   bool
		keys  []string
		phase storagev1alpha1.BackupStoragePhase
		init  corev1.ConditionStatus
	}
	cases := map[string]struct {
		reason string
		seed   map[string]string
		objs   []client.Object
		bs     *storagev1alpha1.BackupStorage
		do     func(e *external, bs *storagev1alpha1.BackupStorage) (managed.ExternalObservation, error)
		want   want
	}{
		"Uninitialised": {
			reason: "An empty storage has no record yet.",
			bs:     storage(""),
			do: func(e *external, bs *storagev1alpha1.BackupStorage) (managed.ExternalObservation, error) {
				return e.Observe(ctx, bs)
			},
			want: want{obs: managed.ExternalObservation{ResourceExists: false}, phase: storagev1alpha1.BackupStorageNotReady, init: corev1.ConditionFalse},
		},
		"CreateThenObserve": {
			reason: "Create writes metadata.yaml; then the storage is Ready and initialised.",
			bs:     storage(""),
			do: func(e *external, bs *storagev1alpha1.BackupStorage) (managed.ExternalObservation, error) {
				if _, err := e.Create(ctx, bs); err != nil {
					return managed.ExternalObservation{}, err
				}
				return e.Observe(ctx, bs)
			},
			want: want{
				obs:  managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true},
				keys: []string{layout.MetadataKey}, phase: storagev1alpha1.BackupStorageReady, init: corev1.ConditionTrue,
			},
		},
		"ForeignMetadata": {
			reason: "A metadata.yaml that is not Stashplane's is reported and left alone.",
			seed:   map[string]string{layout.MetadataKey: "someone: else\n"},
			bs:     storage(""),
			do: func(e *external, bs *storagev1alpha1.BackupStorage) (managed.ExternalObservation, error) {
				return e.Observe(ctx, bs)
			},
			want: want{err: true, keys: []string{layout.MetadataKey}, phase: storagev1alpha1.BackupStorageNotReady, init: corev1.ConditionFalse},
		},
		"StorageOwned": {
			reason: "A record another BackupStorage object wrote (another cluster's) is refused and left alone.",
			seed:   map[string]string{layout.MetadataKey: owned},
			bs:     mine(),
			do:     observe,
			want:   want{err: true, keys: []string{layout.MetadataKey}, phase: storagev1alpha1.BackupStorageNotReady, init: corev1.ConditionFalse},
		},
		"StorageAdopted": {
			reason: "Annotated to adopt it, the storage takes the record over: rewritten with its UID, then up to date.",
			seed:   map[string]string{layout.MetadataKey: owned},
			bs: mine(func(bs *storagev1alpha1.BackupStorage) {
				bs.Annotations = map[string]string{storagev1alpha1.AnnotationAdopt: "true"}
			}),
			do: func(e *external, bs *storagev1alpha1.BackupStorage) (managed.ExternalObservation, error) {
				if obs, err := e.Observe(ctx, bs); err != nil || obs.ResourceUpToDate {
					return obs, fmt.Errorf("before the take-over: %+v, %v; want exists and not up to date", obs, err)
				}
				if _, err := e.Update(ctx, bs); err != nil {
					return managed.ExternalObservation{}, err
				}
				bs.Annotations = nil
				return e.Observe(ctx, bs)
			},
			want: want{obs: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true},
				keys: []string{layout.MetadataKey}, phase: storagev1alpha1.BackupStorageReady, init: corev1.ConditionTrue},
		},
		"StorageReadOnly": {
			reason: "A BackupStorage that may only observe reads a storage another object owns, writing nothing.",
			seed:   map[string]string{layout.MetadataKey: owned},
			bs: mine(func(bs *storagev1alpha1.BackupStorage) {
				bs.Spec.ManagementPolicies = xpv2.ManagementPolicies{xpv2.ManagementActionObserve}
			}),
			do: observe,
			want: want{obs: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true},
				keys: []string{layout.MetadataKey}, phase: storagev1alpha1.BackupStorageReady, init: corev1.ConditionTrue},
		},
		"LegacyMetadata": {
			reason: "A record written before owners were recorded is this object's, and is rewritten with its UID.",
			seed:   map[string]string{layout.MetadataKey: legacy},
			bs:     mine(),
			do:     observe,
			want: want{obs: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: false},
				keys: []string{layout.MetadataKey}, phase: storagev1alpha1.BackupStorageReady, init: corev1.ConditionTrue},
		},
		"DeleteKeepsData": {
			reason: "The Delete policy keeps every backup.",
			seed:   map[string]string{layout.MetadataKey: "x", "app/repository.yaml": "y"},
			bs:     storage(storagev1alpha1.DeletionPolicyDelete),
			do: func(e *external, bs *storagev1alpha1.BackupStorage) (managed.ExternalObservation, error) {
				_, err := e.Delete(ctx, bs)
				return managed.ExternalObservation{}, err
			},
			want: want{keys: []string{"app/repository.yaml", layout.MetadataKey}, init: corev1.ConditionUnknown},
		},
		"WipeOut": {
			reason: "WipeOut removes everything under the storage's prefix.",
			seed:   map[string]string{layout.MetadataKey: "x", "app/repository.yaml": "y"},
			bs:     storage(storagev1alpha1.DeletionPolicyWipeOut),
			do: func(e *external, bs *storagev1alpha1.BackupStorage) (managed.ExternalObservation, error) {
				_, err := e.Delete(ctx, bs)
				return managed.ExternalObservation{}, err
			},
			want: want{init: corev1.ConditionUnknown},
		},
		"WipeOutWaitsForBackup": {
			reason: "WipeOut waits, removing nothing, while a backup writes into one of the storage's Repositories, of any namespace.",
			seed:   seeded,
			objs:   []client.Object{app, snapshot(app, storagev1alpha1.SnapshotRunning)},
			bs:     storage(storagev1alpha1.DeletionPolicyWipeOut),
			do:     wipeOut,
			want:   want{err: true, keys: []string{"app/repository.yaml", layout.MetadataKey}, init: corev1.ConditionUnknown},
		},
		"WipeOutWaitsForPrune": {
			reason: "WipeOut waits while a prune Job of one of its Repositories runs.",
			seed:   seeded,
			objs: []client.Object{app, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "app-prune", Namespace: "team",
				Labels: map[string]string{plan.LabelPruneOf: "app"}}}},
			bs:   storage(storagev1alpha1.DeletionPolicyWipeOut),
			do:   wipeOut,
			want: want{err: true, keys: []string{"app/repository.yaml", layout.MetadataKey}, init: corev1.ConditionUnknown},
		},
		"WipeOutWaitsForRestore": {
			reason: "WipeOut waits while a restore or verification reads from one of its Repositories.",
			seed:   seeded,
			objs: []client.Object{app, &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "team"},
				Spec:   corev1alpha1.RestoreSessionSpec{DataSource: corev1alpha1.RestoreDataSource{Repository: "app"}},
				Status: corev1alpha1.RestoreSessionStatus{Phase: corev1alpha1.RestorePending}}},
			bs:   storage(storagev1alpha1.DeletionPolicyWipeOut),
			do:   wipeOut,
			want: want{err: true, keys: []string{"app/repository.yaml", layout.MetadataKey}, init: corev1.ConditionUnknown},
		},
		"WipeOutOthersBusy": {
			reason: "A run of a Repository of another storage, or a finished one of its own, holds nothing back.",
			seed:   seeded,
			objs:   []client.Object{app, other, snapshot(other, storagev1alpha1.SnapshotRunning), snapshot(app, storagev1alpha1.SnapshotSucceeded)},
			bs:     storage(storagev1alpha1.DeletionPolicyWipeOut),
			do:     wipeOut,
			want:   want{init: corev1.ConditionUnknown},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := memblob.OpenBucket(nil)
			defer b.Close()
			for k, v := range tc.seed {
				if err := b.WriteAll(ctx, k, []byte(v), nil); err != nil {
					t.Fatal(err)
				}
			}
			e := &external{kube: fake.NewClientBuilder().WithScheme(s).WithObjects(tc.objs...).Build(), bucket: b, reason: storagekind.Classify, now: func() time.Time { return stamp }}
			obs, err := tc.do(e, tc.bs)
			if (err != nil) != tc.want.err {
				t.Fatalf("%s\nerror %v, want error %v", tc.reason, err, tc.want.err)
			}
			got := want{obs: obs, err: err != nil, keys: listKeys(b), phase: tc.bs.Status.Phase,
				init: tc.bs.GetCondition(storagev1alpha1.TypeBackendInitialized).Status}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
			if c := tc.bs.GetCondition(storagev1alpha1.TypeBackendInitialized); c.Status != corev1.ConditionUnknown && !c.LastTransitionTime.Equal(&metav1.Time{Time: stamp}) {
				t.Errorf("%s\nlastTransitionTime %s, want the controller clock's %s", tc.reason, c.LastTransitionTime, stamp)
			}
		})
	}
}

// stamp is the time of the controller's clock in unit tests.
var stamp = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestDefaultConflict(t *testing.T) {
	s := runtime.NewScheme()
	if err := apis.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	at := func(name string, def bool, minute int) *storagev1alpha1.BackupStorage {
		return &storagev1alpha1.BackupStorage{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name),
				CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC))},
			Spec: storagev1alpha1.BackupStorageSpec{Default: def},
		}
	}
	first, second, plain := at("first", true, 1), at("second", true, 2), at("plain", false, 0)
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(first, second, plain).Build()
	cases := map[string]struct {
		reason string
		bs     *storagev1alpha1.BackupStorage
		want   string
	}{
		"Older":      {reason: "The older default keeps its place.", bs: first, want: ""},
		"Newer":      {reason: "A newer default is refused, naming the older one.", bs: second, want: "first"},
		"NotDefault": {reason: "A storage that is not a default never conflicts.", bs: plain, want: ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := defaultConflict(context.Background(), c, tc.bs)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\ndefaultConflict(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
