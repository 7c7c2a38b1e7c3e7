package accessor

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"
)

// TestTLS: an accessor serving its certificate is reached by a client
// pinning that certificate, and refused (at the handshake, before any
// token is sent) by one pinning another accessor's or trusting the
// system's roots.
func TestTLS(t *testing.T) {
	now := time.Now()
	certPEM, keyPEM, err := NewCertificate(now)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, _, err := NewCertificate(now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, certKey), filepath.Join(dir, keyKey)
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	files := memblob.OpenBucket(nil)
	if err := files.WriteAll(context.Background(), "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(&Server{Bucket: files, Token: "tok"})
	srv.TLS = cfg
	srv.StartTLS()
	defer srv.Close()

	pinned := func(pem []byte) *http.Client {
		c, err := HTTPClient(pem)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := map[string]struct {
		reason  string
		client  *http.Client
		wantErr string
	}{
		"Pinned":      {reason: "A client pinning the accessor's certificate reads through it.", client: pinned(certPEM)},
		"OtherPinned": {reason: "A client pinning another accessor's certificate is refused.", client: pinned(otherPEM), wantErr: "certificate"},
		"SystemRoots": {reason: "A client trusting the system's roots is refused.", client: nil, wantErr: "certificate"},
		"OldTLS":      {reason: "A client offering only TLS 1.2 is refused.", client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}}}, wantErr: "protocol version"}, //nolint:gosec // the point of the case
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := OpenBucket(srv.URL, "tok", tc.client)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			got, err := b.ReadAll(context.Background(), "k")
			switch {
			case tc.wantErr == "" && (err != nil || string(got) != "v"):
				t.Errorf("%s\nReadAll: %q, %v; want v", tc.reason, got, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("%s\nReadAll: %v; want an error about %s", tc.reason, err, tc.wantErr)
			}
		})
	}
}

func TestServerTLSMissing(t *testing.T) {
	if _, err := ServerTLS(filepath.Join(t.TempDir(), "none.crt"), filepath.Join(t.TempDir(), "none.key")); err == nil {
		t.Error("ServerTLS with no files: want an error, got none")
	}
}
