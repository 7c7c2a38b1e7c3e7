package storagekind

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"gocloud.dev/blob"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/storage"
)

// Opener opens BackupStorages' buckets. It is not copied once used.
type Opener struct {
	Client client.Client

	mu sync.Mutex
	// clients reach storage accessors, one per certificate pinned, so
	// that connections are kept between the reconciles that open them.
	clients map[string]*http.Client
}

func (o *Opener) accessorClient(cert []byte) (*http.Client, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.clients[string(cert)]; ok {
		return c, nil
	}
	c, err := accessor.HTTPClient(cert)
	if err != nil {
		return nil, err
	}
	if o.clients == nil {
		o.clients = map[string]*http.Client{}
	}
	o.clients[string(cert)] = c
	return c, nil
}

// ErrSecretNotFound says the backend's Secret does not exist.
type ErrSecretNotFound struct{ Namespace, Name string }

func (e *ErrSecretNotFound) Error() string {
	return fmt.Sprintf("cannot find backend secret %q in namespace %q", e.Name, e.Namespace)
}

// Secret returns the data of a BackupStorage's backend Secret (nil when it
// names none).
func (o *Opener) Secret(ctx context.Context, bs *storagev1alpha1.BackupStorage) (map[string][]byte, error) {
	name := bs.Spec.Storage.SecretName()
	if name == "" {
		return nil, nil
	}
	s := &corev1.Secret{}
	err := o.Client.Get(ctx, types.NamespacedName{Namespace: bs.Namespace, Name: name}, s)
	if kerrors.IsNotFound(err) {
		return nil, &ErrSecretNotFound{Namespace: bs.Namespace, Name: name}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot get backend secret %q: %w", name, err)
	}
	return s.Data, nil
}

// Open opens a BackupStorage's bucket: through its accessor for local
// storage, directly for the others.
func (o *Opener) Open(ctx context.Context, bs *storagev1alpha1.BackupStorage) (*blob.Bucket, error) {
	if bs.Spec.Storage.Provider == storagev1alpha1.ProviderLocal {
		return o.openAccessor(ctx, bs)
	}
	secret, err := o.Secret(ctx, bs)
	if err != nil {
		return nil, err
	}
	// storage.Open is the one opener of every backend's bucket, the
	// agent's too.
	return storage.Open(ctx, bs.Spec.Storage, secret, storage.OpenOptions{})
}

func (o *Opener) openAccessor(ctx context.Context, bs *storagev1alpha1.BackupStorage) (*blob.Bucket, error) {
	addr, creds, err := accessor.Endpoint(ctx, o.Client, bs)
	if err != nil {
		return nil, err
	}
	hc, err := o.accessorClient(creds.Certificate)
	if err != nil {
		return nil, err
	}
	return accessor.OpenBucket(addr, creds.Token, hc)
}
