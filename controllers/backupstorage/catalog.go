package backupstorage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"gocloud.dev/blob"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/cachestore"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/storagekind"
	"github.com/stashplane/stashplane/internal/usage"
)

// The catalog controller rebuilds, for a BackupStorage with spec.catalog,
// the Repositories and Snapshots that the storage's records name: the
// storage's metadata.yaml lists its repositories, each repository.yaml
// holds the Repository as its cluster had it, and each
// snapshots/<name>.yaml a Snapshot with the restic snapshots of its
// components. The objects are made read only (managementPolicies
// [Observe], deletionPolicy Delete) and only where none of that name is, so
// the records, the data and the objects already there are never changed.

// AnnotationRebuiltFrom, on a Repository or Snapshot, names the
// BackupStorage (namespace/name) whose records it was rebuilt from.
const AnnotationRebuiltFrom = "storage.stashplane.io/rebuilt-from"

// catalogInterval is how often a storage's records are read again, so
// Snapshots another cluster still writes appear here too (a warm standby).
const catalogInterval = 5 * time.Minute

// maxSkipped bounds the skipped records listed in status.
const maxSkipped = 20

// Catalog condition reasons.
const (
	ReasonCatalogRebuilt           = "CatalogRebuilt"
	ReasonCatalogStorageNotReady   = "StorageNotReady"
	ReasonCatalogNamespaceNotFound = "NamespaceNotFound"
	ReasonCatalogNotAllowed        = "NamespaceNotAllowed"
	ReasonCatalogMetadataInvalid   = "MetadataInvalid"
)

func setupCatalog(mgr ctrl.Manager, o Options) error {
	name := "backupstorage-catalog"
	r := &catalog{kube: mgr.GetClient(), opener: o.Opener, reason: o.Reason, events: mgr.GetEventRecorderFor(name), now: o.Now}
	err := ctrl.NewControllerManagedBy(mgr).
		Named(name).
		WithOptions(o.Controller).
		// Only a change of the spec starts a pass: the pass's own status
		// write (and the storage controller's) must not start the next, or
		// the records would be read without pause. Passes repeat on their
		// own (RequeueAfter).
		For(&storagev1alpha1.BackupStorage{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			bs, ok := o.(*storagev1alpha1.BackupStorage)
			return ok && bs.Spec.Catalog != nil
		}), predicate.GenerationChangedPredicate{})).
		// A namespace made or labelled may be the one a catalog waits for.
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(catalogsInNamespace(mgr.GetClient()))).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up %s controller: %w", name, err)
	}
	return nil
}

// catalogsInNamespace maps a namespace to the storages whose catalog is
// rebuilt in it.
func catalogsInNamespace(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &storagev1alpha1.BackupStorageList{}
		if err := c.List(ctx, list); err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, bs := range list.Items {
			if bs.Spec.Catalog != nil && bs.Spec.Catalog.Namespace == o.GetName() {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bs)})
			}
		}
		return out
	}
}

type catalog struct {
	kube   client.Client
	opener *storagekind.Opener
	reason func(error) (string, string)
	events record.EventRecorder
	now    func() time.Time
}

// refused is a reason the catalog cannot be rebuilt now.
type refused struct{ reason, msg string }

func (r *refused) Error() string { return r.msg }

func (c *catalog) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bs := &storagev1alpha1.BackupStorage{}
	if err := c.kube.Get(ctx, req.NamespacedName, bs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if bs.Spec.Catalog == nil || bs.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	st, err := c.rebuild(ctx, bs)
	cond := xpv2.Condition{Type: storagev1alpha1.TypeCatalogRebuilt, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(c.now())}
	var rf *refused
	switch {
	case errors.As(err, &rf):
		cond.Status, cond.Reason, cond.Message = corev1.ConditionFalse, xpv2.ConditionReason(rf.reason), rf.msg
	case err != nil:
		return ctrl.Result{}, err
	default:
		cond.Reason = ReasonCatalogRebuilt
		cond.Message = fmt.Sprintf("%d repositories and %d snapshots in namespace %q", st.Repositories, st.Snapshots, bs.Spec.Catalog.Namespace)
		if len(st.Skipped) > 0 {
			cond.Message += fmt.Sprintf("; %d records skipped (status.catalog.skipped)", len(st.Skipped))
		}
		bs.Status.Catalog = st
	}
	old := bs.GetCondition(storagev1alpha1.TypeCatalogRebuilt)
	bs.SetConditions(cond)
	if err := c.kube.Status().Update(ctx, bs); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot update backupstorage status: %w", err)
	}
	if old.Reason != cond.Reason || old.Message != cond.Message {
		kind := corev1.EventTypeNormal
		if cond.Status != corev1.ConditionTrue || (st != nil && len(st.Skipped) > 0) {
			kind = corev1.EventTypeWarning
		}
		c.events.Event(bs, kind, string(cond.Reason), cond.Message)
	}
	if rf != nil && rf.reason == ReasonCatalogStorageNotReady {
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	return ctrl.Result{RequeueAfter: catalogInterval}, nil
}

