// Package cachestore reads every object of a kind from the manager's
// cache by reference. A list through the cache's client copies each
// object into the list by value, even when deep copies are off: with ten
// thousand Snapshots or a thousand Repositories, read on every scrape or
// every observation, those copies were most of the provider's transient
// memory (docs/scale.md). Callers only read what they get.
package cachestore

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Objects is every object of T's kind the cache holds: the cache's own
// objects, which the caller must not change.
func Objects[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, c cache.Informers) ([]*T, error) {
	obj := PT(new(T))
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return nil, fmt.Errorf("cannot get the informer of %T: %w", obj, err)
	}
	var store toolscache.Store
	if st, ok := inf.(interface{ GetStore() toolscache.Store }); ok {
		store = st.GetStore()
	}
	if store == nil {
		return nil, fmt.Errorf("cannot read the cache of %T: its informer keeps no store", obj)
	}
	items := store.List()
	out := make([]*T, 0, len(items))
	for _, it := range items {
		if o, ok := it.(PT); ok {
			out = append(out, (*T)(o))
		}
	}
	return out, nil
}

// Metadata is an object of kind gvk to read as metadata only: from a
// cache that holds the kind so (WatchesMetadata, builder.OnlyMetadata),
// not the whole objects of every one of the cluster's.
func Metadata(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	return m
}

// MetadataList is a list of kind gvk's objects, metadata only.
func MetadataList(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadataList {
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	return l
}
