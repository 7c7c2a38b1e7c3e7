package restic_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stashplane/stashplane/internal/restic"
)

// TestGate: a gated backup (BackupOptions.Gate) of real restic on its
// local backend waits, holding its lock, until the gate is closed, and
// reads the source only then; stopped at the gate it removes its lock and
// stores nothing; a restic that fails before the gate ends the run.
func TestGate(t *testing.T) {
	tests := map[string]struct {
		reason string
		// stop stops the run at the gate instead of opening it.
		stop bool
		// password opens the repository; a wrong one fails before the
		// gate.
		password   string
		wantReason string
		// wantStored is what the snapshot holds of the source's file.
		wantStored string
	}{
		"Opened": {
			reason:     "restic takes its lock, then waits at the gate; what the source holds when the gate opens is stored.",
			password:   password,
			wantStored: "after",
		},
		"Stopped": {
			reason:     "Stopped at the gate, restic is interrupted: no snapshot, no lock left.",
			stop:       true,
			password:   password,
			wantReason: restic.ReasonInterrupted,
		},
		"FailsFirst": {
			reason:     "restic that fails before the gate (a wrong password) ends the run.",
			password:   "not the password",
			wantReason: restic.ReasonWrongPassword,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			repo, src := t.TempDir(), t.TempDir()
			if err := newRestic(t, repo, password).Init(ctx(t)); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(src, "data.txt")
			if err := os.WriteFile(file, []byte("before"), 0o644); err != nil {
				t.Fatal(err)
			}
			r := newRestic(t, repo, tc.password)
			gate := make(chan struct{})
			runCtx, stop := context.WithCancel(ctx(t))
			defer stop()
			type result struct {
				sum *restic.BackupSummary
				err error
			}
			done := make(chan result, 1)
			go func() {
				sum, err := r.Backup(runCtx, restic.BackupOptions{Paths: []string{src}, Host: "node-a", Gate: gate}, nil)
				done <- result{sum, err}
			}()
			var got result
			if tc.wantReason == restic.ReasonWrongPassword {
				got = <-done
			} else {
				waitForLock(t, repo, done)
				// restic, if it were not held, has had the time to read
				// and store the file as it was.
				time.Sleep(300 * time.Millisecond)
				select {
				case res := <-done:
					t.Fatalf("%s\nrestic ended before its gate was opened: %+v, %v", tc.reason, res.sum, res.err)
				default:
				}
				if err := os.WriteFile(file, []byte("after"), 0o644); err != nil {
					t.Fatal(err)
				}
				if tc.stop {
					stop()
				} else {
					close(gate)
				}
				got = <-done
			}
			if diff := cmp.Diff(tc.wantReason, restic.Reason(got.err)); diff != "" {
				t.Errorf("%s\nReason(%v): -want +got:\n%s", tc.reason, got.err, diff)
			}
			if locks, _ := os.ReadDir(filepath.Join(repo, "locks")); len(locks) != 0 {
				t.Errorf("%s\n%d locks left in the repository, want none", tc.reason, len(locks))
			}
			stored := ""
			if got.err == nil {
				var b bytes.Buffer
				if err := newRestic(t, repo, password).Dump(ctx(t), got.sum.SnapshotID, file, &b); err != nil {
					t.Fatal(err)
				}
				stored = b.String()
			}
			if snaps, _ := os.ReadDir(filepath.Join(repo, "snapshots")); (len(snaps) > 0) != (tc.wantStored != "") {
				t.Errorf("%s\nthe repository holds %d snapshots", tc.reason, len(snaps))
			}
			if diff := cmp.Diff(tc.wantStored, stored); diff != "" {
				t.Errorf("%s\nthe stored file: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// waitForLock waits until restic's lock is in the local repository at
// repo, failing the test when the run ends first.
func waitForLock[T any](t *testing.T, repo string, done <-chan T) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if locks, _ := os.ReadDir(filepath.Join(repo, "locks")); len(locks) > 0 {
			return
		}
		select {
		case res := <-done:
			t.Fatalf("restic ended before it took its lock: %+v", res)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("restic took no lock within a minute")
		}
	}
}
