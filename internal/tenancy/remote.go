package tenancy

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/usage"
)

// Jobs of one namespace may use a BackupStorage of another (a platform
// team's storage, used by app teams). What they need there is granted by a
// Role and RoleBinding in the storage's namespace bound to their
// ServiceAccount, and the storage's credential Secret, copied into their
// namespace. Owner references cannot cross namespaces, so whoever grants
// them (a RestoreSession, a BackupConfiguration) labels them and keeps a
// finalizer until Prune has deleted them.

// Refusal says why Jobs of a namespace cannot use a BackupStorage.
type Refusal string

const (
	// NotAllowed: the storage's usagePolicy does not admit the namespace.
	NotAllowed Refusal = "NotAllowed"
	// NotReachable: the storage keeps its data on a claim, which pods of
	// another namespace cannot mount.
	NotReachable Refusal = "NotReachable"
	// AmbientNotAllowed: the storage names no credential Secret (its Jobs
	// use the cloud identity of their pods), and the namespace is not one
	// the provider lists for that.
	AmbientNotAllowed Refusal = "AmbientNotAllowed"
)

// Ambient reports whether a storage reaches its object store with the
// ambient cloud identity of its pods (workload identity, an instance
// role) rather than a Secret.
func Ambient(st *storagev1alpha1.BackupStorage) bool {
	switch st.Spec.Storage.Provider {
	case storagev1alpha1.ProviderS3, storagev1alpha1.ProviderGCS, storagev1alpha1.ProviderAzure:
		return st.Spec.Storage.SecretName() == ""
	}
	return false
}

// CheckStorage says whether Jobs (what: "backup jobs", "restore jobs") in
// namespace ns may use st by its usagePolicy, and can mount it (or reach
// it through its broker), and, for a directly reached
// storage without a credential Secret, whether ns is one of ambient: the
// namespaces the provider lets use ambient cloud identities (a tenant's
// pods would otherwise act with an identity the platform gave the bucket).
// It refuses nothing in st's own namespace; a refusal comes with a
// message naming the storage and what to do.
func CheckStorage(ctx context.Context, kube client.Reader, st *storagev1alpha1.BackupStorage, ns, what string, ambient []string) (Refusal, string, error) {
	if st.Namespace == ns {
		return "", "", nil
	}
	// A brokered storage's Jobs of other namespaces hold neither its
	// identity nor its volume: its broker does.
	if !st.Brokered() && Ambient(st) && !slices.Contains(ambient, ns) {
		return AmbientNotAllowed, fmt.Sprintf("backupstorage %s/%s names no credential Secret, so %s would use the cloud identity of their pods; namespace %q is not among those the provider allows that (--ambient-credential-namespaces), or set the storage's spec.access to Broker",
			st.Namespace, st.Name, what, ns), nil
	}
	ok, why, err := usage.Allowed(ctx, kube, st.Spec.UsagePolicy, st.Namespace, ns)
	if err != nil {
		return "", "", fmt.Errorf("cannot check the usage policy of backupstorage %s/%s: %w", st.Namespace, st.Name, err)
	}
	if !ok {
		return NotAllowed, fmt.Sprintf("backupstorage %s/%s may not be used from namespace %q: %s", st.Namespace, st.Name, ns, why), nil
	}
	if l := st.Spec.Storage.Local; l != nil && l.PersistentVolumeClaim != nil && !st.Brokered() {
		return NotReachable, fmt.Sprintf("backupstorage %s/%s keeps its data on claim %q, which %s in namespace %q cannot mount; set the storage's spec.access to Broker to serve them through its broker",
			st.Namespace, st.Name, l.PersistentVolumeClaim.ClaimName, what, ns), nil
	}
	return "", "", nil
}

