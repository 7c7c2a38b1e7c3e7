package kuberetry

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// script answers each attempt with the next of its errors (nil: 200).
type script struct {
	errs   []error
	bodies []string
}

func (s *script) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		s.bodies = append(s.bodies, string(b))
	} else {
		s.bodies = append(s.bodies, "")
	}
	err := s.errs[0]
	s.errs = s.errs[1:]
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(nil))}, nil
}

func TestRoundTrip(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	cases := map[string]struct {
		reason   string
		errs     []error
		budget   time.Duration
		wantErr  bool
		attempts int
	}{
		"Succeeds":        {"a request that goes through is sent once", []error{nil}, time.Minute, false, 1},
		"RefusedThenOK":   {"a refused dial is tried again until the server is back", []error{refused, refused, nil}, time.Minute, false, 3},
		"ResetNotRetried": {"a request that may have reached the server is not sent again", []error{reset, nil}, time.Minute, true, 1},
		"BudgetSpent":     {"past the budget the dial error is returned", []error{refused, refused, refused, nil}, 500 * time.Millisecond, true, 2},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &script{errs: tc.errs}
			// A fake clock that only the transport's waits move.
			now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
			tr := &transport{next: s, budget: tc.budget, now: func() time.Time { return now }, sleep: func(_ *http.Request, d time.Duration) error {
				now = now.Add(d)
				return nil
			}}
			req, _ := http.NewRequest(http.MethodPatch, "https://127.0.0.1:1/x", bytes.NewReader([]byte("body")))
			_, err := tr.RoundTrip(req)
			if (err != nil) != tc.wantErr {
				t.Errorf("%s: error %v, want error %v", tc.reason, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.attempts, len(s.bodies)); diff != "" {
				t.Errorf("%s: attempts: -want +got:\n%s", tc.reason, diff)
			}
			for i, b := range s.bodies {
				if b != "body" {
					t.Errorf("%s: attempt %d sent body %q, want the whole body again", tc.reason, i, b)
				}
			}
		})
	}
}
