package provider

import (
	"context"
	"errors"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/backend"
	"github.com/stashplane/stashplane/internal/storage"
)

// OpenRemote opens an s3, gcs or azure backend.
func OpenRemote(ctx context.Context, spec storagev1alpha1.Backend, secret map[string][]byte) (*blob.Bucket, error) {
	return storage.Open(ctx, spec, secret, storage.OpenOptions{})
}

// Reason classifies an error from a backend into a condition reason and a
// message a user can act on, with no credential in it.
func Reason(err error) (string, string) {
	var nr *backend.ErrAccessorNotReady
	switch {
	case errors.As(err, &nr):
		return "AccessorNotReady", err.Error()
	case accessor.IsAccessorError(err):
		// The accessor's messages are its own and carry no credential.
		return accessorReason(gcerrors.Code(err)), err.Error()
	}
	return storage.Reason(err), storage.Message(err)
}

func accessorReason(c gcerrors.ErrorCode) string {
	switch c {
	case gcerrors.NotFound:
		return storage.ReasonNotFound
	case gcerrors.PermissionDenied:
		return storage.ReasonPermissionDenied
	}
	return storage.ReasonUnreachable
}
