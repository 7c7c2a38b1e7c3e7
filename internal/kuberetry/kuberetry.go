// Package kuberetry keeps a short-lived process's API calls going through a
// brief API server outage (a restart, an upgrade): a request whose
// connection could not even be dialled never reached the server, so it is
// safe to send again, whatever its verb.
package kuberetry

import (
	"errors"
	"net"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
)

// Wrap makes every request of cfg that fails to dial the API server try
// again, with backoff, until budget has passed since its first attempt or
// its context ends.
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
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	deadline := t.now().Add(t.budget)
	wait := 200 * time.Millisecond
	for {
		resp, err := t.next.RoundTrip(req)
		if err == nil || !notDialled(err) || t.now().Add(wait).After(deadline) {
			return resp, err
		}
		if req.Body != nil {
			if req.GetBody == nil {
				return resp, err
			}
			body, berr := req.GetBody()
			if berr != nil {
				return resp, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		if serr := t.sleep(req, wait); serr != nil {
			return resp, err
		}
		wait = min(2*wait, 5*time.Second)
	}
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
