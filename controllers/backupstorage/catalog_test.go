package backupstorage

import (
	"context"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/stashplane/stashplane/apis"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
)

func TestCatalogFromRecords(t *testing.T) {
	ctx := context.Background()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apis.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	yml := func(o any) string {
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	meta := func(apiVersion string, paths ...string) string {
		m := layout.Metadata{APIVersion: apiVersion, Kind: layout.KindBackendMeta}
		for _, p := range paths {
			m.Repositories = append(m.Repositories, layout.RepositoryLocation{Name: p, Namespace: "prod", Path: p})
		}
		return yml(m)
	}
	repoRecord := func(name, path string) string {
		return yml(&storagev1alpha1.Repository{
			TypeMeta:   metav1.TypeMeta{APIVersion: storagev1alpha1.GroupVersion.String(), Kind: storagev1alpha1.RepositoryKind},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "prod", UID: "uid-in-cluster-a", Labels: map[string]string{corev1alpha1.LabelInvokerName: "app-backup"}},
			Spec: storagev1alpha1.RepositorySpec{Path: path, StorageRef: storagev1alpha1.ObjectReference{Namespace: "ops", Name: "s3"},
				EncryptionSecret: storagev1alpha1.ObjectReference{Name: "pw"}, DeletionPolicy: storagev1alpha1.DeletionPolicyWipeOut,
				Maintenance: &storagev1alpha1.MaintenanceSpec{}},
		})
	}
	snapRecord := func(name, repo string, phase storagev1alpha1.SnapshotPhase) string {
		return yml(&storagev1alpha1.Snapshot{
			TypeMeta:   metav1.TypeMeta{APIVersion: storagev1alpha1.GroupVersion.String(), Kind: storagev1alpha1.SnapshotKind},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "prod", Labels: map[string]string{storagev1alpha1.LabelRepository: repo}},
			Spec:       storagev1alpha1.SnapshotSpec{Repository: repo, Session: "nightly", DeletionPolicy: storagev1alpha1.DeletionPolicyWipeOut},
			Status: storagev1alpha1.SnapshotStatus{Phase: phase, VerificationStatus: storagev1alpha1.SnapshotVerified, VerificationSession: "a-cluster-session",
				Components: map[string]storagev1alpha1.Component{"dump": {Phase: storagev1alpha1.ComponentSucceeded}}},
		})
	}
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Name: "s3", Namespace: "ops"},
		Spec: storagev1alpha1.BackupStorageSpec{
			ManagementPolicies: xpv2.ManagementPolicies{xpv2.ManagementActionObserve},
			Catalog:            &storagev1alpha1.CatalogSpec{Namespace: "recovered"},
		},
	}
	notOurs := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-3", Namespace: "recovered"}, Spec: storagev1alpha1.SnapshotSpec{Repository: "app"}}

	type want struct {
		status *storagev1alpha1.CatalogStatus
		err    string
		// repos and snaps name the objects made in "recovered".
		repos, snaps []string
	}
	cases := map[string]struct {
		reason  string
		records map[string]string
		objects []client.Object
		want    want
	}{
		"Rebuilt": {
			reason: "Each repository the metadata lists is made with its Succeeded Snapshots; a running one, a broken record, a record under the wrong key and a name taken by another object are skipped.",
			records: map[string]string{
				layout.MetadataKey:                             meta(layout.RecordAPIVersion, "prod/app", "prod/gone"),
				"prod/app/repository.yaml":                     repoRecord("app", "prod/app"),
				"prod/app/snapshots/app-1.yaml":                snapRecord("app-1", "app", storagev1alpha1.SnapshotSucceeded),
				"prod/app/snapshots/app-2.yaml":                snapRecord("app-2", "app", storagev1alpha1.SnapshotRunning),
				"prod/app/snapshots/app-3.yaml":                snapRecord("app-3", "app", storagev1alpha1.SnapshotSucceeded),
				"prod/app/snapshots/broken.yaml":               "kind: [",
				"prod/app/snapshots/moved.yaml":                snapRecord("app-1", "app", storagev1alpha1.SnapshotSucceeded),
				"prod/app/snapshots/app-1.json":                "not a record",
				"prod/app/repository/v1/nightly/dump/config":   "restic",
				"prod/app/manifests/app-1/dump.json.gz.unused": "x",
			},
			objects: []client.Object{notOurs},
			want: want{
				status: &storagev1alpha1.CatalogStatus{Repositories: 1, Snapshots: 1, Skipped: []storagev1alpha1.SkippedRecord{
					{Key: "prod/app/snapshots/app-3.yaml", Reason: "recovered/app-3 exists and was not rebuilt from this storage; it is left as it is"},
					{Key: "prod/app/snapshots/broken.yaml", Reason: "the record does not parse as YAML of a Snapshot"},
					{Key: "prod/app/snapshots/moved.yaml", Reason: `the record names snapshot "app-1" of repository "app", not what its key says`},
					{Key: "prod/gone/repository.yaml", Reason: "cannot read the record: not found"},
				}},
				repos: []string{"app"},
				snaps: []string{"app-1", "app-3"},
			},
		},
		"NewerFormat": {
			reason:  "Metadata of a format this Stashplane does not read is refused, and nothing is made.",
			records: map[string]string{layout.MetadataKey: meta("storage.stashplane.io/v2", "prod/app"), "prod/app/repository.yaml": repoRecord("app", "prod/app")},
			want:    want{err: `metadata.yaml is of format "storage.stashplane.io/v2"; this Stashplane reads "storage.stashplane.io/v1alpha1"`},
		},
		"ForeignRepositoryRecord": {
			reason: "A repository record of another kind is skipped.",
			records: map[string]string{
				layout.MetadataKey:         meta(layout.RecordAPIVersion, "prod/app"),
				"prod/app/repository.yaml": snapRecord("app-1", "app", storagev1alpha1.SnapshotSucceeded),
			},
			want: want{status: &storagev1alpha1.CatalogStatus{Skipped: []storagev1alpha1.SkippedRecord{
				{Key: "prod/app/repository.yaml", Reason: `the record is of kind "Snapshot", not Repository`},
			}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := memblob.OpenBucket(nil)
			defer b.Close()
			for k, v := range tc.records {
				if err := b.WriteAll(ctx, k, []byte(v), nil); err != nil {
					t.Fatal(err)
				}
			}
			kube := fake.NewClientBuilder().WithScheme(s).WithObjects(tc.objects...).
				WithStatusSubresource(&storagev1alpha1.Snapshot{}, &storagev1alpha1.Repository{}).Build()
			now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
			c := &catalog{kube: kube, reason: func(err error) (string, string) { return "Unreachable", shortReason(err) }, now: func() time.Time { return now }}
			got, err := c.fromRecords(ctx, b, bs)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tc.want.err, gotErr); diff != "" {
				t.Fatalf("%s\nfromRecords(): -want error, +got:\n%s", tc.reason, diff)
			}
			if got != nil {
				got.LastRebuildTime = nil
			}
			if diff := cmp.Diff(tc.want.status, got); diff != "" {
				t.Errorf("%s\nfromRecords(): -want status, +got:\n%s", tc.reason, diff)
			}
			repos := &storagev1alpha1.RepositoryList{}
			snaps := &storagev1alpha1.SnapshotList{}
			if err := kube.List(ctx, repos, client.InNamespace("recovered")); err != nil {
				t.Fatal(err)
			}
			if err := kube.List(ctx, snaps, client.InNamespace("recovered")); err != nil {
				t.Fatal(err)
			}
			var gotRepos, gotSnaps []string
			for _, r := range repos.Items {
				gotRepos = append(gotRepos, r.Name)
				if r.Spec.DeletionPolicy != storagev1alpha1.DeletionPolicyDelete || len(r.Spec.ManagementPolicies) != 1 || r.Spec.ManagementPolicies[0] != xpv2.ManagementActionObserve ||
					r.Spec.Maintenance != nil || r.Spec.StorageRef != (storagev1alpha1.ObjectReference{Namespace: "ops", Name: "s3"}) ||
					r.Spec.EncryptionSecret != (storagev1alpha1.ObjectReference{Namespace: "recovered", Name: "pw"}) || r.Annotations[AnnotationRebuiltFrom] != "ops/s3" ||
					r.Labels[corev1alpha1.LabelInvokerName] != "" {
					t.Errorf("%s\nrebuilt repository %s is not read only in this cluster: %+v", tc.reason, r.Name, r)
				}
			}
			for _, sn := range snaps.Items {
				gotSnaps = append(gotSnaps, sn.Name)
				if sn.Annotations[AnnotationRebuiltFrom] == "" {
					continue
				}
				if sn.Spec.DeletionPolicy != storagev1alpha1.DeletionPolicyDelete || sn.Spec.ManagementPolicies[0] != xpv2.ManagementActionObserve ||
					sn.Status.Phase != storagev1alpha1.SnapshotSucceeded || len(sn.Status.Components) != 1 ||
					sn.Status.VerificationStatus != storagev1alpha1.SnapshotNotVerified || sn.Status.VerificationSession != "" {
					t.Errorf("%s\nrebuilt snapshot %s: spec %+v, status %+v", tc.reason, sn.Name, sn.Spec, sn.Status)
				}
			}
			if diff := cmp.Diff(tc.want.repos, gotRepos); diff != "" {
				t.Errorf("%s\nrepositories made: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want.snaps, gotSnaps); diff != "" {
				t.Errorf("%s\nsnapshots in the namespace: -want, +got:\n%s", tc.reason, diff)
			}
			if tc.want.status == nil || tc.want.status.Snapshots == 0 {
				return
			}
			// A second pass reads no record of a Snapshot it rebuilt: one
			// spoilt since is neither read nor reported.
			for _, sn := range snaps.Items {
				if sn.Annotations[AnnotationRebuiltFrom] != "" {
					if err := b.WriteAll(ctx, "prod/app/snapshots/"+sn.Name+".yaml", []byte("spoilt"), nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			again, err := c.fromRecords(ctx, b, bs)
			if err != nil {
				t.Fatal(err)
			}
			again.LastRebuildTime = nil
			if diff := cmp.Diff(tc.want.status, again); diff != "" {
				t.Errorf("%s\nsecond fromRecords(): -want status, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// shortReason stands in for the storage error classifier: "not found" for
// a missing key.
func shortReason(err error) string {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return "not found"
	}
	return err.Error()
}
