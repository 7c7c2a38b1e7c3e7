package kuberetry

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// answer is what the server does with one request: an error, else a
// status code.
type answer struct {
	err  error
	code int
}

// script answers each request with its next answer, recording each
// request as "METHOD path body auth".
type script struct {
	answers []answer
	sent    []string
}

func (s *script) RoundTrip(req *http.Request) (*http.Response, error) {
	body := ""
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		body = string(b)
	}
	s.sent = append(s.sent, strings.Join(strings.Fields(strings.Join([]string{req.Method, req.URL.Path, body, req.Header.Get("Authorization")}, " ")), " "))
	if len(s.answers) == 0 {
		return nil, errors.New("script ran out of answers")
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	if a.err != nil {
		return nil, a.err
	}
	return &http.Response{StatusCode: a.code, Body: io.NopCloser(bytes.NewReader(nil))}, nil
}

func TestRoundTrip(t *testing.T) {
	refused := answer{err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	reset := answer{err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}}
	ok, unavailable := answer{code: http.StatusOK}, answer{code: http.StatusServiceUnavailable}
	const patch, get, readyz = "PATCH /x body Bearer t", "GET /x Bearer t", "GET /readyz Bearer t"
	cases := map[string]struct {
		reason   string
		method   string
		answers  []answer
		budget   time.Duration
		wantErr  bool
		wantCode int
		sent     []string
	}{
		"Succeeds": {reason: "a request that goes through is sent once",
			method: http.MethodPatch, answers: []answer{ok}, budget: time.Minute,
			wantCode: 200, sent: []string{patch}},
		"RefusedThenReady": {reason: "a refused dial is sent again, whole, once the server says it is ready",
			method: http.MethodPatch, answers: []answer{refused, refused, unavailable, ok, ok}, budget: time.Minute,
			wantCode: 200, sent: []string{patch, readyz, readyz, readyz, patch}},
		"ResetNotRetried": {reason: "a write that may have reached the server is not sent again",
			method: http.MethodPatch, answers: []answer{reset, ok}, budget: time.Minute,
			wantErr: true, sent: []string{patch}},
		"WriteAnswered503": {reason: "a write the server answered is not sent again, whatever the answer",
			method: http.MethodPatch, answers: []answer{unavailable, ok}, budget: time.Minute,
			wantCode: 503, sent: []string{patch}},
		"ReadAnswered503": {reason: "a read answered 503 (discovery of a server still starting) is sent again once the server is ready",
			method: http.MethodGet, answers: []answer{unavailable, ok, ok}, budget: time.Minute,
			wantCode: 200, sent: []string{get, readyz, get}},
		"ReadAnswered404": {reason: "a read answered 404 is an answer",
			method: http.MethodGet, answers: []answer{{code: http.StatusNotFound}}, budget: time.Minute,
			wantCode: 404, sent: []string{get}},
		"BudgetSpent": {reason: "past the budget the dial error is returned",
			method: http.MethodPatch, answers: []answer{refused, refused, refused, refused}, budget: 500 * time.Millisecond,
			wantErr: true, sent: []string{patch, readyz, patch}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &script{answers: tc.answers}
			// A fake clock that only the transport's waits move.
			now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
			tr := &transport{next: s, budget: tc.budget, now: func() time.Time { return now }, sleep: func(_ *http.Request, d time.Duration) error {
				now = now.Add(d)
				return nil
			}}
			var body io.Reader
			if tc.method == http.MethodPatch {
				body = bytes.NewReader([]byte("body"))
			}
			req, _ := http.NewRequest(tc.method, "https://127.0.0.1:1/x", body)
			req.Header.Set("Authorization", "Bearer t")
			resp, err := tr.RoundTrip(req)
			if (err != nil) != tc.wantErr {
				t.Errorf("%s: error %v, want error %v", tc.reason, err, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.wantCode, resp.StatusCode); diff != "" {
					t.Errorf("%s: status: -want +got:\n%s", tc.reason, diff)
				}
			}
			if diff := cmp.Diff(tc.sent, s.sent); diff != "" {
				t.Errorf("%s: requests sent: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
