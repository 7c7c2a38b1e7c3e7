// Package repository reconciles Repositories. A Repository is a managed
// resource whose external resource is <path>/repository.yaml in its
// BackupStorage's backend. Before anything is written the controller checks
// what a user can get wrong: the storage exists, admits the Repository's
// namespace and is initialised; the encryption Secret holds a password; no
// other Repository of the storage overlaps its path.
package repository

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/cachestore"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/storagekind"
	"github.com/stashplane/stashplane/internal/usage"
)

// PasswordKey is the key of the restic password in a Repository's
// encryption Secret.
const PasswordKey = "RESTIC_PASSWORD"

// Options configure the controller.
type Options = storagekind.Options

// Setup adds the Repository controller to the manager.
func Setup(mgr ctrl.Manager, o Options) error {
	name := "repository"
	r := storagekind.NewReconciler(mgr, name, storagev1alpha1.RepositoryGroupVersionKind, &connector{kube: mgr.GetClient(), cache: mgr.GetCache(), opener: o.Opener, reason: o.Reason, now: o.Now}, o)
	err := ctrl.NewControllerManagedBy(mgr).
		Named(name).
		WithOptions(o.Controller).
		For(&storagev1alpha1.Repository{}, builder.WithPredicates(notOnlyOwnStatus)).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(repositoriesUsingSecret(mgr.GetClient()))).
		Watches(&storagev1alpha1.BackupStorage{}, handler.EnqueueRequestsFromMapFunc(repositoriesOfStorage(mgr.GetClient())), builder.WithPredicates(storageChanged)).
		Watches(&storagev1alpha1.Snapshot{}, snapshotEvents, builder.WithPredicates(snapshotChanged)).
		// A WipeOut waits for the restores and prunes of the Repository.
		Watches(&corev1alpha1.RestoreSession{}, handler.EnqueueRequestsFromMapFunc(deletedRepositoryOfRun(mgr.GetClient()))).
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(deletedRepositoryOfRun(mgr.GetClient()))).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up %s controller: %w", name, err)
	}
	return nil
}

// deletedRepositoryOfRun maps a run (a restore, a prune Job) to the
// Repository it uses when that Repository is being deleted: its WipeOut
// waited for the run (plan.RepositoryBusy).
func deletedRepositoryOfRun(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		key, ok := plan.RepositoryOfRun(o)
		repo := &storagev1alpha1.Repository{}
		if !ok || c.Get(ctx, key, repo) != nil || repo.DeletionTimestamp == nil {
			return nil
		}
		return []reconcile.Request{{NamespacedName: key}}
	}
}

func repositoriesUsingSecret(c client.Client) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &storagev1alpha1.RepositoryList{}
		if err := c.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, r := range list.Items {
			if r.Spec.EncryptionSecret.Name == o.GetName() {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&r)})
			}
		}
		return out
	}
}

func repositoriesOfStorage(c client.Client) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &storagev1alpha1.RepositoryList{}
		if err := c.List(ctx, list); err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, r := range list.Items {
			if r.StorageKey() == client.ObjectKeyFromObject(o) {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&r)})
			}
		}
		return out
	}
}

// refusal is a check that failed: the Repository is not initialised, with a
// reason the user can act on, and nothing is written.
type refusal struct{ reason, msg string }

func (r *refusal) Error() string { return r.msg }

type connector struct {
	kube client.Client
	// cache is kube's cache, read by reference where every Repository is.
	cache  cache.Informers
	opener *storagekind.Opener
	reason func(error) (string, string)
	now    func() time.Time
}

