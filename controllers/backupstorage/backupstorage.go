// Package backupstorage reconciles BackupStorages. A BackupStorage is a
// managed resource whose external resource is metadata.yaml at the root of
// its backend: Observe reads it, Create writes it, Update rewrites it when
// the repositories it lists changed, Delete keeps the data (Delete) or
// removes exactly the storage's prefix (WipeOut) once no run of its
// Repositories reads or writes.
package backupstorage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/storagekind"
	"github.com/stashplane/stashplane/internal/version"
)

// Options configure the controller.
type Options = storagekind.Options

// Setup adds the BackupStorage controllers to the manager.
func Setup(mgr ctrl.Manager, o Options) error {
	name := "backupstorage"
	if o.Reason == nil {
		o.Reason = storagekind.Classify
	}
	r := storagekind.NewReconciler(mgr, name, storagev1alpha1.BackupStorageGroupVersionKind, &connector{kube: mgr.GetClient(), opener: o.Opener, reason: o.Reason, now: o.Now}, o)
	err := ctrl.NewControllerManagedBy(mgr).
		Named(name).
		WithOptions(o.Controller).
		For(&storagev1alpha1.BackupStorage{}, builder.WithPredicates(notOnlyOwnStatus)).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(storagesUsingSecret(mgr.GetClient()))).
		Watches(&storagev1alpha1.Repository{}, storagekind.Gathered{Map: storageOfRepository, After: repositoriesGathered}, builder.WithPredicates(storageViewChanged)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(storageOfAccessorPod)).
		Watches(&storagev1alpha1.BackupStorage{}, handler.EnqueueRequestsFromMapFunc(defaultsOfNamespace(mgr.GetClient()))).
		// A WipeOut waits for the runs of the storage's Repositories.
		Watches(&storagev1alpha1.Snapshot{}, handler.EnqueueRequestsFromMapFunc(deletedStorageOfRun(mgr.GetClient()))).
		Watches(&corev1alpha1.RestoreSession{}, handler.EnqueueRequestsFromMapFunc(deletedStorageOfRun(mgr.GetClient()))).
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(deletedStorageOfRun(mgr.GetClient()))).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up %s controller: %w", name, err)
	}
	if err := setupCatalog(mgr, o); err != nil {
		return err
	}
	return setupAccessor(mgr, o)
}

// storagesUsingSecret maps a Secret to the BackupStorages of its namespace
// that name it (as backend secret) or run an accessor with it, so a fixed
// Secret recovers them at once.
func storagesUsingSecret(c client.Client) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &storagev1alpha1.BackupStorageList{}
		if err := c.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, bs := range list.Items {
			if bs.Spec.Storage.SecretName() == o.GetName() || accessor.Name(&bs) == o.GetName() {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bs)})
			}
		}
		return out
	}
}

// defaultsOfNamespace maps a BackupStorage to the other default storages
// of its namespace, so a conflict clears as soon as one gives way.
func defaultsOfNamespace(c client.Client) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &storagev1alpha1.BackupStorageList{}
		if err := c.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, bs := range list.Items {
			if bs.Spec.Default && bs.Name != o.GetName() {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bs)})
			}
		}
		return out
	}
}

// deletedStorageOfRun maps a run (a backup's Snapshot, a restore, a prune
// Job) to the BackupStorage its Repository lives in when that storage is
// being deleted: its WipeOut waited for the run.
func deletedStorageOfRun(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		key, ok := plan.RepositoryOfRun(o)
		repo, bs := &storagev1alpha1.Repository{}, &storagev1alpha1.BackupStorage{}
		// Only read, on every event of a run: the cache's own objects.
		if !ok || c.Get(ctx, key, repo, client.UnsafeDisableDeepCopy) != nil || c.Get(ctx, repo.StorageKey(), bs, client.UnsafeDisableDeepCopy) != nil || bs.DeletionTimestamp == nil {
			return nil
		}
		return []reconcile.Request{{NamespacedName: repo.StorageKey()}}
	}
}

