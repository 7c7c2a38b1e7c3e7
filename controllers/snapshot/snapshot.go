// Package snapshot reconciles Snapshots. A Snapshot is a managed resource
// whose external resource is its record, <repo path>/snapshots/<name>.yaml,
// in the repository's storage: the record is written when the Snapshot is
// created and rewritten whenever its phase, size or verdict changes, so
// that an Observe-only cluster rebuilt after a disaster finds every
// Snapshot in the backend. The Snapshot's phase, size and integrity are
// derived from its components, which the backup Jobs report.
package snapshot

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
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/storagekind"
)

// Options configure the controller.
type Options = storagekind.Options

// Setup adds the Snapshot controller to the manager.
func Setup(mgr ctrl.Manager, o Options) error {
	name := "snapshot"
	// Thousands of Snapshots arrive at once; each one's record written is
	// in its conditions, not an event apiece.
	o.QuietRecords = true
	r := storagekind.NewReconciler(mgr, name, storagev1alpha1.SnapshotGroupVersionKind, &connector{kube: mgr.GetClient(), opener: o.Opener, reason: o.Reason, now: o.Now}, o)
	err := ctrl.NewControllerManagedBy(mgr).
		Named(name).
		WithOptions(o.Controller).
		// Its own condition writes do not reconcile a Snapshot again:
		// the record holds no conditions, so there is nothing to do.
		For(&storagev1alpha1.Snapshot{}, builder.WithPredicates(notOnlyConditions)).
		// A WipeOut forgets nothing while another run uses the Repository:
		// it is tried again when one ends.
		Watches(&storagev1alpha1.Snapshot{}, handler.EnqueueRequestsFromMapFunc(deletedSnapshotsOfRun(mgr.GetClient()))).
		Watches(&corev1alpha1.RestoreSession{}, handler.EnqueueRequestsFromMapFunc(deletedSnapshotsOfRun(mgr.GetClient()))).
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(deletedSnapshotsOfRun(mgr.GetClient()))).
		// A Snapshot made before its Repository is recorded as soon as
		// the Repository appears, not after its back-off.
		Watches(&storagev1alpha1.Repository{}, handler.EnqueueRequestsFromMapFunc(unrecordedSnapshotsOf(mgr.GetClient())), builder.WithPredicates(created)).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up %s controller: %w", name, err)
	}
	return nil
}

// deletedSnapshotsOfRun maps a run (another Snapshot's backup, a restore,
// a prune Job) to the Snapshots of its Repository being deleted, whose
// forgetting waited for it (plan.RepositoryBusy).
func deletedSnapshotsOfRun(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		key, ok := plan.RepositoryOfRun(o)
		if !ok {
			return nil
		}
		list, err := snapshotsOf(ctx, c, key)
		if err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, s := range list.Items {
			if s.DeletionTimestamp != nil && s.Name != o.GetName() {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
			}
		}
		return out
	}
}

// snapshotsOf reads the Snapshots of the Repository key from the cache:
// through the index only that Repository's, and without copying them, as
// map functions run on every event of a busy cluster.
func snapshotsOf(ctx context.Context, c client.Reader, key client.ObjectKey) (*storagev1alpha1.SnapshotList, error) {
	list := &storagev1alpha1.SnapshotList{}
	err := c.List(ctx, list, client.InNamespace(key.Namespace), client.MatchingFields{storagev1alpha1.SnapshotRepositoryField: key.Name}, client.UnsafeDisableDeepCopy)
	return list, err
}

// notOnlyConditions drops the updates of a Snapshot that change nothing
// but its conditions. The controller writes them itself (Synced, Ready,
// MetadataUploaded), the record in the storage leaves them out, and a
// reconcile after each such write would find nothing to do: on ten
// thousand Snapshots recorded at once that is ten thousand reconciles
// queued in front of the ones that matter (docs/scale.md).
var notOnlyConditions = storagekind.ChangedIn(func(s *storagev1alpha1.Snapshot) any { return withoutConditions(s) })

// withoutConditions is a shallow copy of s without its conditions and what
// changes with every write: it runs on every Snapshot event and is only
// compared, so it shares everything else with s.
func withoutConditions(s *storagev1alpha1.Snapshot) *storagev1alpha1.Snapshot {
	c := *s
	c.Status.Conditions = nil
	c.ResourceVersion = ""
	c.ManagedFields = nil
	return &c
}

