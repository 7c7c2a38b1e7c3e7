package provider

import (
	"context"

	"gocloud.dev/blob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/controllers/backupstorage"
)

// OpenRemote opens s3, gcs and azure backends.
// TODO(storage): wire internal/storage.Open once it lands.
var OpenRemote backend_OpenFunc = nil

type backend_OpenFunc = func(ctx context.Context, spec storagev1alpha1.Backend, secret map[string][]byte) (*blob.Bucket, error)

// Reason classifies storage errors.
var Reason = backupstorage.DefaultReason