// repositoriesGathered is how long a storage waits after a change of one
// of its Repositories before it observes them all: a thousand Repositories
// made or readied together are then a few observations, each listing them
// and writing a status with all of them, instead of one each.
const repositoriesGathered = 2 * time.Second

func storageOfRepository(_ context.Context, o client.Object) []reconcile.Request {
	repo, ok := o.(*storagev1alpha1.Repository)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: repo.StorageKey()}}
}

// storageViewChanged passes the Repository events that change what its
// storage reports of it or records in the storage (a Repository added,
// moved, deleted, resized, readied or failing): the others, such as each
// Snapshot counted or each backup's time, would make the storage read its
// record and list every Repository again for nothing, which on a busy
// cluster is what keeps one storage at the head of its queue.
var storageViewChanged = storagekind.ChangedIn(func(r *storagev1alpha1.Repository) any {
	return struct {
		Storage  types.NamespacedName
		Deleting bool
		Info     []storagev1alpha1.RepositoryInfo
	}{r.StorageKey(), r.DeletionTimestamp != nil, repositoryInfos([]storagev1alpha1.Repository{*r})}
})

// notOnlyOwnStatus drops the updates of a BackupStorage that change only
// what this controller writes into its status: with a thousand
// Repositories that status is large, and each write of it would come back
// as an observation that reads the record and lists every Repository
// again to find nothing to do. The catalog's status and condition, the
// spec, metadata and deletion pass.
var notOnlyOwnStatus = storagekind.ChangedIn(func(bs *storagev1alpha1.BackupStorage) any { return withoutOwnStatus(bs) })

// ownConditions are the condition types this controller (and the managed
// reconciler under it) sets.
var ownConditions = map[xpv2.ConditionType]bool{
	storagev1alpha1.TypeBackendSecretFound: true, storagev1alpha1.TypeBackendInitialized: true,
	xpv2.TypeReady: true, xpv2.TypeSynced: true,
}

// withoutOwnStatus is a shallow copy of bs without what this controller
// writes and what changes with every write; it is only compared.
func withoutOwnStatus(bs *storagev1alpha1.BackupStorage) *storagev1alpha1.BackupStorage {
	c := *bs
	c.ResourceVersion, c.ManagedFields = "", nil
	c.Status.Phase, c.Status.TotalSize, c.Status.Repositories, c.Status.BrokerEndpoint = "", "", nil, ""
	c.Status.Conditions = nil
	for _, cond := range bs.Status.Conditions {
		if !ownConditions[cond.Type] {
			c.Status.Conditions = append(c.Status.Conditions, cond)
		}
	}
	return &c
}

// storageOfAccessorPod maps an accessor pod to its BackupStorage, so the
// storage is observed as soon as its accessor serves.
func storageOfAccessorPod(_ context.Context, o client.Object) []reconcile.Request {
	l := o.GetLabels()
	if l[accessor.LabelComponent] != accessor.Component || l[accessor.LabelBackupStorage] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: l[accessor.LabelBackupStorage]}}}
}

type connector struct {
	kube   client.Client
	opener *storagekind.Opener
	reason func(error) (string, string)
	now    func() time.Time
}