func (c *connector) Connect(ctx context.Context, mg resource.Managed) (managed.ExternalClient, error) {
	repo, ok := mg.(*storagev1alpha1.Repository)
	if !ok {
		return nil, errors.New("managed resource is not a Repository")
	}
	bs, err := c.check(ctx, repo)
	var rf *refusal
	if errors.As(err, &rf) {
		setInitialized(repo, false, rf.reason, rf.msg, c.now())
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	b, err := c.opener.Open(ctx, bs)
	if err != nil {
		reason, msg := c.reason(err)
		setInitialized(repo, false, reason, msg, c.now())
		return nil, errors.New(msg)
	}
	return &external{kube: c.kube, bucket: b, reason: c.reason, now: c.now}, nil
}

// check runs the checks that come before any write and returns the storage.
func (c *connector) check(ctx context.Context, repo *storagev1alpha1.Repository) (*storagev1alpha1.BackupStorage, error) {
	key := repo.StorageKey()
	bs := &storagev1alpha1.BackupStorage{}
	// Only read: the cache's own object, not a copy of a status that lists
	// every Repository of the storage, for each Repository observed.
	if err := c.kube.Get(ctx, key, bs, client.UnsafeDisableDeepCopy); kerrors.IsNotFound(err) {
		return nil, &refusal{"BackupStorageNotFound", fmt.Sprintf("backupstorage %q not found in namespace %q", key.Name, key.Namespace)}
	} else if err != nil {
		return nil, fmt.Errorf("cannot get backupstorage: %w", err)
	}
	ok, why, err := usage.Allowed(ctx, c.kube, bs.Spec.UsagePolicy, bs.Namespace, repo.Namespace)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &refusal{"NamespaceNotAllowed", fmt.Sprintf("backupstorage %s/%s may not be used from namespace %q: %s", bs.Namespace, bs.Name, repo.Namespace, why)}
	}
	if bs.GetCondition(storagev1alpha1.TypeBackendInitialized).Status != corev1.ConditionTrue {
		return nil, &refusal{"BackupStorageNotReady", fmt.Sprintf("backupstorage %s/%s is not initialized yet", bs.Namespace, bs.Name)}
	}
	if err := c.checkPassword(ctx, repo); err != nil {
		return nil, err
	}
	if err := c.checkOverlap(ctx, repo, key); err != nil {
		return nil, err
	}
	return bs, nil
}

func (c *connector) checkPassword(ctx context.Context, repo *storagev1alpha1.Repository) error {
	ref := repo.Spec.EncryptionSecret
	ns := ref.Namespace
	if ns == "" {
		ns = repo.Namespace
	}
	s := &corev1.Secret{}
	if err := c.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, s); kerrors.IsNotFound(err) {
		return &refusal{"EncryptionSecretNotFound", fmt.Sprintf("encryption secret %q not found in namespace %q", ref.Name, ns)}
	} else if err != nil {
		return fmt.Errorf("cannot get encryption secret: %w", err)
	}
	if len(s.Data[PasswordKey]) == 0 {
		return &refusal{"EncryptionSecretInvalid", fmt.Sprintf("encryption secret %q has no %s", ref.Name, PasswordKey)}
	}
	return nil
}

// checkOverlap refuses a path that contains or lies within the path of an
// older Repository of the same storage: their WipeOuts would destroy each
// other's backups.
func (c *connector) checkOverlap(ctx context.Context, repo *storagev1alpha1.Repository, storage client.ObjectKey) error {
	// Only read, for every Repository observed: the cache's own objects,
	// not a list of each of the cluster's Repositories by value.
	all, err := cachestore.Objects[storagev1alpha1.Repository](ctx, c.cache)
	if err != nil {
		return fmt.Errorf("cannot list repositories: %w", err)
	}
	mine := cleanPath(repo.Spec.Path)
	for _, other := range all {
		if other.UID == repo.UID || other.StorageKey() != storage || !older(other, repo) {
			continue
		}
		theirs := cleanPath(other.Spec.Path)
		if layout.Within(mine, theirs) || layout.Within(theirs, mine) {
			return &refusal{"PathOverlap", fmt.Sprintf("path %q overlaps path %q of repository %s/%s in the same storage", repo.Spec.Path, other.Spec.Path, other.Namespace, other.Name)}
		}
	}
	return nil
}

func cleanPath(p string) string { return layout.CleanPath(p) }

func older(a, b *storagev1alpha1.Repository) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
}

type external struct {
	kube   client.Client
	bucket *blob.Bucket
	reason func(error) (string, string)
	now    func() time.Time
}

func (e *external) Disconnect(context.Context) error { return e.bucket.Close() }

func (e *external) fail(repo *storagev1alpha1.Repository, err error) error {
	reason, msg := e.reason(err)
	setInitialized(repo, false, reason, msg, e.now())
	return errors.New(msg)
}

// record is what repository.yaml holds: the Repository as the user wrote
// it, and the UID of the object that owns the path.
func record(repo *storagev1alpha1.Repository) *storagev1alpha1.Repository {
	return &storagev1alpha1.Repository{
		TypeMeta:   metav1.TypeMeta{APIVersion: storagev1alpha1.GroupVersion.String(), Kind: storagev1alpha1.RepositoryKind},
		ObjectMeta: metav1.ObjectMeta{Name: repo.Name, Namespace: repo.Namespace, UID: repo.UID, Labels: repo.Labels},
		Spec:       repo.Spec,
	}
}