// rebuild makes what is missing of the storage's catalog and returns what
// it found.
func (c *catalog) rebuild(ctx context.Context, bs *storagev1alpha1.BackupStorage) (*storagev1alpha1.CatalogStatus, error) {
	ns := bs.Spec.Catalog.Namespace
	if bs.GetCondition(storagev1alpha1.TypeBackendInitialized).Status != corev1.ConditionTrue {
		return nil, &refused{ReasonCatalogStorageNotReady, "the storage's records cannot be read until it is initialized (BackendInitialized)"}
	}
	if err := c.kube.Get(ctx, client.ObjectKey{Name: ns}, cachestore.Metadata(corev1.SchemeGroupVersion.WithKind("Namespace"))); kerrors.IsNotFound(err) {
		return nil, &refused{ReasonCatalogNamespaceNotFound, fmt.Sprintf("namespace %q of spec.catalog does not exist; create it", ns)}
	} else if err != nil {
		return nil, fmt.Errorf("cannot get namespace: %w", err)
	}
	ok, why, err := usage.Allowed(ctx, c.kube, bs.Spec.UsagePolicy, bs.Namespace, ns)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &refused{ReasonCatalogNotAllowed, fmt.Sprintf("the storage's usagePolicy does not admit namespace %q of spec.catalog: %s", ns, why)}
	}
	b, err := c.opener.Open(ctx, bs)
	if err != nil {
		reason, msg := c.reason(err)
		return nil, &refused{reason, msg}
	}
	defer b.Close()
	return c.fromRecords(ctx, b, bs)
}

// fromRecords rebuilds the catalog from the records in b.
func (c *catalog) fromRecords(ctx context.Context, b *blob.Bucket, bs *storagev1alpha1.BackupStorage) (*storagev1alpha1.CatalogStatus, error) {
	data, err := b.ReadAll(ctx, layout.MetadataKey)
	if err != nil {
		reason, msg := c.reason(err)
		return nil, &refused{reason, msg}
	}
	meta := &layout.Metadata{}
	if err := yaml.Unmarshal(data, meta); err != nil || meta.Kind != layout.KindBackendMeta {
		return nil, &refused{ReasonCatalogMetadataInvalid, fmt.Sprintf("%s is not a Stashplane storage record", layout.MetadataKey)}
	}
	if meta.APIVersion != layout.RecordAPIVersion {
		return nil, &refused{ReasonCatalogMetadataInvalid, fmt.Sprintf("%s is of format %q; this Stashplane reads %q", layout.MetadataKey, meta.APIVersion, layout.RecordAPIVersion)}
	}
	st := &storagev1alpha1.CatalogStatus{LastRebuildTime: &metav1.Time{Time: c.now()}}
	skip := func(key, reason string) {
		if len(st.Skipped) < maxSkipped {
			st.Skipped = append(st.Skipped, storagev1alpha1.SkippedRecord{Key: key, Reason: reason})
		}
	}
	for _, loc := range meta.Repositories {
		repoPath := layout.CleanPath(loc.Path)
		key := layout.RepositoryKey(repoPath)
		repo, why, err := c.repository(ctx, b, bs, key)
		if err != nil {
			return nil, err
		}
		if why != "" {
			skip(key, why)
			continue
		}
		st.Repositories++
		n, err := c.snapshots(ctx, b, bs, repo, repoPath, skip)
		if err != nil {
			return nil, err
		}
		st.Snapshots += n
	}
	return st, nil
}

