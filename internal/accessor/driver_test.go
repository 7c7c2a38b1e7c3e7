package accessor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/blob/drivertest"
	"gocloud.dev/blob/fileblob"
)

// harness serves a file bucket in a temporary directory through an accessor
// on loopback, as an accessor pod serves its mounted volume.
type harness struct {
	srv   *httptest.Server
	files *blob.Bucket
}

func newHarness(_ context.Context, t *testing.T) (drivertest.Harness, error) {
	files, err := fileblob.OpenBucket(t.TempDir(), nil)
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(&Server{Bucket: files, Token: "test-token"})
	return &harness{srv: srv, files: files}, nil
}

func (h *harness) MakeDriver(context.Context) (driver.Bucket, error) {
	return &bucket{base: mustURL(h.srv.URL), token: "test-token", client: h.srv.Client()}, nil
}

func (h *harness) MakeDriverForNonexistentBucket(context.Context) (driver.Bucket, error) {
	return nil, nil
}

func (h *harness) HTTPClient() *http.Client         { return h.srv.Client() }
func (h *harness) SupportsCopy() bool               { return true }
func (h *harness) SupportsNonSlashDelimiters() bool { return true }
func (h *harness) Close() {
	h.srv.Close()
	h.files.Close()
}

// TestConformance runs gocloud's driver conformance suite against the
// accessor client and server.
func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, newHarness, nil)
}