func (c *connector) Connect(ctx context.Context, mg resource.Managed) (managed.ExternalClient, error) {
	bs, ok := mg.(*storagev1alpha1.BackupStorage)
	if !ok {
		return nil, errors.New("managed resource is not a BackupStorage")
	}
	var nf *storagekind.ErrSecretNotFound
	if _, err := c.opener.Secret(ctx, bs); errors.As(err, &nf) {
		bs.SetConditions(secretCondition(false, err.Error(), c.now()))
		bs.Status.Phase = storagev1alpha1.BackupStorageNotReady
		return nil, err
	} else if err != nil {
		return nil, err
	}
	bs.SetConditions(secretCondition(true, "", c.now()))
	if other, err := defaultConflict(ctx, c.kube, bs); err != nil {
		return nil, err
	} else if other != "" {
		msg := fmt.Sprintf("backupstorage %q is already the default of namespace %q; unset default on one of them", other, bs.Namespace)
		bs.SetConditions(initializedCondition(false, "DefaultConflict", msg, c.now()), xpv2.Unavailable())
		bs.Status.Phase = storagev1alpha1.BackupStorageNotReady
		return nil, errors.New(msg)
	}
	b, err := c.opener.Open(ctx, bs)
	if err != nil {
		reason, msg := c.reason(err)
		bs.SetConditions(initializedCondition(false, reason, msg, c.now()))
		bs.Status.Phase = storagev1alpha1.BackupStorageNotReady
		return nil, errors.New(msg)
	}
	return &external{kube: c.kube, bucket: b, reason: c.reason, now: c.now}, nil
}

// defaultConflict returns the name of an older BackupStorage that is
// already the default of bs's namespace, when bs claims to be the default
// too. The older one stays the default; the newer one is refused.
func defaultConflict(ctx context.Context, c client.Client, bs *storagev1alpha1.BackupStorage) (string, error) {
	if !bs.Spec.Default {
		return "", nil
	}
	list := &storagev1alpha1.BackupStorageList{}
	if err := c.List(ctx, list, client.InNamespace(bs.Namespace)); err != nil {
		return "", fmt.Errorf("cannot list backupstorages: %w", err)
	}
	if bs.IsDefaultOf(list.Items) {
		return "", nil
	}
	for i := range list.Items {
		if o := &list.Items[i]; o.UID != bs.UID && o.IsDefaultOf(list.Items) {
			return o.Name, nil
		}
	}
	return "", nil
}

type external struct {
	kube   client.Client
	bucket *blob.Bucket
	reason func(error) (string, string)
	now    func() time.Time
}

func (e *external) Disconnect(context.Context) error { return e.bucket.Close() }

// fail records a backend error on the BackupStorage and returns it without
// anything secret in it.
func (e *external) fail(bs *storagev1alpha1.BackupStorage, err error) error {
	reason, msg := e.reason(err)
	bs.SetConditions(initializedCondition(false, reason, msg, e.now()), xpv2.Unavailable())
	bs.Status.Phase = storagev1alpha1.BackupStorageNotReady
	return errors.New(msg)
}

