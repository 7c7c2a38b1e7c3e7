// Package secretcache keeps the provider's memory independent of how many
// Secrets its cluster holds. A cluster's Secrets are many and large (every
// Helm release is one, every TLS certificate another), and a provider that
// watched them whole would hold all their data. The manager's cache holds
// Secrets as metadata only, which is all the provider's watches need to map
// a change to the objects that use the Secret; Client reads a Secret's data
// from the API server the first time it is asked for and again only once the
// cached metadata shows a newer resourceVersion. The data held is that of
// the Secrets the provider reads (storage credentials, accessor tokens,
// repository passwords), never the rest of the cluster's.
//
// The manager's client must be made with Secrets read past its cache
// (client.CacheOptions.DisableFor, as Options does), and every watch of
// Secrets must be a metadata watch (builder.OnlyMetadata): a watch of whole
// Secrets makes the cache hold them all again.
package secretcache

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options are the client options that read Secrets past the manager's
// cache, to be wrapped by Wrap.
func Options() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}}
}

var secretKind = corev1.SchemeGroupVersion.WithKind("Secret")

// Metadata is an empty Secret's metadata, for a read from a metadata cache.
func Metadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(secretKind)
	return m
}

// Client is a client whose reads of typed Secrets are served from the data
// it read last, while the cache's metadata shows no change since.
type Client struct {
	// Client reads Secrets from the API server; everything else goes to
	// it unchanged.
	client.Client
	meta client.Reader

	mu   sync.Mutex
	held map[types.NamespacedName]*corev1.Secret
}

// Wrap returns c, whose Secrets are read past any cache, with its reads of
// Secrets checked against the metadata meta (the manager's cache) serves.
func Wrap(c client.Client, meta client.Reader) *Client {
	return &Client{Client: c, meta: meta, held: map[types.NamespacedName]*corev1.Secret{}}
}

// Get reads obj. A Secret's metadata is read from the cache. A Secret is
// copied from what was read last when the cache's metadata shows the same
// resourceVersion, and read from the API server otherwise; a Secret the
// cache has not seen yet (one just made) is read from the API server too,
// so a Secret is never reported missing that the API server holds.
func (c *Client) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok && m.GroupVersionKind() == secretKind {
		return c.meta.Get(ctx, key, obj, opts...)
	}
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return c.Client.Get(ctx, key, obj, opts...)
	}
	m := Metadata()
	err := c.meta.Get(ctx, key, m)
	if err != nil && !kerrors.IsNotFound(err) {
		return err
	}
	if err == nil {
		c.mu.Lock()
		held := c.held[key]
		c.mu.Unlock()
		if held != nil && held.ResourceVersion == m.ResourceVersion {
			held.DeepCopyInto(s)
			return nil
		}
	}
	if err := c.Client.Get(ctx, key, s, opts...); err != nil {
		if kerrors.IsNotFound(err) {
			c.forget(key)
		}
		return err
	}
	c.mu.Lock()
	c.held[key] = s.DeepCopy()
	c.mu.Unlock()
	return nil
}

// Forget is an informer's event handler (of the Secrets' metadata) that
// drops the data held of each Secret deleted, so that the data of a Secret
// read once and deleted since (a restore's copy of a storage Secret) is not
// kept for the life of the process.
func (c *Client) Forget() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if o, ok := obj.(client.Object); ok {
			c.forget(client.ObjectKeyFromObject(o))
		}
	}}
}

// ForgetDeleted has the cache's informer of Secrets' metadata tell the
// client of each Secret deleted (Forget).
func (c *Client) ForgetDeleted(ctx context.Context, informers cache.Informers) error {
	inf, err := informers.GetInformer(ctx, Metadata())
	if err != nil {
		return fmt.Errorf("cannot watch secrets: %w", err)
	}
	if _, err := inf.AddEventHandler(c.Forget()); err != nil {
		return fmt.Errorf("cannot watch secrets: %w", err)
	}
	return nil
}

func (c *Client) forget(key client.ObjectKey) {
	c.mu.Lock()
	delete(c.held, key)
	c.mu.Unlock()
}

// Held is how many Secrets' data the client holds.
func (c *Client) Held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}
