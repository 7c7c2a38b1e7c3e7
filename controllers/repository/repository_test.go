package repository

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
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/stashplane/stashplane/apis"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
)

func repo(name, path string, policy storagev1alpha1.DeletionPolicy) *storagev1alpha1.Repository {
	return &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps"},
		Spec:       storagev1alpha1.RepositorySpec{Path: path, DeletionPolicy: policy},
	}
}

func noReason(err error) (string, string) { return "Failed", err.Error() }

func keys(t *testing.T, b *blob.Bucket) []string {
	t.Helper()
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
	wipeOut := func(e *external, r *storagev1alpha1.Repository) (managed.ExternalObservation, error) {
		_, err := e.Delete(ctx, r)
		return managed.ExternalObservation{}, err
	}
	foreign, _ := yaml.Marshal(repo("someone-else", "app", ""))
	// owned is app's record as another object of the same name wrote it.
	ownedRepo := repo("app", "app", "")
	ownedRepo.UID = "uid-of-another-cluster"
	owned, _ := yaml.Marshal(record(ownedRepo))
	legacy := record(repo("app", "app", ""))
	legacyRecord, _ := yaml.Marshal(legacy)
	mine := func(mutate ...func(*storagev1alpha1.Repository)) *storagev1alpha1.Repository {
		r := repo("app", "app", "")
		r.UID = "uid-of-this-object"
		for _, m := range mutate {
			m(r)
		}
		return r
	}
	observe := func(e *external, r *storagev1alpha1.Repository) (managed.ExternalObservation, error) {
		return e.Observe(ctx, r)
	}
	type want struct {
		obs     managed.ExternalObservation
		errText bool
		keys    []string
	}
	cases := map[string]struct {
		reason string
		seed   map[string]string
		objs   []client.Object
		repo   *storagev1alpha1.Repository
		do     func(e *external, r *storagev1alpha1.Repository) (managed.ExternalObservation, error)
		want   want
	}{
		"Missing": {
			reason: "A repository with no record does not exist yet.",
			repo:   repo("app", "app", ""),
			do: func(e *external, r *storagev1alpha1.Repository) (managed.ExternalObservation, error) {
				return e.Observe(ctx, r)
			},
			want: want{obs: managed.ExternalObservation{ResourceExists: false}},
		},
		"CreateThenObserve": {
			reason: "Create writes the record, after which the repository exists and is up to date.",
			repo:   repo("app", "/app/", ""),
			do: func(e *external, r *storagev1alpha1.Repository) (managed.ExternalObservation, error) {
				if _, err := e.Create(ctx, r); err != nil {
					return managed.ExternalObservation{}, err
				}
				return e.Observe(ctx, r)
			},
			want: want{obs: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true}, keys: []string{"app/repository.yaml"}},
		},
		"PathTaken": {
			reason: "A path holding another repository's record is refused, and the record kept.",
			seed:   map[string]string{"app/repository.yaml": string(withKind(foreign))},
			repo:   repo("app", "app", ""),
			do: func(e *external, r *storagev1alpha1.Repository) (managed.ExternalObservation, error) {
				return e.Observe(ctx, r)
			},
			want: want{errText: true, keys: []string{"app/repository.yaml"}},
		},
		"PathOwned": {
			reason: "A path whose record another object of the same name wrote is refused, and the record kept.",
			seed:   map[string]string{"app/repository.yaml": string(owned)},
			repo:   mine(),
			do:     observe,
			want:   want{errText: true, keys: []string{"app/repository.yaml"}},
		},
		"PathAdopted": {
			reason: "With the adopt annotation the path is taken over: the record is rewritten with this object's UID, then up to date.",
			seed:   map[string]string{"app/repository.yaml": string(owned)},
			repo: mine(func(r *storagev1alpha1.Repository) {
				r.Annotations = map[string]string{storagev1alpha1.AnnotationAdopt: "true"}
			}),
			do: func(e *external, r *storagev1alpha1.Repository) (managed.ExternalObservation, error) {
				obs, err := e.Observe(ctx, r)
				if err != nil || obs.ResourceUpToDate {
					return obs, fmt.Errorf("before the take-over: %+v, %v; want exists and not up to date", obs, err)
				}
				if _, err := e.Update(ctx, r); err != nil {
					return managed.ExternalObservation{}, err
				}
				r.Annotations = nil
				return e.Observe(ctx, r)
			},
			want: want{obs: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true}, keys: []string{"app/repository.yaml"}},
		},
		"PathReadOnly": {
			reason: "A Repository that may only observe reads a path another object owns, writing nothing.",
			seed:   map[string]string{"app/repository.yaml": string(owned)},
			repo: mine(func(r *storagev1alpha1.Repository) {
				r.Spec.ManagementPolicies = xpv2.ManagementPolicies{xpv2.ManagementActionObserve}
			}),
			do:   observe,
			want: want{obs: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true}, keys: []string{"app/repository.yaml"}},
		},
		"PathReadOnlyOtherName": {
			reason: "A Repository that may only observe reads a path whose record names another repository (a catalog rebuilt in another namespace), writing nothing.",
			seed:   map[string]string{"app/repository.yaml": string(withKind(foreign))},
			repo: mine(func(r *storagev1alpha1.Repository) {
				r.Namespace = "recovered"
				r.Spec.ManagementPolicies = xpv2.ManagementPolicies{xpv2.ManagementActionObserve}
			}),
			do:   observe,
			want: want{obs: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true}, keys: []string{"app/repository.yaml"}},
		},
		"LegacyRecord": {
			reason: "A record written before owners were recorded is this object's, and is rewritten with its UID.",
			seed:   map[string]string{"app/repository.yaml": string(legacyRecord)},
			repo:   mine(),
			do:     observe,
			want:   want{obs: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: false}, keys: []string{"app/repository.yaml"}},
		},
		"WipeOutOnlyItsPath": {
			reason: "WipeOut removes the repository's directory and not a sibling sharing its name's start.",
			seed:   map[string]string{"app/repository.yaml": "x", "app/repository/v1/s/dump/config": "x", "app-2/repository.yaml": "y", "metadata.yaml": "z"},
			repo:   repo("app", "app", storagev1alpha1.DeletionPolicyWipeOut),
			do:     wipeOut,
			want:   want{keys: []string{"app-2/repository.yaml", "metadata.yaml"}},
		},
		"WipeOutWaitsForBackup": {
			reason: "WipeOut waits while a backup writes into the repository.",
			seed:   map[string]string{"app/repository.yaml": "x"},
			objs: []client.Object{&storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "apps", Labels: map[string]string{storagev1alpha1.LabelRepository: "app"}},
				Spec: storagev1alpha1.SnapshotSpec{Repository: "app"}, Status: storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotRunning}}},
			repo: repo("app", "app", storagev1alpha1.DeletionPolicyWipeOut),
			do:   wipeOut,
			want: want{errText: true, keys: []string{"app/repository.yaml"}},
		},
		"WipeOutWaitsForPrune": {
			reason: "WipeOut waits while a prune of the repository runs.",
			seed:   map[string]string{"app/repository.yaml": "x"},
			objs:   []client.Object{&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "app-prune", Namespace: "apps", Labels: map[string]string{plan.LabelPruneOf: "app"}}}},
			repo:   repo("app", "app", storagev1alpha1.DeletionPolicyWipeOut),
			do:     wipeOut,
			want:   want{errText: true, keys: []string{"app/repository.yaml"}},
		},
		"WipeOutWaitsForRestore": {
			reason: "WipeOut waits while a restore (or a verification's) reads from the repository, even from another namespace.",
			seed:   map[string]string{"app/repository.yaml": "x"},
			objs: []client.Object{&corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "clone", Namespace: "dr"},
				Spec:   corev1alpha1.RestoreSessionSpec{DataSource: corev1alpha1.RestoreDataSource{Namespace: "apps", Repository: "app"}},
				Status: corev1alpha1.RestoreSessionStatus{Phase: corev1alpha1.RestoreRunning}}},
			repo: repo("app", "app", storagev1alpha1.DeletionPolicyWipeOut),
			do:   wipeOut,
			want: want{errText: true, keys: []string{"app/repository.yaml"}},
		},
		"WipeOutAfterRestore": {
			reason: "A finished restore, or one of another repository of the same name elsewhere, holds nothing back.",
			seed:   map[string]string{"app/repository.yaml": "x"},
			objs: []client.Object{
				&corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "done", Namespace: "apps"},
					Spec:   corev1alpha1.RestoreSessionSpec{DataSource: corev1alpha1.RestoreDataSource{Repository: "app"}},
					Status: corev1alpha1.RestoreSessionStatus{Phase: corev1alpha1.RestoreSucceeded}},
				&corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "elsewhere"},
					Spec:   corev1alpha1.RestoreSessionSpec{DataSource: corev1alpha1.RestoreDataSource{Repository: "app"}},
					Status: corev1alpha1.RestoreSessionStatus{Phase: corev1alpha1.RestoreRunning}},
			},
			repo: repo("app", "app", storagev1alpha1.DeletionPolicyWipeOut),
			do:   wipeOut,
			want: want{},
		},
		"DeleteKeepsData": {
			reason: "The Delete policy keeps the backups.",
			seed:   map[string]string{"app/repository.yaml": "x"},
			repo:   repo("app", "app", storagev1alpha1.DeletionPolicyDelete),
			do:     wipeOut,
			want:   want{keys: []string{"app/repository.yaml"}},
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
			sch := runtime.NewScheme()
			for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apis.AddToScheme} {
				if err := add(sch); err != nil {
					t.Fatal(err)
				}
			}
			e := &external{kube: fake.NewClientBuilder().WithScheme(sch).WithObjects(tc.objs...).WithIndex(&storagev1alpha1.Snapshot{}, storagev1alpha1.SnapshotRepositoryField, storagev1alpha1.SnapshotRepository).Build(), bucket: b, reason: noReason, now: func() time.Time { return stamp }}
			obs, err := tc.do(e, tc.repo)
			if (err != nil) != tc.want.errText {
				t.Fatalf("%s\nerror %v, want error %v", tc.reason, err, tc.want.errText)
			}
			if diff := cmp.Diff(tc.want.obs, obs); diff != "" {
				t.Errorf("%s\nobservation: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want.keys, keys(t, b)); diff != "" {
				t.Errorf("%s\nkeys in the bucket: -want +got:\n%s", tc.reason, diff)
			}
			if c := tc.repo.GetCondition(storagev1alpha1.TypeRepositoryInitialized); c.Status != corev1.ConditionUnknown && !c.LastTransitionTime.Equal(&metav1.Time{Time: stamp}) {
				t.Errorf("%s\nlastTransitionTime %s, want the controller clock's %s", tc.reason, c.LastTransitionTime, stamp)
			}
		})
	}
}

// stamp is the time of the controller's clock in unit tests.
var stamp = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func withKind(b []byte) []byte {
	r := &storagev1alpha1.Repository{}
	_ = yaml.Unmarshal(b, r)
	r.Kind = storagev1alpha1.RepositoryKind
	out, _ := yaml.Marshal(r)
	return out
}