// repository makes the Repository a record names, unless one of its name is
// there already. It returns the Repository, or why the record was skipped.
func (c *catalog) repository(ctx context.Context, b *blob.Bucket, bs *storagev1alpha1.BackupStorage, key string) (*storagev1alpha1.Repository, string, error) {
	data, err := b.ReadAll(ctx, key)
	if err != nil {
		_, msg := c.reason(err)
		return nil, "cannot read the record: " + msg, nil
	}
	rec := &storagev1alpha1.Repository{}
	if why := readRecord(data, rec, storagev1alpha1.RepositoryKind); why != "" {
		return nil, why, nil
	}
	if rec.Name == "" {
		return nil, "the record names no repository", nil
	}
	cat := bs.Spec.Catalog
	repo := &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{
			Name: rec.Name, Namespace: cat.Namespace, Labels: withoutInvoker(rec.Labels),
			Annotations: map[string]string{AnnotationRebuiltFrom: bs.Namespace + "/" + bs.Name},
		},
		Spec: rec.Spec,
	}
	repo.Spec.StorageRef = storagev1alpha1.ObjectReference{Namespace: bs.Namespace, Name: bs.Name}
	repo.Spec.EncryptionSecret = storagev1alpha1.ObjectReference{Namespace: cat.Namespace, Name: rec.Spec.EncryptionSecret.Name}
	if cat.EncryptionSecret != nil {
		repo.Spec.EncryptionSecret = *cat.EncryptionSecret
		if repo.Spec.EncryptionSecret.Namespace == "" {
			repo.Spec.EncryptionSecret.Namespace = cat.Namespace
		}
	}
	repo.Spec.DeletionPolicy = storagev1alpha1.DeletionPolicyDelete
	repo.Spec.ManagementPolicies = xpv2.ManagementPolicies{xpv2.ManagementActionObserve}
	// The other cluster's workload is not here, and no prune may write
	// into a storage this cluster only reads.
	repo.Spec.AppRef, repo.Spec.Maintenance, repo.Spec.Paused = nil, nil, false
	if why, err := c.ensure(ctx, repo, &storagev1alpha1.Repository{}, bs); err != nil || why != "" {
		return nil, why, err
	}
	return repo, "", nil
}

// snapshots makes the Snapshots of a rebuilt Repository that its records
// name and that succeeded, and returns how many of them exist.
func (c *catalog) snapshots(ctx context.Context, b *blob.Bucket, bs *storagev1alpha1.BackupStorage, repo *storagev1alpha1.Repository, repoPath string, skip func(key, reason string)) (int32, error) {
	prefix := path.Dir(layout.SnapshotKey(repoPath, "x")) + "/"
	var keys []string
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_, msg := c.reason(err)
			skip(prefix, "cannot list the snapshot records: "+msg)
			return 0, nil
		}
		if !obj.IsDir && strings.HasSuffix(obj.Key, ".yaml") {
			keys = append(keys, obj.Key)
		}
	}
	sort.Strings(keys)
	// Snapshots rebuilt by an earlier pass are counted without reading
	// their records again: a busy storage holds thousands.
	have := &storagev1alpha1.SnapshotList{}
	if err := c.kube.List(ctx, have, client.InNamespace(repo.Namespace), client.MatchingLabels{storagev1alpha1.LabelRepository: repo.Name}); err != nil {
		return 0, fmt.Errorf("cannot list snapshots: %w", err)
	}
	rebuilt := map[string]bool{}
	for _, s := range have.Items {
		if s.Annotations[AnnotationRebuiltFrom] == bs.Namespace+"/"+bs.Name && len(s.Status.Components) > 0 {
			rebuilt[s.Name+".yaml"] = true
		}
	}
	var n int32
	for _, key := range keys {
		if rebuilt[path.Base(key)] {
			n++
			continue
		}
		data, err := b.ReadAll(ctx, key)
		if err != nil {
			_, msg := c.reason(err)
			skip(key, "cannot read the record: "+msg)
			continue
		}
		rec := &storagev1alpha1.Snapshot{}
		if why := readRecord(data, rec, storagev1alpha1.SnapshotKind); why != "" {
			skip(key, why)
			continue
		}
		if rec.Name+".yaml" != path.Base(key) || rec.Spec.Repository != repo.Name {
			skip(key, fmt.Sprintf("the record names snapshot %q of repository %q, not what its key says", rec.Name, rec.Spec.Repository))
			continue
		}
		if rec.Status.Phase != storagev1alpha1.SnapshotSucceeded {
			// Nothing to restore from (yet): a Snapshot still running in
			// the cluster that writes the storage appears once it is done.
			continue
		}
		s := &storagev1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{
				Name: rec.Name, Namespace: repo.Namespace, Labels: withoutInvoker(rec.Labels),
				Annotations: map[string]string{AnnotationRebuiltFrom: bs.Namespace + "/" + bs.Name},
			},
			Spec: rec.Spec,
		}
		s.Spec.DeletionPolicy = storagev1alpha1.DeletionPolicyDelete
		s.Spec.ManagementPolicies = xpv2.ManagementPolicies{xpv2.ManagementActionObserve}
		s.Spec.Paused = false
		s.Status = rec.Status
		// A verdict recorded in storage is another cluster's word, which
		// nothing here can check: the rebuilt Snapshot is verified anew.
		s.Status.VerificationStatus = storagev1alpha1.SnapshotNotVerified
		s.Status.VerificationSession, s.Status.VerificationTime = "", nil
		s.Status.RestoreDuration, s.Status.BytesRestored = "", 0
		s.Status.Conditions = nil
		why, err := c.ensure(ctx, s, &storagev1alpha1.Snapshot{}, bs)
		if err != nil {
			return 0, err
		}
		if why != "" {
			skip(key, why)
			continue
		}
		n++
	}
	return n, nil
}