func (e *external) Observe(ctx context.Context, mg resource.Managed) (managed.ExternalObservation, error) {
	repo := mg.(*storagev1alpha1.Repository)
	data, err := e.bucket.ReadAll(ctx, layout.RepositoryKey(cleanPath(repo.Spec.Path)))
	if gcerrors.Code(err) == gcerrors.NotFound {
		repo.Status.Phase = storagev1alpha1.RepositoryNotReady
		return managed.ExternalObservation{ResourceExists: false}, nil
	}
	if err != nil {
		return managed.ExternalObservation{}, e.fail(repo, err)
	}
	stored := &storagev1alpha1.Repository{}
	if err := yaml.Unmarshal(data, stored); err != nil || stored.Kind != storagev1alpha1.RepositoryKind {
		msg := fmt.Sprintf("%s holds something that is not a Stashplane repository record; refusing to overwrite it", layout.RepositoryKey(repo.Spec.Path))
		setInitialized(repo, false, "ForeignRecord", msg, e.now())
		return managed.ExternalObservation{}, errors.New(msg)
	}
	foreign := stored.Name != repo.Name || stored.Namespace != repo.Namespace
	if observeOnly(repo) && (foreign || (stored.UID != "" && stored.UID != repo.UID)) {
		// Read, never written: nothing of the other owner's changes. A
		// catalog rebuilt after a disaster reads another cluster's
		// repository, perhaps from another namespace.
		setInitialized(repo, true, "AdoptedReadOnly", fmt.Sprintf("path %q belongs to Repository %s/%s (uid %s); read only, as managementPolicies say", repo.Spec.Path, stored.Namespace, stored.Name, stored.UID), e.now())
		if e.kube != nil {
			if err := snapshotStatus(ctx, e.kube, repo); err != nil {
				return managed.ExternalObservation{}, err
			}
		}
		return managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true}, nil
	}
	if foreign {
		msg := fmt.Sprintf("path %q already holds repository %s/%s; refusing to take it over", repo.Spec.Path, stored.Namespace, stored.Name)
		setInitialized(repo, false, "PathTaken", msg, e.now())
		return managed.ExternalObservation{}, errors.New(msg)
	}
	if stored.UID != "" && stored.UID != repo.UID && repo.Annotations[storagev1alpha1.AnnotationAdopt] != "true" {
		msg := fmt.Sprintf("path %q belongs to Repository object uid %s (another cluster's, or one deleted and made again), not to this one (uid %s); refusing to write into it: annotate this Repository %s=true to take it over, or set managementPolicies to [Observe] to read it only",
			repo.Spec.Path, stored.UID, repo.UID, storagev1alpha1.AnnotationAdopt)
		setInitialized(repo, false, "PathOwned", msg, e.now())
		return managed.ExternalObservation{}, errors.New(msg)
	}
	// A record of another UID, adopted, is rewritten with this object's
	// UID (Update), as it differs from the one wanted.
	setInitialized(repo, true, string(storagev1alpha1.ReasonRepositoryInitializationSucceeded), "", e.now())
	if e.kube != nil {
		if err := snapshotStatus(ctx, e.kube, repo); err != nil {
			return managed.ExternalObservation{}, err
		}
	}
	want, _ := yaml.Marshal(record(repo))
	return managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: string(want) == string(data)}, nil
}

// Create writes the record and says at once what the observation after
// it would: the Repository is initialized, with its Snapshots summed up.
// The status that ends the create then carries it, and that observation
// writes nothing (internal/storagekind's createdReadiness).
// A record found already there (another writer came between the
// observation and the create) and a failure to sum the Snapshots leave
// that to the observation.
func (e *external) Create(ctx context.Context, mg resource.Managed) (managed.ExternalCreation, error) {
	repo := mg.(*storagev1alpha1.Repository)
	written, err := e.write(ctx, repo, true)
	if err != nil || !written {
		return managed.ExternalCreation{}, err
	}
	if e.kube != nil && snapshotStatus(ctx, e.kube, repo) != nil {
		return managed.ExternalCreation{}, nil
	}
	setInitialized(repo, true, string(storagev1alpha1.ReasonRepositoryInitializationSucceeded), "", e.now())
	return managed.ExternalCreation{}, nil
}