// created passes only the creation of an object.
var created = predicate.Funcs{
	UpdateFunc:  func(event.UpdateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// unrecordedSnapshotsOf maps a Repository to its Snapshots whose record is
// not yet in the storage: made before it (a catalogue rebuilt, a namespace
// restored from its dump, objects applied together), they found no
// Repository and wait out a back-off of up to a minute each.
func unrecordedSnapshotsOf(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list, err := snapshotsOf(ctx, c, client.ObjectKeyFromObject(o))
		if err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, s := range list.Items {
			if s.GetCondition(storagev1alpha1.TypeSnapshotMetadataUploaded).Status != corev1.ConditionTrue {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
			}
		}
		return out
	}
}

type connector struct {
	kube   client.Client
	opener *storagekind.Opener
	reason func(error) (string, string)
	now    func() time.Time
}

func (c *connector) Connect(ctx context.Context, mg resource.Managed) (_ managed.ExternalClient, err error) {
	s, ok := mg.(*storagev1alpha1.Snapshot)
	if !ok {
		return nil, errors.New("managed resource is not a Snapshot")
	}
	prev := s.Status.Phase
	derive(s)
	defer func() {
		if err != nil {
			hold(s, prev, c.now(), err.Error())
		}
	}()
	if err := recordDamage(ctx, c.kube, s, c.now()); err != nil {
		return nil, err
	}
	repo := &storagev1alpha1.Repository{}
	err = c.kube.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Spec.Repository}, repo)
	if s.DeletionTimestamp != nil && (kerrors.IsNotFound(err) || (err == nil && repositoryWipedOut(repo))) {
		// The Repository went, or is going with all its data: there is
		// nothing left to remove, and waiting for it would hold the
		// Snapshot for ever.
		return gone{}, nil
	}
	if kerrors.IsNotFound(err) {
		msg := fmt.Sprintf("repository %q not found in namespace %q", s.Spec.Repository, s.Namespace)
		setUploaded(s, false, "RepositoryNotFound", msg, c.now())
		return nil, errors.New(msg)
	} else if err != nil {
		return nil, fmt.Errorf("cannot get repository: %w", err)
	}
	bs := &storagev1alpha1.BackupStorage{}
	// Only read: the cache's own object, not a copy of a status that lists
	// every Repository of the storage, for each Snapshot observed.
	if err := c.kube.Get(ctx, repo.StorageKey(), bs, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("cannot get backupstorage of repository %q: %w", repo.Name, err)
	}
	b, err := c.opener.Open(ctx, bs)
	if err != nil {
		reason, msg := c.reason(err)
		setUploaded(s, false, reason, msg, c.now())
		return nil, errors.New(msg)
	}
	return &external{kube: c.kube, repo: repo, bucket: b, repoPath: repo.Spec.Path, key: layout.SnapshotKey(repo.Spec.Path, s.Name),
		prev: prev, reason: c.reason, now: c.now}, nil
}

// repositoryWipedOut says whether a Repository is being deleted with its
// data.
func repositoryWipedOut(r *storagev1alpha1.Repository) bool {
	return r.DeletionTimestamp != nil && r.Spec.DeletionPolicy == storagev1alpha1.DeletionPolicyWipeOut
}

type external struct {
	kube     client.Reader
	repo     *storagev1alpha1.Repository
	bucket   *blob.Bucket
	repoPath string
	key      string
	// prev is the phase the Snapshot had before this reconcile derived
	// it: the one its record last held, kept while the record cannot be
	// written (hold).
	prev   storagev1alpha1.SnapshotPhase
	reason func(error) (string, string)
	now    func() time.Time
}

func (e *external) Disconnect(context.Context) error { return e.bucket.Close() }

// derive sets the phase, size and integrity from the components.
func derive(s *storagev1alpha1.Snapshot) {
	sum := summarize(s)
	s.Status.Phase, s.Status.Size, s.Status.Integrity = sum.phase, sum.size, sum.integrity
	if s.Status.TotalComponents == 0 {
		s.Status.TotalComponents = int32(len(s.Status.Components))
	}
	if s.Status.SnapshotTime == nil {
		t := s.CreationTimestamp
		s.Status.SnapshotTime = &t
	}
}

