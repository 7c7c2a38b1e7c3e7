// Package kuberetry keeps a short-lived process's API calls going through a
// brief API server outage (a restart, an upgrade). A request whose
// connection could not even be dialled never reached the server, so it is
// safe to send again, whatever its verb; a read answered 5xx or 429 changes
// nothing and is sent again too. A server that has just come back accepts
// connections before it serves everything (custom resources are served
// once its informers have synced, discovery answers 5xx until then), so
// after an outage no request is sent before the server's /readyz says it
// is ready.
package kuberetry

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// Wrap makes every request of cfg that fails to dial the API server, and
// every read it answers 5xx or 429, try again with backoff, once the server
// says it is ready, until budget has passed since the request's first
// attempt or its context ends.
func Wrap(cfg *rest.Config, budget time.Duration) {
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &transport{next: rt, budget: budget, now: time.Now, sleep: sleepCtx}
	})
}

type transport struct {
	next   http.RoundTripper
	budget time.Duration
	now    func() time.Time
	sleep  func(req *http.Request, d time.Duration) error

	mu sync.Mutex
	// outage is set by a request that met the outage and cleared once
	// /readyz answered 200.
	outage bool
}

const (
	firstWait = 200 * time.Millisecond
	maxWait   = 5 * time.Second
)

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	deadline := t.now().Add(t.budget)
	wait := firstWait
	for {
		if t.inOutage() {
			t.awaitReady(req, deadline, &wait)
		}
		resp, err := t.next.RoundTrip(req)
		if !t.again(req, resp, err) || t.now().Add(wait).After(deadline) {
			return resp, err
		}
		next, ok := rewind(req)
		if !ok {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		t.setOutage(true)
		req = next
		if serr := t.sleep(req, wait); serr != nil {
			return nil, serr
		}
		wait = min(2*wait, maxWait)
	}
}

// again says whether a request met the outage and may be sent again.
func (t *transport) again(req *http.Request, resp *http.Response, err error) bool {
	if err != nil {
		return notDialled(err)
	}
	read := req.Method == http.MethodGet || req.Method == http.MethodHead
	return read && (resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests)
}

// rewind is req ready to be sent again, its body from the start.
func rewind(req *http.Request) (*http.Request, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	out := req.Clone(req.Context())
	out.Body = body
	return out, true
}

// awaitReady asks the server's /readyz, with req's credentials, until it
// answers 200 or the deadline or req's context ends; the request is then
// sent whatever the answer, and says for itself what went wrong.
func (t *transport) awaitReady(req *http.Request, deadline time.Time, wait *time.Duration) {
	for {
		probe, err := http.NewRequestWithContext(req.Context(), http.MethodGet, req.URL.Scheme+"://"+req.URL.Host+"/readyz", nil)
		if err != nil {
			return
		}
		if a := req.Header.Get("Authorization"); a != "" {
			probe.Header.Set("Authorization", a)
		}
		resp, err := t.next.RoundTrip(probe)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.setOutage(false)
				return
			}
		}
		if t.now().Add(*wait).After(deadline) || t.sleep(req, *wait) != nil {
			return
		}
		*wait = min(2**wait, maxWait)
	}
}

func (t *transport) inOutage() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.outage
}

func (t *transport) setOutage(v bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.outage = v
}

// notDialled says whether err means no connection was made: the request
// was never sent.
func notDialled(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func sleepCtx(req *http.Request, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-req.Context().Done():
		return req.Context().Err()
	case <-t.C:
		return nil
	}
}
