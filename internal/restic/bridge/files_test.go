package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob/memblob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/storage"
)

// TestGetFromFiles reads a pack of a few MiB through the bridge over a
// local storage opened as a restore Job opens it, where the file goes to
// the connection by sendfile: every range answers exactly its bytes.
func TestGetFromFiles(t *testing.T) {
	const size = 3<<20 + 12345
	pack := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range pack {
		pack[i] = byte(rng.Uint32())
	}
	packName := hex.EncodeToString(sha256.New().Sum(nil)) // any valid name
	root := t.TempDir()
	p := filepath.Join(root, "repo", "data", packName[:2], packName)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, pack, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{MountPath: "/storage", SubPath: "repo"}}
	b, err := storage.Open(context.Background(), spec, nil, storage.OpenOptions{LocalRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	srv := httptest.NewServer(NewHandler(b, "u", "p", Options{Log: logr.Discard()}))
	defer srv.Close()

	type response struct {
		Status int
		Range  string
		Length string
		// Body is the length and SHA-256 of the body.
		Body string
	}
	part := func(from, to int) string { // to is exclusive
		s := sha256.Sum256(pack[from:to])
		return fmt.Sprintf("%d %x", to-from, s)
	}
	tests := map[string]struct {
		reason string
		rng    string
		want   response
	}{
		"Whole": {
			reason: "A GET without a range sends the whole file.",
			want:   response{Status: 200, Length: fmt.Sprint(size), Body: part(0, size)},
		},
		"FirstByte": {
			reason: "A one-byte range sends one byte.",
			rng:    "bytes=0-0",
			want:   response{Status: 206, Range: fmt.Sprintf("bytes 0-0/%d", size), Length: "1", Body: part(0, 1)},
		},
		"Middle": {
			reason: "A range across MiB boundaries sends exactly its bytes, not the rest of the file.",
			rng:    "bytes=1000000-2500000",
			want:   response{Status: 206, Range: fmt.Sprintf("bytes 1000000-2500000/%d", size), Length: "1500001", Body: part(1000000, 2500001)},
		},
		"ToTheEnd": {
			reason: "An open range sends from its start to the end.",
			rng:    "bytes=3145000-",
			want:   response{Status: 206, Range: fmt.Sprintf("bytes 3145000-%d/%d", size-1, size), Length: fmt.Sprint(size - 3145000), Body: part(3145000, size)},
		},
		"PastTheEnd": {
			reason: "A range whose end is past the file's is cut at the end of the file.",
			rng:    fmt.Sprintf("bytes=%d-%d", size-10, size+1000),
			want:   response{Status: 206, Range: fmt.Sprintf("bytes %d-%d/%d", size-10, size-1, size), Length: "10", Body: part(size-10, size)},
		},
		"Suffix": {
			reason: "A suffix range sends the last bytes.",
			rng:    "bytes=-4096",
			want:   response{Status: 206, Range: fmt.Sprintf("bytes %d-%d/%d", size-4096, size-1, size), Length: "4096", Body: part(size-4096, size)},
		},
		"Unsatisfiable": {
			reason: "A range starting past the end is refused.",
			rng:    fmt.Sprintf("bytes=%d-", size),
			want:   response{Status: 416, Range: fmt.Sprintf("bytes */%d", size)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/data/"+packName, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth("u", "p")
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			got := response{Status: res.StatusCode, Range: res.Header.Get("Content-Range")}
			if res.StatusCode/100 == 2 {
				s := sha256.Sum256(body)
				got.Length, got.Body = res.Header.Get("Content-Length"), fmt.Sprintf("%d %x", len(body), s)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nGET %s: -want +got:\n%s", tc.reason, tc.rng, diff)
			}
		})
	}
}

// TestReaderFile checks which readers the bridge hands to the connection
// as a file: those of a local storage, however it is wrapped and scoped,
// and no others.
func TestReaderFile(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "repo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "repo", "config"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	local, err := storage.Open(ctx, storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal,
		Local: &storagev1alpha1.LocalSpec{MountPath: "/storage", SubPath: "repo"}}, nil, storage.OpenOptions{LocalRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = local.Close() }()
	mem := memblob.OpenBucket(nil)
	defer func() { _ = mem.Close() }()
	if err := mem.WriteAll(ctx, "config", []byte("0123456789"), nil); err != nil {
		t.Fatal(err)
	}
	type file struct {
		IsFile bool
		// Rest is what the file holds from its position on.
		Rest string
	}
	tests := map[string]struct {
		reason         string
		local          bool
		offset, length int64
		want           file
	}{
		"LocalWhole": {
			reason: "A whole local file is the file, at its start.",
			local:  true, offset: 0, length: -1,
			want: file{IsFile: true, Rest: "0123456789"},
		},
		"LocalRange": {
			reason: "A local range is the file at the range's offset.",
			local:  true, offset: 4, length: 3,
			want: file{IsFile: true, Rest: "456789"},
		},
		"Memory": {
			reason: "A reader of another bucket has no file and is copied.",
			offset: 4, length: 3,
			want: file{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := mem
			if tc.local {
				b = local
			}
			rd, err := b.NewRangeReader(ctx, "config", tc.offset, tc.length, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rd.Close() }()
			var got file
			if f := readerFile(rd); f != nil {
				rest, err := io.ReadAll(f)
				if err != nil {
					t.Fatal(err)
				}
				got = file{IsFile: true, Rest: string(rest)}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