func (e *external) Observe(ctx context.Context, mg resource.Managed) (managed.ExternalObservation, error) {
	bs := mg.(*storagev1alpha1.BackupStorage)
	repos, err := repositoriesOf(ctx, e.kube, bs)
	if err != nil {
		return managed.ExternalObservation{}, err
	}
	bs.Status.Repositories = repositoryInfos(repos)
	if err := e.observeBroker(ctx, bs); err != nil {
		return managed.ExternalObservation{}, err
	}
	data, err := e.bucket.ReadAll(ctx, layout.MetadataKey)
	if gcerrors.Code(err) == gcerrors.NotFound {
		// A missing bucket reads as a missing key on some backends; listing
		// tells them apart, so a missing bucket is reported, not "created".
		if _, lerr := e.bucket.List(&blob.ListOptions{}).Next(ctx); lerr != nil && lerr != io.EOF {
			return managed.ExternalObservation{}, e.fail(bs, lerr)
		}
		bs.SetConditions(initializedCondition(false, "StorageRecordNotFound",
			fmt.Sprintf("%s does not exist in the backend yet; it is written unless the management policies only observe", layout.MetadataKey), e.now()))
		bs.Status.Phase = storagev1alpha1.BackupStorageNotReady
		return managed.ExternalObservation{ResourceExists: false}, nil
	}
	if err != nil {
		return managed.ExternalObservation{}, e.fail(bs, err)
	}
	meta := &layout.Metadata{}
	if err := yaml.Unmarshal(data, meta); err != nil || meta.Kind != layout.KindBackendMeta {
		msg := fmt.Sprintf("%s at the storage root is not a Stashplane storage record; refusing to overwrite it", layout.MetadataKey)
		bs.SetConditions(initializedCondition(false, "ForeignMetadata", msg, e.now()), xpv2.Unavailable())
		bs.Status.Phase = storagev1alpha1.BackupStorageNotReady
		return managed.ExternalObservation{}, errors.New(msg)
	}
	if meta.Owner != "" && meta.Owner != string(bs.UID) {
		switch {
		case observeOnly(bs):
			// Read, never written: nothing of the other owner's changes.
			bs.SetConditions(initializedCondition(true, "AdoptedReadOnly", fmt.Sprintf("the storage belongs to BackupStorage object uid %s; read only, as managementPolicies say", meta.Owner), e.now()), xpv2.Available())
			bs.Status.Phase = storagev1alpha1.BackupStorageReady
			return managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true}, nil
		case bs.Annotations[storagev1alpha1.AnnotationAdopt] != "true":
			msg := fmt.Sprintf("the storage's %s belongs to BackupStorage object uid %s (another cluster's, or one deleted and made again), not to this one (uid %s); refusing to write into it: annotate this BackupStorage %s=true to take it over, or set managementPolicies to [Observe] to read it only",
				layout.MetadataKey, meta.Owner, bs.UID, storagev1alpha1.AnnotationAdopt)
			bs.SetConditions(initializedCondition(false, "StorageOwned", msg, e.now()), xpv2.Unavailable())
			bs.Status.Phase = storagev1alpha1.BackupStorageNotReady
			return managed.ExternalObservation{}, errors.New(msg)
		}
		// Taken over: Update rewrites the record with this object's UID.
	}
	bs.SetConditions(initializedCondition(true, string(storagev1alpha1.ReasonBackendInitializationSucceeded), "", e.now()), xpv2.Available())
	bs.Status.Phase = storagev1alpha1.BackupStorageReady
	return managed.ExternalObservation{
		ResourceExists:   true,
		ResourceUpToDate: meta.Owner == string(bs.UID) && sameLocations(meta.Repositories, locations(repos)),
	}, nil
}

// observeBroker records where a brokered storage's broker serves, for the
// agents of other namespaces, which read it from the storage; empty while
// it does not serve.
func (e *external) observeBroker(ctx context.Context, bs *storagev1alpha1.BackupStorage) error {
	bs.Status.BrokerEndpoint = ""
	if !bs.Brokered() {
		return nil
	}
	addr, _, err := accessor.Endpoint(ctx, e.kube, bs)
	var notReady *accessor.ErrNotReady
	if errors.As(err, &notReady) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot find the storage's broker: %w", err)
	}
	bs.Status.BrokerEndpoint = addr
	return nil
}

// observeOnly says whether the BackupStorage may only be read: its
// managementPolicies are [Observe].
func observeOnly(bs *storagev1alpha1.BackupStorage) bool {
	p := bs.GetManagementPolicies()
	return len(p) == 1 && p[0] == xpv2.ManagementActionObserve
}

func (e *external) Create(ctx context.Context, mg resource.Managed) (managed.ExternalCreation, error) {
	bs := mg.(*storagev1alpha1.BackupStorage)
	return managed.ExternalCreation{}, e.write(ctx, bs, true)
}

func (e *external) Update(ctx context.Context, mg resource.Managed) (managed.ExternalUpdate, error) {
	bs := mg.(*storagev1alpha1.BackupStorage)
	return managed.ExternalUpdate{}, e.write(ctx, bs, false)
}

