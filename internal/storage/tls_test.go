package storage

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInsecureTLS shows spec.s3.insecureTLS: a client without it refuses
// an endpoint whose certificate it cannot verify, one with it connects.
func TestInsecureTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	cases := map[string]struct {
		reason   string
		insecure bool
		want     bool
	}{
		"Verified": {reason: "A self-signed endpoint is refused when TLS is verified.", want: false},
		"Insecure": {reason: "insecureTLS skips the verification.", insecure: true, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			hc, closeIdle, err := newHTTPClient(nil, tc.insecure)
			if err != nil {
				t.Fatal(err)
			}
			defer closeIdle()
			req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			if diff := cmp.Diff(tc.want, err == nil); diff != "" {
				t.Errorf("%s\nconnected: -want +got:\n%s (error %v)", tc.reason, diff, err)
			}
		})
	}
}
