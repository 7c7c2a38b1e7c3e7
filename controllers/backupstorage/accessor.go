package backupstorage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/cachestore"
	"github.com/stashplane/stashplane/internal/version"
)

// fieldOwner is the field manager of what the BackupStorage controllers apply.
const fieldOwner = client.FieldOwner("stashplane-backupstorage")

// accessorReconciler runs the accessor of each local or brokered
// BackupStorage (accessor.Runs): a token
// Secret (made once, kept) and a Deployment that mounts the volume. Both are
// owned by the BackupStorage and go with it.
type accessorReconciler struct {
	kube  client.Client
	image string
}

func setupAccessor(mgr ctrl.Manager, o Options) error {
	r := &accessorReconciler{kube: mgr.GetClient(), image: version.Image()}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("backupstorage-accessor").
		WithOptions(o.Controller).
		For(&storagev1alpha1.BackupStorage{}).
		// Applied whole, read only for its owner: held as metadata, not
		// every Deployment of the cluster whole.
		Owns(&appsv1.Deployment{}, builder.OnlyMetadata).
		// A brokered object store's accessor restarts with a rotated
		// credential Secret.
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(storagesUsingSecret(mgr.GetClient()))).
		Complete(r)
	if err != nil {
		return fmt.Errorf("cannot set up backupstorage-accessor controller: %w", err)
	}
	return nil
}

func (r *accessorReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bs := &storagev1alpha1.BackupStorage{}
	if err := r.kube.Get(ctx, req.NamespacedName, bs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !accessor.Runs(bs) {
		// A storage that moved off local storage, or is no longer
		// brokered, no longer needs it.
		return ctrl.Result{}, r.remove(ctx, bs)
	}
	if bs.DeletionTimestamp != nil {
		// The accessor serves the storage until its deletion (a WipeOut
		// among it) is done; owner references remove it afterwards.
		return ctrl.Result{}, nil
	}
	token, err := r.ensureSecret(ctx, bs)
	if err != nil {
		return ctrl.Result{}, err
	}
	d, err := accessor.Deployment(bs, r.image)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.rollOnRotation(ctx, bs, token, d); err != nil {
		return ctrl.Result{}, err
	}
	d.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	if err := controllerutil.SetControllerReference(bs, d, r.kube.Scheme()); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot own accessor deployment: %w", err)
	}
	if err := r.kube.Patch(ctx, d, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
		return ctrl.Result{}, fmt.Errorf("cannot apply accessor deployment: %w", err)
	}
	return ctrl.Result{}, nil
}

// annotationSecretHash, on the pod template of an accessor, is a digest
// of the Secrets it reads only at start: its token Secret and, for an
// object store, the credential Secret it serves with. A rotated
// credential, or a token Secret deleted to revoke every grant it signed
// (the controller makes a new token at once), changes it and so restarts
// the accessor with them.
const annotationSecretHash = "storage.stashplane.io/secret-digest"

// rollOnRotation sets the digest of token, the accessor's Secret as
// ensureSecret left it (the cache may not hold it yet), and of the
// storage's credential Secret.
func (r *accessorReconciler) rollOnRotation(ctx context.Context, bs *storagev1alpha1.BackupStorage, token *corev1.Secret, d *appsv1.Deployment) error {
	secrets := []*corev1.Secret{token}
	if name := bs.Spec.Storage.SecretName(); bs.Spec.Storage.Local == nil && name != "" {
		sec := &corev1.Secret{}
		if err := r.kube.Get(ctx, types.NamespacedName{Namespace: bs.Namespace, Name: name}, sec); err != nil {
			return fmt.Errorf("cannot get the storage secret %q: %w", name, err)
		}
		secrets = append(secrets, sec)
	}
	h := sha256.New()
	for _, sec := range secrets {
		name := sec.Name
		keys := make([]string, 0, len(sec.Data))
		for k := range sec.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(h, "%d:%s%d:", len(name), name, len(keys))
		for _, k := range keys {
			fmt.Fprintf(h, "%d:%s%d:", len(k), k, len(sec.Data[k]))
			h.Write(sec.Data[k])
		}
	}
	if d.Spec.Template.Annotations == nil {
		d.Spec.Template.Annotations = map[string]string{}
	}
	d.Spec.Template.Annotations[annotationSecretHash] = hex.EncodeToString(h.Sum(nil))[:16]
	return nil
}

// ensureSecret makes the token Secret, with the certificate the accessor
// serves TLS with, when there is none: once, and again after it was
// deleted to revoke the old token's grants. A Secret made before accessors
// served TLS gets a certificate added.
func (r *accessorReconciler) ensureSecret(ctx context.Context, bs *storagev1alpha1.BackupStorage) (*corev1.Secret, error) {
	have := &corev1.Secret{}
	err := r.kube.Get(ctx, types.NamespacedName{Namespace: bs.Namespace, Name: accessor.Name(bs)}, have)
	if err != nil && !kerrors.IsNotFound(err) {
		return nil, err
	}
	if err == nil && accessor.HasCertificate(have) {
		return have, nil
	}
	cert, key, cerr := accessor.NewCertificate(time.Now())
	if cerr != nil {
		return nil, cerr
	}
	if err == nil {
		accessor.AddCertificate(have, cert, key)
		if err := r.kube.Update(ctx, have); err != nil {
			return nil, fmt.Errorf("cannot add a certificate to accessor secret: %w", err)
		}
		return have, nil
	}
	token, err := accessor.NewToken()
	if err != nil {
		return nil, err
	}
	s := accessor.TokenSecret(bs, token, cert, key)
	if err := controllerutil.SetControllerReference(bs, s, r.kube.Scheme()); err != nil {
		return nil, fmt.Errorf("cannot own accessor secret: %w", err)
	}
	if err := r.kube.Create(ctx, s); err != nil {
		// Made meanwhile by another pass: the next one, woken by it,
		// reads it.
		return nil, fmt.Errorf("cannot create accessor secret: %w", err)
	}
	return s, nil
}

func (r *accessorReconciler) remove(ctx context.Context, bs *storagev1alpha1.BackupStorage) error {
	key := types.NamespacedName{Namespace: bs.Namespace, Name: accessor.Name(bs)}
	for _, o := range []client.Object{cachestore.Metadata(appsv1.SchemeGroupVersion.WithKind("Deployment")), &corev1.Secret{}} {
		err := r.kube.Get(ctx, key, o)
		if kerrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if !metav1IsControlledBy(o, bs) {
			continue
		}
		if err := r.kube.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cannot delete accessor %T: %w", o, err)
		}
	}
	return nil
}

func metav1IsControlledBy(o client.Object, owner client.Object) bool {
	for _, ref := range o.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller && ref.UID == owner.GetUID() {
			return true
		}
	}
	return false
}