func (e *external) Update(ctx context.Context, mg resource.Managed) (managed.ExternalUpdate, error) {
	_, err := e.write(ctx, mg.(*storagev1alpha1.Repository), false)
	return managed.ExternalUpdate{}, err
}

// write writes the record; a create writes it only where there is none,
// and says whether it did.
func (e *external) write(ctx context.Context, repo *storagev1alpha1.Repository, create bool) (bool, error) {
	data, err := yaml.Marshal(record(repo))
	if err != nil {
		return false, fmt.Errorf("cannot encode repository record: %w", err)
	}
	key := layout.RepositoryKey(cleanPath(repo.Spec.Path))
	err = e.bucket.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: "application/yaml", IfNotExist: create})
	if create && gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return false, nil
	}
	if err != nil {
		return false, e.fail(repo, err)
	}
	return true, nil
}

func (e *external) Delete(ctx context.Context, mg resource.Managed) (managed.ExternalDelete, error) {
	repo := mg.(*storagev1alpha1.Repository)
	repo.SetConditions(xpv2.Deleting())
	if repo.Spec.DeletionPolicy != storagev1alpha1.DeletionPolicyWipeOut {
		return managed.ExternalDelete{}, nil
	}
	// A backup or prune writing into the directory would leave a part of
	// it behind, or fail half way, and so would a restore reading it: the
	// WipeOut waits for them.
	if busy, err := plan.RepositoryBusy(ctx, e.kube, repo); err != nil || busy != "" {
		if busy != "" {
			err = fmt.Errorf("cannot wipe out repository %q yet: %s", repo.Name, busy)
		}
		return managed.ExternalDelete{}, err
	}
	// The trailing slash keeps "app" from wiping "app-2".
	return managed.ExternalDelete{}, layout.Wipe(ctx, e.bucket, cleanPath(repo.Spec.Path)+"/")
}

// observeOnly says whether the Repository may only be read: its
// managementPolicies are [Observe].
func observeOnly(repo *storagev1alpha1.Repository) bool {
	p := repo.GetManagementPolicies()
	return len(p) == 1 && p[0] == xpv2.ManagementActionObserve
}

func setInitialized(repo *storagev1alpha1.Repository, ok bool, reason, msg string, now time.Time) {
	c := xpv2.Condition{Type: storagev1alpha1.TypeRepositoryInitialized, Status: corev1.ConditionTrue,
		Reason: xpv2.ConditionReason(reason), Message: msg, LastTransitionTime: metav1.NewTime(now)}
	phase, ready := storagev1alpha1.RepositoryReady, xpv2.Available()
	if !ok {
		c.Status, phase, ready = corev1.ConditionFalse, storagev1alpha1.RepositoryNotReady, xpv2.Unavailable()
	}
	repo.SetConditions(c, ready)
	repo.Status.Phase = phase
}

// notOnlyOwnStatus drops the updates of a Repository that change only
// what this controller writes into its status (its conditions, phase and
// what it sums up from the Snapshots): each such write would otherwise
// come straight back as a reconcile that reads the record in the storage
// to find nothing to do, and while backups run those reconciles are most
// of the queue. Everything else passes: the spec, metadata, deletion, and
// what others record in the status (a prune's time and what it freed).
var notOnlyOwnStatus = storagekind.ChangedIn(func(r *storagev1alpha1.Repository) any { return withoutOwnStatus(r) })

// withoutOwnStatus is a shallow copy of r without what this controller
// writes and what changes with every write; it is only compared.
func withoutOwnStatus(r *storagev1alpha1.Repository) *storagev1alpha1.Repository {
	c := *r
	c.ResourceVersion, c.ManagedFields = "", nil
	c.Status.Conditions, c.Status.Phase = nil, ""
	c.Status.LastBackupTime, c.Status.Integrity, c.Status.SnapshotCount, c.Status.Size, c.Status.RecentSnapshots = nil, nil, nil, "", nil
	return &c
}

// storageChanged passes the BackupStorage updates its users act on
// (BackupStorage.ChangedForUsers), not its status lists.
var storageChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*storagev1alpha1.BackupStorage)
	n, ok2 := e.ObjectNew.(*storagev1alpha1.BackupStorage)
	return !ok1 || !ok2 || n.ChangedForUsers(o)
}}
