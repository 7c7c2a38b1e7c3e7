package storagekind

import (
	"errors"

	"gocloud.dev/gcerrors"

	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/storage"
)

// Classify is the one classifier of storage errors for conditions: a
// reason a user can act on and a message with no credential in it. The
// backends' errors are classified by internal/storage, which never quotes
// a backend's own text; an accessor's messages are its own and name no
// credential; a local storage whose accessor is not serving yet says so.
func Classify(err error) (reason, message string) {
	var nr *accessor.ErrNotReady
	switch {
	case err == nil:
		return "", ""
	case errors.As(err, &nr):
		return ReasonAccessorNotReady, err.Error()
	case accessor.IsAccessorError(err):
		return accessorReason(gcerrors.Code(err)), err.Error()
	}
	return storage.Reason(err), storage.Message(err)
}

// ReasonAccessorNotReady: a local storage's accessor has no ready pod.
const ReasonAccessorNotReady = "AccessorNotReady"

func accessorReason(c gcerrors.ErrorCode) string {
	switch c {
	case gcerrors.NotFound:
		return storage.ReasonNotFound
	case gcerrors.PermissionDenied:
		return storage.ReasonPermissionDenied
	}
	return storage.ReasonUnreachable
}