// withoutInvoker drops the label naming the BackupConfiguration that
// composed an object: that configuration, its account and its schedules
// are the lost cluster's, not this one's.
func withoutInvoker(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if k != corev1alpha1.LabelInvokerName {
			out[k] = v
		}
	}
	return out
}

// readRecord decodes a record and says why it cannot be used: it does not
// parse, is of another kind, or of a format this Stashplane does not read.
func readRecord(data []byte, into client.Object, kind string) string {
	if err := yaml.Unmarshal(data, into); err != nil {
		return "the record does not parse as YAML of a " + kind
	}
	apiVersion, got := into.GetObjectKind().GroupVersionKind().ToAPIVersionAndKind()
	if got != kind {
		return fmt.Sprintf("the record is of kind %q, not %s", got, kind)
	}
	if apiVersion != storagev1alpha1.GroupVersion.String() {
		return fmt.Sprintf("the record is of format %q; this Stashplane reads %q", apiVersion, storagev1alpha1.GroupVersion.String())
	}
	return ""
}

// ensure creates want, with its status, unless an object of its name
// exists: one rebuilt from this storage is kept as it is (its verdicts are
// this cluster's), any other is left alone and the record skipped.
func (c *catalog) ensure(ctx context.Context, want, have client.Object, bs *storagev1alpha1.BackupStorage) (string, error) {
	recorded := want.DeepCopyObject().(client.Object)
	err := c.kube.Get(ctx, client.ObjectKeyFromObject(want), have)
	switch {
	case err == nil && have.GetAnnotations()[AnnotationRebuiltFrom] != bs.Namespace+"/"+bs.Name:
		return fmt.Sprintf("%s/%s exists and was not rebuilt from this storage; it is left as it is", want.GetNamespace(), want.GetName()), nil
	case kerrors.IsNotFound(err):
		if err := c.kube.Create(ctx, want); kerrors.IsInvalid(err) {
			return "the record does not make a valid object: " + err.Error(), nil
		} else if err != nil && !kerrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("cannot create %s: %w", want.GetName(), err)
		}
	case err != nil:
		return "", fmt.Errorf("cannot get %s: %w", want.GetName(), err)
	}
	rec, ok := recorded.(*storagev1alpha1.Snapshot)
	if !ok {
		return "", nil
	}
	// A Snapshot's status is written after the object is made; until it
	// holds the recorded components (a write lost to a conflict with the
	// Snapshot controller, or a provider stopped in between) it is written
	// again.
	return "", retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s := &storagev1alpha1.Snapshot{}
		if err := c.kube.Get(ctx, client.ObjectKeyFromObject(rec), s); err != nil {
			return err
		}
		if len(s.Status.Components) > 0 {
			return nil
		}
		s.Status = rec.Status
		if err := c.kube.Status().Update(ctx, s); err != nil {
			return fmt.Errorf("cannot record the status of snapshot %s: %w", s.Name, err)
		}
		return nil
	})
}
