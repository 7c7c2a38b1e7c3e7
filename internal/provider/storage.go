package provider

import (
	"context"

	"gocloud.dev/blob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/storage"
)

// OpenRemote opens an s3, gcs or azure backend.
func OpenRemote(ctx context.Context, spec storagev1alpha1.Backend, secret map[string][]byte) (*blob.Bucket, error) {
	return storage.Open(ctx, spec, secret, storage.OpenOptions{})
}
