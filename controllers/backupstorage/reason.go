package backupstorage

import (
	"errors"

	"gocloud.dev/gcerrors"

	"github.com/stashplane/stashplane/internal/backend"
)

// DefaultReason classifies an error from opening or using a backend into a
// condition reason. The storage layer's own classifier replaces it where
// one is wired in; this one knows only what the backend package reports
// and gocloud's error codes.
func DefaultReason(err error) (string, string) {
	var nr *backend.ErrAccessorNotReady
	if errors.As(err, &nr) {
		return "AccessorNotReady", err.Error()
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return "BucketNotFound", "the bucket or container does not exist"
	case gcerrors.PermissionDenied:
		return "PermissionDenied", "the backend refused the credentials"
	}
	return "BackendUnavailable", "cannot reach the backend"
}
