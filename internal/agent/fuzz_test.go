package agent

import (
	"bytes"
	"compress/gzip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecodeManifest: a content manifest read back from storage, whatever
// its bytes (a sealed manifest, sealed gzip of arbitrary JSON, plain gzip,
// or not gzip at all), is refused with an error or decoded into one that
// encodes and decodes to itself: no panic, and nothing a tampered file
// holds survives a round trip changed.
func FuzzDecodeManifest(f *testing.F) {
	good, err := newManifest("app-s1", "dump", "0123abcd", []string{"/data"}, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), []ManifestFile{
		{Path: "/data/a", Size: 5, BLAKE3: sum("alpha")},
	}).Encode(testPassword)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("not gzip"))
	for _, j := range []string{`{}`, `{"files":[{"path":"../../etc/passwd","size":-1}]}`, `{"hash":"md5","files":null}`, `[1,2]`, `{"files":[{"path":"/a","size":18446744073709551615}]}`} {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write([]byte(j))
		_ = zw.Close()
		f.Add(buf.Bytes())
		if b, err := seal(buf.Bytes()); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(bytes.NewReader(b), testPassword, "app-s1", "dump")
		if err != nil {
			return
		}
		_ = m.Algorithm()
		enc, err := m.Encode(testPassword)
		if err != nil {
			t.Fatalf("a decoded manifest does not encode: %v", err)
		}
		again, err := DecodeManifest(bytes.NewReader(enc), testPassword, "app-s1", "dump")
		if err != nil {
			t.Fatalf("an encoded manifest does not decode: %v", err)
		}
		if diff := cmp.Diff(m, again); diff != "" {
			t.Fatalf("a manifest changes in a round trip: -first +again:\n%s", diff)
		}
	})
}
