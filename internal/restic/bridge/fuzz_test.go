package bridge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"gocloud.dev/blob/memblob"
)

// storedKey is every key the bridge may write: restic's layout and nothing
// else.
var storedKey = regexp.MustCompile(`^(config|data/[0-9a-f]{2}/[0-9a-f]{64}|(keys|locks|snapshots|index)/[0-9a-f]{64})$`)

// FuzzBridgeRequests sends arbitrary methods, paths and queries to the
// bridge: it never panics, refuses every request without the credentials,
// and never writes an object outside restic's repository layout.
func FuzzBridgeRequests(f *testing.F) {
	valid := strings.Repeat("ab", 32)
	for _, seed := range []struct{ method, path string }{
		{http.MethodPost, "/?create=true"}, {http.MethodPost, "/config"}, {http.MethodGet, "/data/"},
		{http.MethodPost, "/data/" + valid}, {http.MethodPost, "/keys/" + valid}, {http.MethodPost, "/data/../config"},
		{http.MethodPost, "/data/" + valid + "/x"}, {http.MethodPost, "/other/" + valid}, {http.MethodDelete, "/"},
		{http.MethodPost, "//data/" + valid}, {http.MethodPost, "/locks/" + strings.ToUpper(valid)}, {http.MethodGet, "/data/%2e%2e%2fconfig"},
		{"PROPFIND", "/config"}, {http.MethodHead, "/index/" + valid},
	} {
		f.Add(seed.method, seed.path, true)
	}
	f.Fuzz(func(t *testing.T, method, path string, authenticated bool) {
		bucket := memblob.OpenBucket(nil)
		defer bucket.Close()
		h := NewHandler(bucket, "restic", "pw", Options{})
		req, err := http.NewRequest(method, "http://bridge"+path, strings.NewReader("content"))
		if err != nil {
			return
		}
		if authenticated {
			req.SetBasicAuth("restic", "pw")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !authenticated && rec.Code != http.StatusUnauthorized {
			t.Fatalf("%s %q without credentials answered %d", method, path, rec.Code)
		}
		it := bucket.List(nil)
		for {
			obj, err := it.Next(context.Background())
			if err != nil {
				break
			}
			if !storedKey.MatchString(obj.Key) {
				t.Fatalf("%s %q wrote key %q, outside the repository layout", method, path, obj.Key)
			}
		}
	})
}
