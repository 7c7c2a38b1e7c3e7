package backupconfiguration

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// applied remembers what the scheduler last applied for each
// configuration, so that a reconcile whose objects are already as wanted
// sends nothing: a busy cluster reconciles each configuration several
// times as its Repository becomes Ready and its Secrets and verifiers
// change, and each apply, even one that changes nothing, is a request to
// the API server that the provider's request budget pays for.
//
// An object is skipped only when what is wanted hashes as it did at the
// last apply and the cached object still carries the resourceVersion that
// apply returned: anything else (the object deleted or changed by someone,
// the cache behind, the provider restarted) applies it again.
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
		cached, isObject := o.DeepCopyObject().(client.Object)
		if isObject && kube.Get(ctx, k.key, cached) == nil && cached.GetResourceVersion() == last.resourceVersion {
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
	a.m[bc][k] = appliedAs{hash: want, resourceVersion: o.GetResourceVersion()}
	return nil
}

// forget drops what is remembered of a configuration that is gone.
func (a *applied) forget(bc types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m, bc)
}
