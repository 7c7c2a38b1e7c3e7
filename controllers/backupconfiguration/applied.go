package backupconfiguration

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stashplane/stashplane/internal/cachestore"
)

// applied remembers what the scheduler last applied for each
// configuration, so that a reconcile whose objects are already as wanted
// sends nothing: a busy cluster reconciles each configuration several
// times as its Repository becomes Ready and its Secrets and verifiers
// change, and each apply, even one that changes nothing, is a request to
// the API server that the provider's request budget pays for.
//
// An object is skipped only when what is wanted hashes as it did at the
// last apply and the cached object is still as that apply left it: anything
// else (the object deleted or changed by someone, the cache behind, the
// provider restarted) applies it again. "As that apply left it" is the
// resourceVersion the apply returned, or, for an object whose spec the API
// server counts in its generation, that generation with the labels,
// annotations and owners the apply set. A Repository is written by its own
// controller several times on its way to Ready (its finalizer, the marks
// of its create, its status); none of those touch what the scheduler owns,
// and with the resourceVersion alone each one applied it again.
type applied struct {
	mu sync.Mutex
	// by configuration, then by object.
	m map[types.NamespacedName]map[objectKey]appliedAs
}

type objectKey struct {
	kind string
	key  client.ObjectKey
}

type appliedAs struct {
	hash            [sha256.Size]byte
	resourceVersion string
	generation      int64
}

func newApplied() *applied {
	return &applied{m: map[types.NamespacedName]map[objectKey]appliedAs{}}
}

// apply applies o (server-side, as owner) unless the last apply of the same
// wanted object is still what the cache holds.
func (a *applied) apply(ctx context.Context, kube client.Client, bc types.NamespacedName, o client.Object, opts ...client.PatchOption) error {
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("cannot encode %s %q: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
	}
	want := sha256.Sum256(b)
	k := objectKey{kind: o.GetObjectKind().GroupVersionKind().String(), key: client.ObjectKeyFromObject(o)}
	a.mu.Lock()
	last, ok := a.m[bc][k]
	a.mu.Unlock()
	if ok && last.hash == want {
		if cached := cachedForm(o); cached != nil && kube.Get(ctx, k.key, cached) == nil && last.kept(o, cached) {
			return nil
		}
	}
	if err := kube.Patch(ctx, o, client.Apply, opts...); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m[bc] == nil {
		a.m[bc] = map[objectKey]appliedAs{}
	}
	a.m[bc][k] = appliedAs{hash: want, resourceVersion: o.GetResourceVersion(), generation: o.GetGeneration()}
	return nil
}

// cachedForm is an empty object of o's kind in the form the provider's
// cache holds it: Stashplane's own kinds whole, the others (ServiceAccounts,
// Roles, RoleBindings, CronJobs) as metadata, which is all kept reads; a
// typed read of those would make the cache hold every one of the cluster's
// whole (internal/provider).
func cachedForm(o client.Object) client.Object {
	gvk := o.GetObjectKind().GroupVersionKind()
	if gvk.Group == "stashplane.io" || strings.HasSuffix(gvk.Group, ".stashplane.io") {
		cached, _ := o.DeepCopyObject().(client.Object)
		return cached
	}
	return cachestore.Metadata(gvk)
}

// kept says whether cached is still as the apply that returned last left
// it, wanted being what was applied. Past the resourceVersion, a generation
// (which the API server moves on every change of an object's spec) vouches
// for the spec, and the metadata the apply set is compared field by field.
func (last appliedAs) kept(wanted, cached client.Object) bool {
	if cached.GetResourceVersion() == last.resourceVersion {
		return true
	}
	if last.generation == 0 || cached.GetGeneration() != last.generation || cached.GetDeletionTimestamp() != nil {
		return false
	}
	return holds(cached.GetLabels(), wanted.GetLabels()) && holds(cached.GetAnnotations(), wanted.GetAnnotations()) &&
		ownedAlike(cached.GetOwnerReferences(), wanted.GetOwnerReferences())
}

// holds says whether have carries every key of want with its value.
func holds(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// ownedAlike says whether have holds every owner reference of want.
func ownedAlike(have, want []metav1.OwnerReference) bool {
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h metav1.OwnerReference) bool { return equality.Semantic.DeepEqual(h, w) }) {
			return false
		}
	}
	return true
}

// forget drops what is remembered of a configuration that is gone.
func (a *applied) forget(bc types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m, bc)
}
