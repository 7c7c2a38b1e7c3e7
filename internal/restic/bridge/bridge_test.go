package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
)

func hashName(content string) string {
	s := sha256.Sum256([]byte(content))
	return hex.EncodeToString(s[:])
}

// TestHandler exercises the protocol against an in-memory bucket: the
// layout the objects land in, and the answers restic relies on.
func TestHandler(t *testing.T) {
	pack := "pack contents"
	packName := hashName(pack)
	idx := "index contents"
	idxName := hashName(idx)
	dataDir := map[string]string{
		"data/" + packName[:2] + "/" + packName:                "pack contents",
		"data/" + packName[:2] + "/" + packName + ".1a2b.tmp":  "temp file of a write in progress",
		"data/" + idxName[:2] + "/" + idxName + "-tmp-restic1": "restic's own temp file",
		"index/" + idxName: "not data",
	}
	type request struct {
		method, path, body, accept, rng string
		noAuth                          bool
	}
	type response struct {
		Status      int
		Body        string
		ContentType string
		Range       string
		Length      string
	}
	tests := map[string]struct {
		reason string
		// objects in the bucket before the request, by key.
		objects map[string]string
		req     request
		want    response
		// wantObjects are the bucket's keys and contents after the request.
		wantObjects map[string]string
	}{
		"Unauthorized": {
			reason: "A request without the run's credential is refused and changes nothing.",
			req:    request{method: "POST", path: "/config", body: "x", noAuth: true},
			want:   response{Status: 401},
		},
		"CreateRepository": {
			reason: "POST /?create=true succeeds on an empty bucket and writes nothing.",
			req:    request{method: "POST", path: "/?create=true"},
			want:   response{Status: 200},
		},
		"CreateOverLeftovers": {
			reason:      "A directory holding anything is never initialised over.",
			objects:     map[string]string{"data/ab/abcdef": "a pack of a wiped repository"},
			req:         request{method: "POST", path: "/?create=true"},
			want:        response{Status: 403},
			wantObjects: map[string]string{"data/ab/abcdef": "a pack of a wiped repository"},
		},
		"ConfigNeverReplaced": {
			reason:      "A config is never replaced by another.",
			objects:     map[string]string{"config": "the first run's"},
			req:         request{method: "POST", path: "/config", body: "the second run's"},
			want:        response{Status: 403},
			wantObjects: map[string]string{"config": "the first run's"},
		},
		"ConfigWrittenAgain": {
			reason:      "The same config again (a retried write whose answer was lost) is taken as written.",
			objects:     map[string]string{"config": "cfg"},
			req:         request{method: "POST", path: "/config", body: "cfg"},
			want:        response{Status: 200},
			wantObjects: map[string]string{"config": "cfg"},
		},
		"KeyNeverReplaced": {
			reason:      "A key is never replaced by another of its name.",
			objects:     map[string]string{"keys/" + hashName("key"): "another key left there"},
			req:         request{method: "POST", path: "/keys/" + hashName("key"), body: "key"},
			want:        response{Status: 403},
			wantObjects: map[string]string{"keys/" + hashName("key"): "another key left there"},
		},
		"SaveConfig": {
			reason:      "The config is saved as the object config.",
			req:         request{method: "POST", path: "/config", body: "cfg"},
			want:        response{Status: 200},
			wantObjects: map[string]string{"config": "cfg"},
		},
		"StatConfig": {
			reason:      "HEAD of a file gives its size as Content-Length.",
			objects:     map[string]string{"config": "12345"},
			req:         request{method: "HEAD", path: "/config"},
			want:        response{Status: 200, Length: "5"},
			wantObjects: map[string]string{"config": "12345"},
		},
		"StatMissing": {
			reason: "HEAD of a missing file is 404, which restic reads as 'does not exist'.",
			req:    request{method: "HEAD", path: "/config"},
			want:   response{Status: 404},
		},
		"SaveData": {
			reason:      "A data file lands in its two-character directory, as in restic's local layout.",
			req:         request{method: "POST", path: "/data/" + packName, body: pack},
			want:        response{Status: 200},
			wantObjects: map[string]string{"data/" + packName[:2] + "/" + packName: pack},
		},
		"SaveIndex": {
			reason:      "Other types are flat directories.",
			req:         request{method: "POST", path: "/index/" + idxName, body: idx},
			want:        response{Status: 200},
			wantObjects: map[string]string{"index/" + idxName: idx},
		},
		"SaveCorrupted": {
			reason: "An upload whose content does not hash to its name is refused and never becomes an object.",
			req:    request{method: "POST", path: "/data/" + packName, body: pack + "!"},
			want:   response{Status: 400, Body: "the uploaded content does not match its name\n", ContentType: "text/plain; charset=utf-8"},
		},
		"BadName": {
			reason:      "A name that is not a restic file name is not served, so no path can leave the repository.",
			objects:     map[string]string{"config": "cfg"},
			req:         request{method: "GET", path: "/keys/..%2Fconfig"},
			want:        response{Status: 404},
			wantObjects: map[string]string{"config": "cfg"},
		},
		"GetData": {
			reason:      "GET streams a whole file.",
			objects:     map[string]string{"data/" + packName[:2] + "/" + packName: pack},
			req:         request{method: "GET", path: "/data/" + packName},
			want:        response{Status: 200, Body: pack, ContentType: "application/octet-stream", Length: "13"},
			wantObjects: map[string]string{"data/" + packName[:2] + "/" + packName: pack},
		},
		"GetRange": {
			reason:      "A Range request answers 206 with that range only.",
			objects:     map[string]string{"data/" + packName[:2] + "/" + packName: pack},
			req:         request{method: "GET", path: "/data/" + packName, rng: "bytes=5-12"},
			want:        response{Status: 206, Body: "contents", ContentType: "application/octet-stream", Range: "bytes 5-12/13", Length: "8"},
			wantObjects: map[string]string{"data/" + packName[:2] + "/" + packName: pack},
		},
		"GetOpenRange": {
			reason:      "A range without an end reads to the end.",
			objects:     map[string]string{"config": "0123456789"},
			req:         request{method: "GET", path: "/config", rng: "bytes=7-"},
			want:        response{Status: 206, Body: "789", ContentType: "application/octet-stream", Range: "bytes 7-9/10", Length: "3"},
			wantObjects: map[string]string{"config": "0123456789"},
		},
		"GetSuffixRange": {
			reason:      "A suffix range reads the last bytes.",
			objects:     map[string]string{"config": "0123456789"},
			req:         request{method: "GET", path: "/config", rng: "bytes=-2"},
			want:        response{Status: 206, Body: "89", ContentType: "application/octet-stream", Range: "bytes 8-9/10", Length: "2"},
			wantObjects: map[string]string{"config": "0123456789"},
		},
		"GetMissing": {
			reason: "GET of a missing file is 404.",
			req:    request{method: "GET", path: "/keys/" + idxName},
			want:   response{Status: 404},
		},
		"Delete": {
			reason:      "DELETE removes exactly that file.",
			objects:     map[string]string{"locks/" + idxName: "l", "config": "c"},
			req:         request{method: "DELETE", path: "/locks/" + idxName},
			want:        response{Status: 200},
			wantObjects: map[string]string{"config": "c"},
		},
		"ListV2": {
			reason:      "The v2 list gives names and sizes of the type's files, flat, and nothing else.",
			objects:     dataDir,
			req:         request{method: "GET", path: "/data/", accept: "application/vnd.x.restic.rest.v2"},
			want:        response{Status: 200, ContentType: "application/vnd.x.restic.rest.v2", Body: `[{"name":"` + packName + `","size":13}` + "\n]\n"},
			wantObjects: dataDir,
		},
		"ListV1": {
			reason:      "Without the v2 Accept header the list is the names alone.",
			objects:     map[string]string{"keys/" + idxName: "k"},
			req:         request{method: "GET", path: "/keys/"},
			want:        response{Status: 200, ContentType: "application/vnd.x.restic.rest.v1", Body: `["` + idxName + `"` + "\n]\n"},
			wantObjects: map[string]string{"keys/" + idxName: "k"},
		},
		"ListEmpty": {
			reason: "A type with no files lists as an empty array.",
			req:    request{method: "GET", path: "/snapshots/", accept: "application/vnd.x.restic.rest.v2"},
			want:   response{Status: 200, ContentType: "application/vnd.x.restic.rest.v2", Body: "[]\n"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := memblob.OpenBucket(nil)
			defer func() { _ = b.Close() }()
			for k, v := range tc.objects {
				if err := b.WriteAll(ctx, k, []byte(v), nil); err != nil {
					t.Fatal(err)
				}
			}
			srv := httptest.NewServer(NewHandler(b, "u", "p", Options{Log: logr.Discard(), VerifyUploads: true}))
			defer srv.Close()
			req, err := http.NewRequest(tc.req.method, srv.URL+tc.req.path, strings.NewReader(tc.req.body))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.req.noAuth {
				req.SetBasicAuth("u", "p")
			}
			if tc.req.accept != "" {
				req.Header.Set("Accept", tc.req.accept)
			}
			if tc.req.rng != "" {
				req.Header.Set("Range", tc.req.rng)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			got := response{Status: res.StatusCode, Range: res.Header.Get("Content-Range")}
			if tc.want.Body != "" || tc.want.ContentType != "" {
				got.Body, got.ContentType = string(body), res.Header.Get("Content-Type")
			}
			if tc.want.Length != "" {
				got.Length = res.Header.Get("Content-Length")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n%s %s: -want +got:\n%s", tc.reason, tc.req.method, tc.req.path, diff)
			}
			if diff := cmp.Diff(tc.wantObjects, objects(t, b)); diff != "" {
				t.Errorf("%s\nobjects after %s %s: -want +got:\n%s", tc.reason, tc.req.method, tc.req.path, diff)
			}
		})
	}
}

// objects lists a bucket's keys and contents; nil when it is empty.
func objects(t *testing.T, b *blob.Bucket) map[string]string {
	t.Helper()
	ctx := context.Background()
	it := b.List(nil)
	var got map[string]string
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		v, err := b.ReadAll(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil {
			got = map[string]string{}
		}
		got[o.Key] = string(v)
	}
	return got
}

// TestInitRace: two runs initialise one repository at once. The one whose
// config lands second is refused, and the key it wrote is taken back, so
// the repository holds one config and only the keys that open it.
func TestInitRace(t *testing.T) {
	b := memblob.OpenBucket(nil)
	defer func() { _ = b.Close() }()
	post := func(h http.Handler, path, body string) int {
		srv := httptest.NewServer(h)
		defer srv.Close()
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("u", "p")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		return res.StatusCode
	}
	first := NewHandler(b, "u", "p", Options{Log: logr.Discard()})
	second := NewHandler(b, "u", "p", Options{Log: logr.Discard()})
	steps := []struct {
		h          http.Handler
		path, body string
		want       int
	}{
		{first, "/?create=true", "", 200},
		{second, "/?create=true", "", 200},
		{first, "/keys/" + hashName("key of the first"), "key of the first", 200},
		{second, "/keys/" + hashName("key of the second"), "key of the second", 200},
		{second, "/config", "config of the second", 200},
		{first, "/config", "config of the first", 403},
	}
	for i, s := range steps {
		if got := post(s.h, s.path, s.body); got != s.want {
			t.Errorf("step %d, POST %s: status %d, want %d", i, s.path, got, s.want)
		}
	}
	want := map[string]string{"config": "config of the second", "keys/" + hashName("key of the second"): "key of the second"}
	if diff := cmp.Diff(want, objects(t, b)); diff != "" {
		t.Errorf("objects after the race: -want +got:\n%s", diff)
	}
}

// TestLocksAfter: with LocksAfter, a lock file is written only once the
// channel given for it is closed, while other files are written at once;
// a lock request its client gave up on while it waited writes nothing,
// and neither does one whose channel was replaced before it closed, when
// a later one's opens.
func TestLocksAfter(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	defer func() { _ = b.Close() }()
	var mu sync.Mutex
	gate := make(chan struct{})
	current := func() <-chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		return gate
	}
	srv := httptest.NewServer(NewHandler(b, "u", "p", Options{Log: logr.Discard(), LocksAfter: current}))
	defer srv.Close()
	post := func(ctx context.Context, path, body string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.SetBasicAuth("u", "p")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", path, res.Status)
		}
		return nil
	}
	lock1, lock2 := strings.Repeat("1", 64), strings.Repeat("2", 64)

	// A lock whose client gives up while it waits.
	gaveUp, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := post(gaveUp, "/locks/"+lock1, "given up"); err == nil {
		t.Errorf("a lock request was answered before LocksAfter was closed")
	}
	// Another file is written while locks wait.
	if err := post(ctx, "/snapshots/"+hashName("snap"), "snap"); err != nil {
		t.Fatal(err)
	}
	// A lock whose gate is replaced (its run was abandoned) while its
	// client still waits.
	lock3 := strings.Repeat("3", 64)
	abandonedCtx, abandon := context.WithCancel(ctx)
	abandoned := make(chan error, 1)
	go func() { abandoned <- post(abandonedCtx, "/locks/"+lock3, "abandoned") }()
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	gate = make(chan struct{})
	mu.Unlock()
	waiting := make(chan error, 1)
	go func() { waiting <- post(ctx, "/locks/"+lock2, "lock") }()
	select {
	case err := <-waiting:
		t.Fatalf("a lock was written before LocksAfter was closed (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	mu.Lock()
	close(gate)
	mu.Unlock()
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-abandoned:
		t.Fatalf("the lock of an abandoned run was answered when a later gate opened (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	abandon()
	if err := <-abandoned; err == nil {
		t.Errorf("the lock of an abandoned run was written")
	}
	want := map[string]string{"snapshots/" + hashName("snap"): "snap", "locks/" + lock2: "lock"}
	if diff := cmp.Diff(want, objects(t, b)); diff != "" {
		t.Errorf("objects: -want +got:\n%s", diff)
	}
}