// CopyStorageSecret applies, in owner's namespace, a Secret named name
// that lets owner's Jobs reach st, controlled by owner and labelled
// labels, with fieldOwner. For a storage reached directly it holds the
// data of st's credential Secret, and it returns "" and copies nothing
// when st is in owner's namespace or has no Secret (a local storage). For
// a brokered storage (spec.access Broker) it holds only a grant minted at
// now over the paths of repos, the Repositories in st owner's Jobs use,
// which the storage's broker honours for those prefixes alone, and for
// reading only when readOnly (a restore's). Only the storage's
// own Secret is ever copied; a Secret of that name that owner does not
// control is left alone and refused.
func CopyStorageSecret(ctx context.Context, kube client.Client, owner client.Object, st *storagev1alpha1.BackupStorage, name string, labels map[string]string, fieldOwner client.FieldOwner, repos []*storagev1alpha1.Repository, readOnly bool, now time.Time) (string, error) {
	if st.Namespace == owner.GetNamespace() {
		return "", nil
	}
	var data map[string][]byte
	if st.Brokered() {
		tok, cert, err := mintGrant(ctx, kube, owner, st, repos, readOnly, now)
		if err != nil {
			return "", err
		}
		data = map[string][]byte{agentapi.SecretKeyStorageGrant: []byte(tok), agentapi.SecretKeyStorageBrokerCertificate: cert}
	} else {
		src := st.Spec.Storage.SecretName()
		if src == "" {
			return "", nil
		}
		in := &corev1.Secret{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: st.Namespace, Name: src}, in); err != nil {
			return "", fmt.Errorf("cannot get the secret %q of backupstorage %s/%s: %w", src, st.Namespace, st.Name, err)
		}
		data = in.Data
	}
	mine := &corev1.Secret{}
	err := kube.Get(ctx, client.ObjectKey{Namespace: owner.GetNamespace(), Name: name}, mine)
	if err == nil && !metav1.IsControlledBy(mine, owner) {
		return "", fmt.Errorf("cannot copy the storage secret: secret %q exists and is not controlled by %q", name, owner.GetName())
	}
	if client.IgnoreNotFound(err) != nil {
		return "", fmt.Errorf("cannot get secret %q: %w", name, err)
	}
	cp := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: owner.GetNamespace(), Labels: labels},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	if err := controllerutil.SetControllerReference(owner, cp, kube.Scheme()); err != nil {
		return "", fmt.Errorf("cannot own secret %q: %w", name, err)
	}
	if err := kube.Patch(ctx, cp, client.Apply, fieldOwner, client.ForceOwnership); err != nil {
		return "", fmt.Errorf("cannot apply secret %q: %w", name, err)
	}
	return name, nil
}

// mintGrant signs, with the key of st's broker, a grant over the paths of
// repos for owner. A path is granted only to the Repository that holds it:
// one that overlaps (contains, lies within or equals) the path of an older
// Repository of the same storage in another namespace is left out, as the
// Repository controller refuses it (PathOverlap), so that no namespace
// reaches another's backups by naming their directory; so is a
// Repository of a third namespace, neither owner's nor the storage's; and
// so is one whose record the Repository controller has not vouched for
// (notGrantable).
func mintGrant(ctx context.Context, kube client.Client, owner client.Object, st *storagev1alpha1.BackupStorage, repos []*storagev1alpha1.Repository, readOnly bool, now time.Time) (string, []byte, error) {
	key, err := accessor.Key(ctx, kube, st)
	if err != nil {
		return "", nil, err
	}
	all := &storagev1alpha1.RepositoryList{}
	if err := kube.List(ctx, all); err != nil {
		return "", nil, fmt.Errorf("cannot list repositories: %w", err)
	}
	seen := map[string]bool{}
	var prefixes, refused []string
	for _, r := range repos {
		if r == nil || r.StorageKey() != client.ObjectKeyFromObject(st) {
			continue
		}
		p := layout.CleanPath(r.Spec.Path)
		if r.Namespace != owner.GetNamespace() && r.Namespace != st.Namespace {
			refused = append(refused, fmt.Sprintf("%q of repository %s/%s, a namespace neither the owner's nor the storage's", r.Spec.Path, r.Namespace, r.Name))
			continue
		}
		if other := overlapping(r, all.Items); other != nil {
			refused = append(refused, fmt.Sprintf("%q overlaps repository %s/%s", r.Spec.Path, other.Namespace, other.Name))
			continue
		}
		if why := notGrantable(r, readOnly); why != "" {
			refused = append(refused, fmt.Sprintf("%q of repository %s/%s, which %s", r.Spec.Path, r.Namespace, r.Name, why))
			continue
		}
		if p += "/"; !seen[p] {
			seen[p] = true
			prefixes = append(prefixes, p)
		}
	}
	if len(prefixes) == 0 {
		why := "it uses no repository there yet"
		if len(refused) > 0 {
			why = "the path " + strings.Join(refused, ", the path ")
		}
		return "", nil, fmt.Errorf("cannot let %s/%s reach backupstorage %s/%s through its broker: %s", owner.GetNamespace(), owner.GetName(), st.Namespace, st.Name, why)
	}
	sort.Strings(prefixes)
	tok, err := accessor.Mint(key.Token, accessor.Grant{Prefixes: prefixes, Expires: accessor.GrantExpiry(now).Unix(), Subject: owner.GetNamespace() + "/" + owner.GetName(), ReadOnly: readOnly})
	if err != nil {
		return "", nil, fmt.Errorf("cannot let %s/%s reach backupstorage %s/%s through its broker: %w", owner.GetNamespace(), owner.GetName(), st.Namespace, st.Name, err)
	}
	return tok, key.Certificate, nil
}

