package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
)

func TestRecord(t *testing.T) {
	t.Parallel()
	snapshots := schema.GroupResource{Group: "storage.stashplane.io", Resource: "snapshots"}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	policy := recordPolicy{budget: 2 * time.Second, attempt: 100 * time.Millisecond, backoff: wait.Backoff{Duration: time.Millisecond, Factor: 2, Cap: 20 * time.Millisecond, Steps: 1 << 30}}
	cases := map[string]struct {
		// answers of the API server, one per attempt; an attempt past the
		// last gets the last. hang: the attempt waits for its deadline.
		answers  []error
		hang     map[int]bool
		attempts int
		want     string
	}{
		"written at once": {answers: []error{nil}, attempts: 1},
		"server away, then back": {
			answers:  []error{refused, refused, apierrors.NewServiceUnavailable("starting"), apierrors.NewTooManyRequests("busy", 1), nil},
			attempts: 5,
		},
		"a hanging connection is dropped and the next attempt written": {
			answers: []error{nil}, hang: map[int]bool{0: true}, attempts: 2,
		},
		"caches not filled after a restart": {
			answers:  []error{apierrors.NewUnauthorized("token"), apierrors.NewForbidden(snapshots, "s", errors.New("no binding")), nil},
			attempts: 3,
		},
		"the snapshot is gone": {
			answers:  []error{apierrors.NewNotFound(snapshots, "s")},
			attempts: 1, want: `snapshots.storage.stashplane.io "s" not found`,
		},
		"ill-formed": {
			answers:  []error{refused, apierrors.NewBadRequest("bad")},
			attempts: 2, want: "bad",
		},
		"the budget passes": {
			answers: []error{refused}, want: "dial tcp: connection refused",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := 0
			err := policy.record(context.Background(), logr.Discard(), func(ctx context.Context) error {
				i := n
				n++
				if tc.hang[i] {
					<-ctx.Done()
					return fmt.Errorf("cannot write: %w", ctx.Err())
				}
				return tc.answers[min(i, len(tc.answers)-1)]
			})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("error: -want +got:\n%s", diff)
			}
			if tc.attempts > 0 && n != tc.attempts {
				t.Errorf("attempts: got %d, want %d", n, tc.attempts)
			}
			if tc.attempts == 0 && n < 10 {
				t.Errorf("attempts within the budget: got %d, want many", n)
			}
		})
	}
}

// A run whose context is cancelled stops trying at once: the caller's
// cancel is its own decision, not a transient failure.
func TestRecordCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := recording.record(ctx, logr.Discard(), func(ctx context.Context) error {
		n++
		cancel()
		<-ctx.Done()
		return fmt.Errorf("cannot write: %w", ctx.Err())
	})
	if !errors.Is(err, context.Canceled) || n != 1 {
		t.Errorf("got %v after %d attempts, want context.Canceled after 1", err, n)
	}
}