// record is what the backend keeps of a Snapshot: its spec, and its status
// without progress figures and conditions, which change too often to be
// worth a write each.
func record(s *storagev1alpha1.Snapshot) ([]byte, error) {
	r := &storagev1alpha1.Snapshot{
		TypeMeta:   metav1.TypeMeta{APIVersion: storagev1alpha1.GroupVersion.String(), Kind: storagev1alpha1.SnapshotKind},
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, Labels: s.Labels},
		Spec:       s.Spec,
		Status:     *s.Status.DeepCopy(),
	}
	r.Status.Conditions = nil
	r.Status.LastUpdateTime = nil
	for _, n := range componentNames(s) {
		c := r.Status.Components[n]
		stats := make([]storagev1alpha1.ResticStats, 0, len(c.ResticStats))
		for _, st := range c.ResticStats {
			stats = append(stats, storagev1alpha1.ResticStats{Summary: st.Summary})
		}
		c.ResticStats = stats
		r.Status.Components[n] = c
	}
	return yaml.Marshal(r)
}

func (e *external) Observe(ctx context.Context, mg resource.Managed) (_ managed.ExternalObservation, err error) {
	s := mg.(*storagev1alpha1.Snapshot)
	defer func() {
		if err != nil {
			hold(s, e.prev, e.now(), err.Error())
		}
	}()
	data, err := e.bucket.ReadAll(ctx, e.key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return managed.ExternalObservation{ResourceExists: false}, nil
	}
	if err != nil {
		reason, msg := e.reason(err)
		setUploaded(s, false, reason, msg, e.now())
		return managed.ExternalObservation{}, errors.New(msg)
	}
	want, err := record(s)
	if err != nil {
		return managed.ExternalObservation{}, fmt.Errorf("cannot encode snapshot record: %w", err)
	}
	upToDate := string(want) == string(data)
	if upToDate {
		setUploaded(s, true, string(storagev1alpha1.ReasonSnapshotMetadataUploadSucceeded), "", e.now())
	}
	s.SetConditions(available(s))
	return managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: upToDate}, nil
}

// Create writes the record and says at once whether the Snapshot is
// ready, as the observation after it would: the status that ends the
// create carries it, and that observation writes nothing
// (internal/storagekind's createdReadiness).
func (e *external) Create(ctx context.Context, mg resource.Managed) (managed.ExternalCreation, error) {
	s := mg.(*storagev1alpha1.Snapshot)
	if err := e.write(ctx, s); err != nil {
		return managed.ExternalCreation{}, err
	}
	s.SetConditions(available(s))
	return managed.ExternalCreation{}, nil
}

func (e *external) Update(ctx context.Context, mg resource.Managed) (managed.ExternalUpdate, error) {
	return managed.ExternalUpdate{}, e.write(ctx, mg.(*storagev1alpha1.Snapshot))
}

func (e *external) write(ctx context.Context, s *storagev1alpha1.Snapshot) (err error) {
	defer func() {
		if err != nil {
			hold(s, e.prev, e.now(), err.Error())
		}
	}()
	data, err := record(s)
	if err != nil {
		return fmt.Errorf("cannot encode snapshot record: %w", err)
	}
	if err := e.bucket.WriteAll(ctx, e.key, data, &blob.WriterOptions{ContentType: "application/yaml"}); err != nil {
		_, msg := e.reason(err)
		setUploaded(s, false, string(storagev1alpha1.ReasonSnapshotMetadataUploadFailed), msg, e.now())
		return errors.New(msg)
	}
	setUploaded(s, true, string(storagev1alpha1.ReasonSnapshotMetadataUploadSucceeded), "", e.now())
	return nil
}

