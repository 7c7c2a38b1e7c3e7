package agent

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
)

// A record the agent owes the cluster (a component's Running, its outcome,
// a prune) is worth waiting for: the data is in the storage, and the
// cluster learns of it only through this write. The API server may be away
// for a minute or more while the control plane is upgraded or restarted, so
// the agent keeps trying for minutes, each attempt bounded so a connection
// to a server that went away is dropped and dialled again.
var recording = recordPolicy{
	budget:  4 * time.Minute,
	attempt: 20 * time.Second,
	backoff: wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Cap: 10 * time.Second, Steps: 1 << 30},
}

// recordPolicy is how long a record is tried: budget in all, attempt for
// each try, backoff between tries.
type recordPolicy struct {
	budget, attempt time.Duration
	backoff         wait.Backoff
}

// record calls write until it succeeds, fails in a way another attempt
// cannot mend, or the budget passes; it returns the last error. Writes
// given to it are idempotent (server-side apply, or a merge patch of fields
// the agent alone sets), so an attempt whose answer was lost is harmless to
// repeat. Each failed attempt that will be tried again is logged.
func record(ctx context.Context, log logr.Logger, write func(context.Context) error) error {
	return recording.record(ctx, log, write)
}

func (p recordPolicy) record(ctx context.Context, log logr.Logger, write func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, p.budget)
	defer cancel()
	b := p.backoff
	for {
		actx, acancel := context.WithTimeout(ctx, p.attempt)
		err := write(actx)
		acancel()
		if err == nil || !retriable(err) {
			return err
		}
		delay := b.Step()
		if deadline, _ := ctx.Deadline(); time.Now().Add(delay).After(deadline) {
			return err
		}
		log.Info("cannot record yet; trying again", "in", delay.String(), "error", err.Error())
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// retriable tells whether another attempt may succeed. The object gone, a
// request the server refuses as ill-formed, or an unknown kind will not
// change by waiting; an unreachable server, a timeout, throttling, and the
// authentication and authorisation a restarting API server answers before
// its caches are filled may.
func retriable(err error) bool {
	switch {
	case errors.Is(err, context.Canceled):
		return false
	case apierrors.IsNotFound(err), apierrors.IsInvalid(err), apierrors.IsBadRequest(err),
		apierrors.IsMethodNotSupported(err), apierrors.IsNotAcceptable(err),
		apierrors.IsUnsupportedMediaType(err), apierrors.IsRequestEntityTooLargeError(err):
		return false
	}
	return true
}
