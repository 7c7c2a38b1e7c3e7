package restic_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stashplane/stashplane/internal/restic"
)

// fakeRestic writes a stand-in for restic that records its arguments,
// complains on standard error quoting its password and repository, and
// exits with code. It tests the driver around restic, not restic.
func fakeRestic(t *testing.T, code int) (bin, argsFile string) {
	t.Helper()
	dir := t.TempDir()
	bin, argsFile = filepath.Join(dir, "restic"), filepath.Join(dir, "args")
	script := fmt.Sprintf(`#!/bin/sh
echo "$@" > %q
echo 'progress on stdout is not an error'
echo '{"message_type":"exit_error","code":%d,"message":"failed with '"$RESTIC_PASSWORD"' at '"$RESTIC_REPOSITORY"'"}' >&2
exit %d
`, argsFile, code, code)
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, argsFile
}

func TestExitCodes(t *testing.T) {
	const (
		pw   = "hunter2-but-longer"
		repo = "rest:http://stashplane:bridge-credential-123@127.0.0.1:1/"
	)
	tests := map[string]struct {
		reason string
		code   int
		want   string
	}{
		"Success":          {reason: "Exit code 0 is no error.", code: 0, want: ""},
		"Failure":          {reason: "Exit code 1 is a plain failure.", code: 1, want: restic.ReasonResticFailed},
		"SourceIncomplete": {reason: "Exit code 3: some files were unreadable.", code: 3, want: restic.ReasonSourceIncomplete},
		"NoRepository":     {reason: "Exit code 10: no repository.", code: 10, want: restic.ReasonRepositoryNotFound},
		"Locked":           {reason: "Exit code 11: the lock is held.", code: 11, want: restic.ReasonRepositoryLocked},
		"WrongPassword":    {reason: "Exit code 12: wrong password.", code: 12, want: restic.ReasonWrongPassword},
		"Interrupted":      {reason: "Exit code 130: interrupted.", code: 130, want: restic.ReasonInterrupted},
		"Other":            {reason: "Any other code is a plain failure.", code: 2, want: restic.ReasonResticFailed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			bin, argsFile := fakeRestic(t, tc.code)
			r, err := restic.New(restic.Options{Binary: bin, Repository: repo, Password: pw})
			if err != nil {
				t.Fatal(err)
			}
			err = r.Unlock(context.Background(), false)
			if diff := cmp.Diff(tc.want, restic.Reason(err)); diff != "" {
				t.Errorf("%s\nReason(%v): -want +got:\n%s", tc.reason, err, diff)
			}
			if err != nil {
				msg := err.Error()
				if !strings.Contains(msg, "failed with [redacted] at rest:http://stashplane:[redacted]@127.0.0.1:1/") {
					t.Errorf("%s\nThe error carries restic's exit message, redacted: %q", tc.reason, msg)
				}
				for _, secret := range []string{pw, "bridge-credential-123"} {
					if strings.Contains(msg, secret) {
						t.Errorf("%s\nThe error quotes a secret: %q", tc.reason, msg)
					}
				}
			}
			args, err := os.ReadFile(argsFile)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(args), pw) || strings.Contains(string(args), "bridge-credential") {
				t.Errorf("A credential is on restic's command line: %q", args)
			}
		})
	}
}

// TestAbandoned: a run stopped by its context gets an interrupt, so that
// restic removes its lock; one abandoned (restic.ErrAbandoned) is killed
// without one. The stand-in records an interrupt and exits on it.
func TestAbandoned(t *testing.T) {
	for name, tc := range map[string]struct {
		cause         error
		wantInterrupt bool
	}{
		"Stopped":   {cause: context.Canceled, wantInterrupt: true},
		"Abandoned": {cause: restic.ErrAbandoned, wantInterrupt: false},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			bin, started, interrupted := filepath.Join(dir, "restic"), filepath.Join(dir, "started"), filepath.Join(dir, "interrupted")
			script := fmt.Sprintf("#!/bin/sh\ntrap 'echo > %q; exit 130' INT\necho > %q\nwhile :; do sleep 0.05; done\n", interrupted, started)
			if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			r, err := restic.New(restic.Options{Binary: bin, Repository: "/nowhere", Password: "pw"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			done := make(chan error, 1)
			go func() { _, err := r.Snapshots(ctx); done <- err }()
			for {
				if _, err := os.Stat(started); err == nil {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("the stand-in ended before it was stopped: %v", err)
				case <-time.After(10 * time.Millisecond):
				}
			}
			cancel(tc.cause)
			var e *restic.Error
			if err := <-done; !errors.As(err, &e) || e.Reason != restic.ReasonInterrupted {
				t.Errorf("stopped with cause %v: %v, want an error with reason %s", tc.cause, err, restic.ReasonInterrupted)
			}
			_, err = os.Stat(interrupted)
			if diff := cmp.Diff(tc.wantInterrupt, err == nil); diff != "" {
				t.Errorf("restic was interrupted (-want +got):\n%s", diff)
			}
		})
	}
}