// Delete keeps everything for a Snapshot whose deletionPolicy is Delete.
// For WipeOut it forgets the restic snapshot of each component (removing
// its file, as restic's forget does), then the components' content
// manifests, then the record, so that a failure half way is retried with
// the record still naming what is left. The data the forgotten snapshots
// alone referenced is freed by a prune, under restic's exclusive lock.
//
// Like restic's forget, which takes the exclusive lock, it forgets nothing
// while another run uses the Repository: a backup, a prune, a restore or a
// verification (whose restic check, taking no lock, would find a snapshot
// gone that it listed), or a restic lock that is not stale (a user's
// restic). The error names the run; the managed reconciler tries again.
func (e *external) Delete(ctx context.Context, mg resource.Managed) (managed.ExternalDelete, error) {
	s := mg.(*storagev1alpha1.Snapshot)
	s.SetConditions(xpv2.Deleting())
	if s.Spec.DeletionPolicy != storagev1alpha1.DeletionPolicyWipeOut {
		return managed.ExternalDelete{}, nil
	}
	if busy, err := plan.RepositoryBusy(ctx, e.kube, e.repo); err != nil || busy != "" {
		if busy != "" {
			err = fmt.Errorf("cannot forget the restic snapshots of snapshot %q yet: %s", s.Name, busy)
		}
		return managed.ExternalDelete{}, err
	}
	for _, name := range componentNames(s) {
		for _, st := range s.Status.Components[name].ResticStats {
			if st.Summary == nil || st.Summary.ID == "" {
				continue
			}
			prefix := layout.ResticPrefix(e.repoPath, s.Spec.Session, name)
			if err := layout.ForgetResticSnapshot(ctx, e.bucket, prefix, st.Summary.ID, e.now()); err != nil {
				_, msg := e.reason(err)
				return managed.ExternalDelete{}, fmt.Errorf("cannot forget component %q: %s", name, msg)
			}
		}
		if err := e.remove(ctx, layout.ManifestKey(e.repoPath, s.Name, name)); err != nil {
			return managed.ExternalDelete{}, err
		}
	}
	return managed.ExternalDelete{}, e.remove(ctx, e.key)
}

// remove deletes one key; one already gone is no error.
func (e *external) remove(ctx context.Context, key string) error {
	if err := e.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		_, msg := e.reason(err)
		return errors.New(msg)
	}
	return nil
}

// gone is the external client of a Snapshot being deleted whose Repository
// is gone or being wiped out: there is nothing to observe or remove.
type gone struct{}

func (gone) Disconnect(context.Context) error { return nil }

func (gone) Observe(context.Context, resource.Managed) (managed.ExternalObservation, error) {
	return managed.ExternalObservation{ResourceExists: false}, nil
}

func (gone) Create(context.Context, resource.Managed) (managed.ExternalCreation, error) {
	return managed.ExternalCreation{}, nil
}

func (gone) Update(context.Context, resource.Managed) (managed.ExternalUpdate, error) {
	return managed.ExternalUpdate{}, nil
}

func (gone) Delete(context.Context, resource.Managed) (managed.ExternalDelete, error) {
	return managed.ExternalDelete{}, nil
}

// available is the Snapshot's Ready condition: a Snapshot is ready once its
// backup succeeded.
func available(s *storagev1alpha1.Snapshot) xpv2.Condition {
	if s.Status.Phase == storagev1alpha1.SnapshotSucceeded {
		return xpv2.Available()
	}
	c := xpv2.Unavailable()
	c.Message = fmt.Sprintf("snapshot is %s", s.Status.Phase)
	return c
}

// setUploaded sets SnapshotMetadataUploaded. Its lastTransitionTime moves
// only when its status does: while the record keeps failing, whatever the
// error of each attempt, it says since when. A record written ends a hold
// (recorded).
func setUploaded(s *storagev1alpha1.Snapshot, ok bool, reason, msg string, now time.Time) {
	c := xpv2.Condition{Type: storagev1alpha1.TypeSnapshotMetadataUploaded, Status: corev1.ConditionTrue,
		Reason: xpv2.ConditionReason(reason), Message: msg, LastTransitionTime: metav1.NewTime(now)}
	if !ok {
		c.Status = corev1.ConditionFalse
	}
	if old := s.GetCondition(c.Type); old.Status == c.Status && !old.LastTransitionTime.IsZero() {
		c.LastTransitionTime = old.LastTransitionTime
	}
	s.SetConditions(c)
	if ok {
		recorded(s, now)
	}
}