// notGrantable says why the broker may not grant r's path, or "". A path
// is granted once the Repository controller found or wrote there a record
// of r itself (RepositoryInitialized): before that the path may hold data
// another Repository left, and only the record tells whose. Writing needs
// the record to be r's own; a Repository that reads another's record
// (managementPolicies [Observe], AdoptedReadOnly) is granted reading only.
func notGrantable(r *storagev1alpha1.Repository, readOnly bool) string {
	c := r.GetCondition(storagev1alpha1.TypeRepositoryInitialized)
	switch {
	case c.Status != corev1.ConditionTrue:
		return "is not initialized yet"
	case !readOnly && c.Reason != storagev1alpha1.ReasonRepositoryInitializationSucceeded:
		return fmt.Sprintf("reads a record it does not own (%s), so it is granted no writes", c.Reason)
	}
	return ""
}

// overlapping is the older Repository of another namespace in r's storage
// whose path overlaps r's, or nil.
func overlapping(r *storagev1alpha1.Repository, all []storagev1alpha1.Repository) *storagev1alpha1.Repository {
	mine := layout.CleanPath(r.Spec.Path)
	for i := range all {
		o := &all[i]
		if o.Namespace == r.Namespace || o.StorageKey() != r.StorageKey() {
			continue
		}
		theirs := layout.CleanPath(o.Spec.Path)
		if !layout.Within(mine, theirs) && !layout.Within(theirs, mine) {
			continue
		}
		if r.CreationTimestamp.IsZero() || o.CreationTimestamp.Before(&r.CreationTimestamp) ||
			(o.CreationTimestamp.Equal(&r.CreationTimestamp) && o.Namespace+"/"+o.Name < r.Namespace+"/"+r.Name) {
			return o
		}
	}
	return nil
}

// Keep names what Prune leaves in place: Roles (with their RoleBindings)
// and Secrets, by namespace/name.
type Keep map[string]bool

// Prune deletes the Roles and RoleBindings labelled labels, in every
// namespace, and the Secrets so labelled in namespace secrets, except
// those keep names. It lists from reader, which should read the API server
// and not a cache, so that nothing just made is missed.
func Prune(ctx context.Context, reader client.Reader, kube client.Client, labels map[string]string, secrets string, keep Keep) error {
	roles := &rbacv1.RoleList{}
	if err := reader.List(ctx, roles, client.MatchingLabels(labels)); err != nil {
		return fmt.Errorf("cannot list roles: %w", err)
	}
	for _, role := range roles.Items {
		key := client.ObjectKey{Namespace: role.Namespace, Name: role.Name}
		if keep[key.String()] {
			continue
		}
		// The binding goes first: a binding left behind is found again
		// by its Role.
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		if err := kube.Delete(ctx, rb); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cannot delete rolebinding %q: %w", key.String(), err)
		}
		if err := kube.Delete(ctx, &role); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cannot delete role %q: %w", key.String(), err)
		}
	}
	list := &corev1.SecretList{}
	if err := reader.List(ctx, list, client.InNamespace(secrets), client.MatchingLabels(labels)); err != nil {
		return fmt.Errorf("cannot list secrets: %w", err)
	}
	for _, s := range list.Items {
		key := client.ObjectKey{Namespace: s.Namespace, Name: s.Name}
		if keep[key.String()] {
			continue
		}
		if err := kube.Delete(ctx, &s); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cannot delete secret %q: %w", key.String(), err)
		}
	}
	return nil
}

// SetFinalizer adds finalizer to o (present) or removes it, by a merge
// patch that fails on a stale o, and records the result on o. Removing it
// from an object that is gone is no error.
func SetFinalizer(ctx context.Context, kube client.Client, o client.Object, finalizer string, present bool) error {
	p, ok := o.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("cannot copy %q to set its finalizer", o.GetName())
	}
	verb, changed := "add", controllerutil.AddFinalizer(p, finalizer)
	if !present {
		verb, changed = "remove", controllerutil.RemoveFinalizer(p, finalizer)
	}
	if !changed {
		return nil
	}
	err := kube.Patch(ctx, p, client.MergeFromWithOptions(o, client.MergeFromWithOptimisticLock{}))
	if err != nil && (present || !kerrors.IsNotFound(err)) {
		return fmt.Errorf("cannot %s finalizer %q of %q: %w", verb, finalizer, o.GetName(), err)
	}
	o.SetFinalizers(p.GetFinalizers())
	o.SetResourceVersion(p.GetResourceVersion())
	return nil
}
