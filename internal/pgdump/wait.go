package pgdump

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"
)

// waitPause is the pause between two readiness checks.
const waitPause = time.Second

// WaitReady waits until the server accepts connections, checking with
// pg_isready once a second, for at most c.Wait: a server that is starting
// (or a Service whose pods are not ready yet) gets that long before a dump
// or load gives up. It returns at once when c.Wait is zero, leaving the
// first connection to decide. A server that has not accepted a
// connection when the time is up is DatabaseUnreachable.
func (c Conn) WaitReady(ctx context.Context) error {
	if c.Wait <= 0 {
		return nil
	}
	deadline := time.Now().Add(c.Wait)
	for {
		err := c.isReady(ctx, time.Until(deadline))
		if err == nil {
			return nil
		}
		var e *Error
		if errors.As(err, &e) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cannot wait for PostgreSQL at %s: %w", c.where(), ctx.Err())
		}
		left := time.Until(deadline)
		if left <= 0 {
			return &Error{Reason: ReasonUnreachable, Msg: fmt.Sprintf("PostgreSQL at %s did not accept connections within waitTimeout (%s): check the task's host (a Service of the namespace) and port, and that the database runs", c.where(), c.Wait)}
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(waitPause, left)):
		}
	}
}

// isReady runs pg_isready once, for at most left (at least a second): nil
// when the server accepts connections, an *Error when the check itself
// cannot run, another error when the server is not ready.
func (c Conn) isReady(ctx context.Context, left time.Duration) error {
	secs := int(left.Seconds())
	if secs < 1 {
		secs = 1
	}
	if t := c.ConnectTimeout; t > 0 && int(t.Seconds()) < secs {
		secs = max(int(t.Seconds()), 1)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, "pg_isready"), "--quiet", fmt.Sprintf("--timeout=%d", secs))
	cmd.Env = c.env()
	cmd.SysProcAttr = childAttr()
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit) && (exit.ExitCode() == 1 || exit.ExitCode() == 2):
		// 1: the server rejects connections (starting up); 2: no answer.
		return fmt.Errorf("PostgreSQL at %s is not ready (pg_isready exit %d)", c.where(), exit.ExitCode())
	case errors.As(err, &exit):
		return &Error{Reason: ReasonDumpFailed, Msg: fmt.Sprintf("cannot check whether PostgreSQL at %s is ready: pg_isready exit %d", c.where(), exit.ExitCode())}
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return &Error{Reason: ReasonDumpFailed, Msg: fmt.Sprintf("cannot run pg_isready: %v", err)}
}