// write records metadata.yaml. On creation it refuses to replace a record
// another writer made meanwhile.
func (e *external) write(ctx context.Context, bs *storagev1alpha1.BackupStorage, create bool) error {
	repos, err := repositoriesOf(ctx, e.kube, bs)
	if err != nil {
		return err
	}
	initiated := e.now().UTC().Truncate(time.Second)
	if !create {
		if old, err := e.bucket.ReadAll(ctx, layout.MetadataKey); err == nil {
			prev := &layout.Metadata{}
			if yaml.Unmarshal(old, prev) == nil && !prev.Operator.Initiated.IsZero() {
				initiated = prev.Operator.Initiated
			}
		}
	}
	meta := layout.Metadata{
		APIVersion: layout.RecordAPIVersion, Kind: layout.KindBackendMeta,
		Operator:     layout.OperatorInfo{Name: layout.OperatorName, Version: version.Version, Initiated: initiated},
		Owner:        string(bs.UID),
		Repositories: locations(repos),
	}
	data, err := yaml.Marshal(meta)
	if err != nil {
		return fmt.Errorf("cannot encode %s: %w", layout.MetadataKey, err)
	}
	err = e.bucket.WriteAll(ctx, layout.MetadataKey, data, &blob.WriterOptions{ContentType: "application/yaml", IfNotExist: create})
	if create && gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return nil
	}
	if err != nil {
		return e.fail(bs, err)
	}
	return nil
}

func (e *external) Delete(ctx context.Context, mg resource.Managed) (managed.ExternalDelete, error) {
	bs := mg.(*storagev1alpha1.BackupStorage)
	bs.SetConditions(xpv2.Deleting())
	if bs.Spec.DeletionPolicy != storagev1alpha1.DeletionPolicyWipeOut {
		return managed.ExternalDelete{}, nil
	}
	// A run of one of its Repositories would fail half way, or leave a
	// part of what it writes behind: the WipeOut waits for it, as a
	// Repository's own does.
	if busy, err := e.busy(ctx, bs); err != nil || busy != "" {
		if busy != "" {
			err = fmt.Errorf("cannot wipe out backupstorage %q yet: %s", bs.Name, busy)
		}
		return managed.ExternalDelete{}, err
	}
	// The bucket is scoped to the storage's prefix: this removes exactly it.
	return managed.ExternalDelete{}, layout.Wipe(ctx, e.bucket, "")
}

// busy says which run of which of the storage's Repositories (those being
// deleted too) reads or writes now, or "" when none does.
func (e *external) busy(ctx context.Context, bs *storagev1alpha1.BackupStorage) (string, error) {
	list := &storagev1alpha1.RepositoryList{}
	if err := e.kube.List(ctx, list); err != nil {
		return "", fmt.Errorf("cannot list repositories: %w", err)
	}
	for i := range list.Items {
		r := &list.Items[i]
		if r.StorageKey() != (types.NamespacedName{Namespace: bs.Namespace, Name: bs.Name}) {
			continue
		}
		busy, err := plan.RepositoryBusy(ctx, e.kube, r)
		if err != nil || busy != "" {
			return fmt.Sprintf("repository %s/%s: %s", r.Namespace, r.Name, busy), err
		}
	}
	return "", nil
}

func secretCondition(found bool, msg string, now time.Time) xpv2.Condition {
	c := xpv2.Condition{Type: storagev1alpha1.TypeBackendSecretFound, Status: corev1.ConditionTrue,
		Reason: storagev1alpha1.ReasonBackendSecretAvailable, LastTransitionTime: metav1.NewTime(now)}
	if !found {
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, storagev1alpha1.ReasonBackendSecretNotFound, msg
	}
	return c
}

func initializedCondition(ok bool, reason, msg string, now time.Time) xpv2.Condition {
	c := xpv2.Condition{Type: storagev1alpha1.TypeBackendInitialized, Status: corev1.ConditionTrue,
		Reason: xpv2.ConditionReason(reason), Message: msg, LastTransitionTime: metav1.NewTime(now)}
	if !ok {
		c.Status = corev1.ConditionFalse
	}
	return c
}
