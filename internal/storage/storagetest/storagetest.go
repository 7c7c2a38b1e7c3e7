// Package storagetest is the conformance suite every Stashplane storage
// backend passes: what the controllers and the restic bridge rely on a
// bucket to do, checked the same way on files, memory, S3, GCS and Azure.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob"

	"github.com/stashplane/stashplane/internal/storage"
)

// LargeObjectSize is the size of the object the suite streams through a
// backend: large enough for multi-part uploads on every provider.
const LargeObjectSize = 64 << 20

// opTimeout bounds every step of the suite.
const opTimeout = 2 * time.Minute

// Limitation is a known gap of a test server that the suite does not hold
// against it.
type Limitation string

// Known limitations.
const (
	// NoPaging: the server ignores page tokens (fake-gcs-server cuts a list
	// at maxResults and returns no token). Real backends page.
	NoPaging Limitation = "NoPaging"
)

// Run runs the suite. Every call of open returns a new *blob.Bucket on the
// same storage (the suite closes each); the storage may hold other objects,
// since every subtest works under its own key prefix.
func Run(t *testing.T, open func(t *testing.T) *blob.Bucket, known ...Limitation) {
	tests := map[string]func(t *testing.T, b *blob.Bucket){
		"WriteRead":         testWriteRead,
		"Overwrite":         testOverwrite,
		"List":              nil, // takes the paging flag
		"Delete":            testDelete,
		"RangeRead":         testRangeRead,
		"LargeObject":       testLargeObject,
		"ConcurrentWriters": testConcurrentWriters,
	}
	names := make([]string, 0, len(tests))
	for n := range tests {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			b := blob.PrefixedBucket(open(t), "conformance/"+name+"/")
			defer func() { _ = b.Close() }()
			if name == "List" {
				testList(t, b, !slices.Contains(known, NoPaging))
				return
			}
			tests[name](t, b)
		})
	}
	t.Run("PrefixIsolation", func(t *testing.T) { testPrefixIsolation(t, open) })
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return c
}

func write(t *testing.T, b *blob.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.WriteAll(ctx(t), key, data, nil); err != nil {
		t.Fatalf("cannot write %q: %v", key, err)
	}
}

func read(t *testing.T, b *blob.Bucket, key string) []byte {
	t.Helper()
	got, err := b.ReadAll(ctx(t), key)
	if err != nil {
		t.Fatalf("cannot read %q: %v", key, err)
	}
	return got
}

func testWriteRead(t *testing.T, b *blob.Bucket) {
	tests := map[string]struct {
		reason string
		key    string
		data   []byte
	}{
		"Small":  {reason: "A few bytes read back as written.", key: "small", data: []byte("hello, stashplane")},
		"Empty":  {reason: "An empty object exists and is empty.", key: "empty", data: []byte{}},
		"Nested": {reason: "A key with slashes is one object.", key: "a/b/c/nested.yaml", data: []byte("kind: Nested\n")},
		"Binary": {reason: "Every byte value survives.", key: "binary", data: allBytes()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			write(t, b, tc.key, tc.data)
			if diff := cmp.Diff(tc.data, read(t, b, tc.key)); diff != "" {
				t.Errorf("%s\nReadAll(%q): -want +got:\n%s", tc.reason, tc.key, diff)
			}
			a, err := b.Attributes(ctx(t), tc.key)
			if err != nil {
				t.Fatalf("cannot read the attributes of %q: %v", tc.key, err)
			}
			if diff := cmp.Diff(int64(len(tc.data)), a.Size); diff != "" {
				t.Errorf("%s\nAttributes(%q).Size: -want +got:\n%s", tc.reason, tc.key, diff)
			}
		})
	}
}

func allBytes() []byte {
	b := make([]byte, 256*4)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func testOverwrite(t *testing.T, b *blob.Bucket) {
	write(t, b, "obj", []byte("first version, longer than the second"))
	write(t, b, "obj", []byte("second"))
	if diff := cmp.Diff("second", string(read(t, b, "obj"))); diff != "" {
		t.Errorf("An overwritten object holds only the new bytes: -want +got:\n%s", diff)
	}
}

// listKeys lists under prefix with delimiter; directories end in the
// delimiter.
func listKeys(t *testing.T, b *blob.Bucket, prefix, delimiter string) []string {
	t.Helper()
	var keys []string
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: delimiter})
	for {
		o, err := it.Next(ctx(t))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("cannot list %q: %v", prefix, err)
		}
		keys = append(keys, o.Key)
	}
	sort.Strings(keys)
	return keys
}

func testList(t *testing.T, b *blob.Bucket, paging bool) {
	for _, k := range []string{"repo/config", "repo/data/00/aa", "repo/data/01/bb", "repo/keys/k1", "repo2/config", "top"} {
		write(t, b, k, []byte(k))
	}
	tests := map[string]struct {
		reason    string
		prefix    string
		delimiter string
		want      []string
	}{
		"All": {
			reason: "Without a delimiter every object under the prefix is listed.",
			want:   []string{"repo/config", "repo/data/00/aa", "repo/data/01/bb", "repo/keys/k1", "repo2/config", "top"},
		},
		"TopLevel": {
			reason:    "With a delimiter the first level shows objects and directories.",
			delimiter: "/",
			want:      []string{"repo/", "repo2/", "top"},
		},
		"Directory": {
			reason:    "A prefix ending in the delimiter lists that directory only, not its sibling repo2.",
			prefix:    "repo/",
			delimiter: "/",
			want:      []string{"repo/config", "repo/data/", "repo/keys/"},
		},
		"Recursive": {
			reason: "A prefix without a delimiter lists the whole subtree.",
			prefix: "repo/data/",
			want:   []string{"repo/data/00/aa", "repo/data/01/bb"},
		},
		"Missing": {
			reason: "A prefix with nothing under it lists nothing, without an error.",
			prefix: "nothing/",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := listKeys(t, b, tc.prefix, tc.delimiter)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nList(%q, %q): -want +got:\n%s", tc.reason, tc.prefix, tc.delimiter, diff)
			}
		})
	}
	if !paging {
		t.Log("the server does not page lists: paging is not checked")
		return
	}
	t.Run("Pages", func(t *testing.T) {
		var got []string
		token := blob.FirstPageToken
		for pages := 0; len(token) > 0; pages++ {
			if pages > 10 {
				t.Fatal("paging through 6 objects 2 at a time did not end")
			}
			objs, next, err := b.ListPage(ctx(t), token, 2, nil)
			if err != nil {
				t.Fatalf("cannot list a page: %v", err)
			}
			for _, o := range objs {
				got = append(got, o.Key)
			}
			token = next
		}
		sort.Strings(got)
		if diff := cmp.Diff(listKeys(t, b, "", ""), got); diff != "" {
			t.Errorf("Listing in pages of 2 returns every object once: -want +got:\n%s", diff)
		}
	})
}

func testDelete(t *testing.T, b *blob.Bucket) {
	write(t, b, "doomed", []byte("x"))
	write(t, b, "doomed-sibling", []byte("y"))
	if err := b.Delete(ctx(t), "doomed"); err != nil {
		t.Fatalf("cannot delete: %v", err)
	}
	_, err := b.ReadAll(ctx(t), "doomed")
	if diff := cmp.Diff(storage.ReasonNotFound, storage.Reason(err)); diff != "" {
		t.Errorf("Reading a deleted object fails as not found (%v): -want +got:\n%s", err, diff)
	}
	err = b.Delete(ctx(t), "doomed")
	if diff := cmp.Diff(storage.ReasonNotFound, storage.Reason(err)); diff != "" {
		t.Errorf("Deleting a missing object fails as not found (%v): -want +got:\n%s", err, diff)
	}
	if diff := cmp.Diff("y", string(read(t, b, "doomed-sibling"))); diff != "" {
		t.Errorf("Deleting one object leaves a sibling sharing its name prefix: -want +got:\n%s", diff)
	}
	_, err = b.Attributes(ctx(t), "never-written")
	if diff := cmp.Diff(storage.ReasonNotFound, storage.Reason(err)); diff != "" {
		t.Errorf("The attributes of a missing object are not found (%v): -want +got:\n%s", err, diff)
	}
}

func testRangeRead(t *testing.T, b *blob.Bucket) {
	data := []byte("0123456789abcdefghij")
	write(t, b, "ranged", data)
	tests := map[string]struct {
		reason         string
		offset, length int64
		want           string
	}{
		"Middle":  {reason: "A range in the middle.", offset: 5, length: 4, want: "5678"},
		"ToEnd":   {reason: "A negative length reads to the end.", offset: 15, length: -1, want: "fghij"},
		"Start":   {reason: "A range at the start.", offset: 0, length: 3, want: "012"},
		"PastEnd": {reason: "A range past the end is cut at the end.", offset: 18, length: 10, want: "ij"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := b.NewRangeReader(ctx(t), "ranged", tc.offset, tc.length, nil)
			if err != nil {
				t.Fatalf("cannot open a range: %v", err)
			}
			got, err := io.ReadAll(r)
			_ = r.Close()
			if err != nil {
				t.Fatalf("cannot read a range: %v", err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("%s\nNewRangeReader(%d, %d): -want +got:\n%s", tc.reason, tc.offset, tc.length, diff)
			}
		})
	}
}

// stream is a deterministic pseudo-random byte stream of a given length.
type stream struct {
	rng  *rand.ChaCha8
	left int64
}

func newStream(seed byte, n int64) *stream {
	var s [32]byte
	s[0] = seed
	return &stream{rng: rand.NewChaCha8(s), left: n}
}

func (s *stream) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, _ := s.rng.Read(p)
	s.left -= int64(n)
	return n, nil
}

func testLargeObject(t *testing.T, b *blob.Bucket) {
	want := sha256.New()
	w, err := b.NewWriter(ctx(t), "large", &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatalf("cannot open a writer: %v", err)
	}
	// Streamed in 1 MiB writes: nothing holds the whole object.
	n, err := io.CopyBuffer(io.MultiWriter(w, want), newStream(7, LargeObjectSize), make([]byte, 1<<20))
	if err != nil {
		_ = w.Close()
		t.Fatalf("cannot stream the large object: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("cannot finish the large object: %v", err)
	}
	r, err := b.NewReader(ctx(t), "large", nil)
	if err != nil {
		t.Fatalf("cannot open the large object: %v", err)
	}
	got := sha256.New()
	m, err := io.Copy(got, r)
	_ = r.Close()
	if err != nil {
		t.Fatalf("cannot read the large object: %v", err)
	}
	if diff := cmp.Diff(fmt.Sprintf("%d %x", n, want.Sum(nil)), fmt.Sprintf("%d %x", m, got.Sum(nil))); diff != "" {
		t.Errorf("The large object reads back with its size and hash: -want +got:\n%s", diff)
	}
	// A range deep inside the object.
	r, err = b.NewRangeReader(ctx(t), "large", LargeObjectSize-100, 50, nil)
	if err != nil {
		t.Fatalf("cannot open a range of the large object: %v", err)
	}
	tailGot, err := io.ReadAll(r)
	_ = r.Close()
	if err != nil {
		t.Fatalf("cannot read a range of the large object: %v", err)
	}
	all := newStream(7, LargeObjectSize)
	_, _ = io.CopyN(io.Discard, all, LargeObjectSize-100)
	tailWant := make([]byte, 50)
	_, _ = io.ReadFull(all, tailWant)
	if !bytes.Equal(tailWant, tailGot) {
		t.Errorf("A range near the end of the large object: want %x, got %x", tailWant, tailGot)
	}
}

func testConcurrentWriters(t *testing.T, b *blob.Bucket) {
	const writers = 12
	values := make([][]byte, writers)
	for i := range values {
		values[i] = bytes.Repeat([]byte{byte('a' + i)}, 256<<10)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for i := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- b.WriteAll(ctx(t), fmt.Sprintf("own/%02d", i), values[i], nil)
		}()
		go func() {
			defer wg.Done()
			errs <- b.WriteAll(ctx(t), "shared", values[i], nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent write failed: %v", err)
		}
	}
	for i := range writers {
		if got := read(t, b, fmt.Sprintf("own/%02d", i)); !bytes.Equal(values[i], got) {
			t.Errorf("Writer %d's own object holds its bytes (%d bytes read)", i, len(got))
		}
	}
	shared := read(t, b, "shared")
	whole := false
	for _, v := range values {
		whole = whole || bytes.Equal(v, shared)
	}
	if !whole {
		t.Errorf("The object written by %d writers at once is one writer's bytes, whole (%d bytes, starts %q)",
			writers, len(shared), shared[:min(8, len(shared))])
	}
}

func testPrefixIsolation(t *testing.T, open func(t *testing.T) *blob.Bucket) {
	one := blob.PrefixedBucket(open(t), "conformance/isolation/one/")
	defer func() { _ = one.Close() }()
	two := blob.PrefixedBucket(open(t), "conformance/isolation/one-two/")
	defer func() { _ = two.Close() }()
	write(t, one, "config", []byte("one"))
	write(t, two, "config", []byte("two"))
	write(t, two, "only-two", []byte("two"))
	if diff := cmp.Diff("one", string(read(t, one, "config"))); diff != "" {
		t.Errorf("Each prefix reads its own object of the same key: -want +got:\n%s", diff)
	}
	if diff := cmp.Diff([]string{"config"}, listKeys(t, one, "", "")); diff != "" {
		t.Errorf("A prefix lists only its own objects, not those of a prefix sharing its name: -want +got:\n%s", diff)
	}
	_, err := one.ReadAll(ctx(t), "only-two")
	if diff := cmp.Diff(storage.ReasonNotFound, storage.Reason(err)); diff != "" {
		t.Errorf("An object of another prefix is not found (%v): -want +got:\n%s", err, diff)
	}
	_, err = one.ReadAll(ctx(t), "../one-two/only-two")
	if err == nil {
		t.Errorf("A key with .. must not reach another prefix")
	}
	if err := one.Delete(ctx(t), "config"); err != nil {
		t.Fatalf("cannot delete: %v", err)
	}
	if diff := cmp.Diff("two", string(read(t, two, "config"))); diff != "" {
		t.Errorf("Deleting in one prefix leaves the other: -want +got:\n%s", diff)
	}
}

// RunMissingBucket checks a bucket whose bucket or container does not
// exist: every operation fails with reason BucketNotFound, or NotFound for
// reads where the backend cannot tell the two apart, and nothing is
// created.
func RunMissingBucket(t *testing.T, b *blob.Bucket) {
	defer func() { _ = b.Close() }()
	ops := map[string]struct {
		reason string
		op     func(context.Context) error
		want   []string
	}{
		"Write": {
			reason: "A write to a missing bucket is refused as such.",
			op:     func(c context.Context) error { return b.WriteAll(c, "metadata.yaml", []byte("x"), nil) },
			want:   []string{storage.ReasonBucketNotFound},
		},
		"List": {
			reason: "Listing a missing bucket says it is missing.",
			op: func(c context.Context) error {
				_, _, err := b.ListPage(c, blob.FirstPageToken, 1, nil)
				return err
			},
			want: []string{storage.ReasonBucketNotFound},
		},
		"Read": {
			reason: "A read in a missing bucket fails as missing.",
			op: func(c context.Context) error {
				_, err := b.ReadAll(c, "metadata.yaml")
				return err
			},
			want: []string{storage.ReasonBucketNotFound, storage.ReasonNotFound},
		},
	}
	for name, tc := range ops {
		t.Run(name, func(t *testing.T) {
			err := tc.op(ctx(t))
			got := storage.Reason(err)
			ok := false
			for _, w := range tc.want {
				ok = ok || w == got
			}
			if !ok {
				t.Errorf("%s\nReason(%v) = %q, want one of %q", tc.reason, err, got, tc.want)
			}
			if msg := storage.Message(err); err != nil && msg == "" {
				t.Errorf("Message(%v) is empty", err)
			}
		})
	}
}

// RunWrongCredentials checks a bucket opened with credentials the backend
// refuses: every operation fails with reason PermissionDenied, and neither
// the error nor its Message quotes any of secrets.
func RunWrongCredentials(t *testing.T, b *blob.Bucket, secrets ...string) {
	defer func() { _ = b.Close() }()
	ops := map[string]struct {
		reason string
		op     func(context.Context) error
	}{
		"Write": {
			reason: "A write with wrong credentials is denied.",
			op:     func(c context.Context) error { return b.WriteAll(c, "metadata.yaml", []byte("x"), nil) },
		},
		"List": {
			reason: "A list with wrong credentials is denied.",
			op: func(c context.Context) error {
				_, _, err := b.ListPage(c, blob.FirstPageToken, 1, nil)
				return err
			},
		},
		"Read": {
			reason: "A read with wrong credentials is denied.",
			op: func(c context.Context) error {
				_, err := b.ReadAll(c, "metadata.yaml")
				return err
			},
		},
	}
	for name, tc := range ops {
		t.Run(name, func(t *testing.T) {
			err := tc.op(ctx(t))
			if diff := cmp.Diff(storage.ReasonPermissionDenied, storage.Reason(err)); diff != "" {
				t.Errorf("%s\nReason(%v): -want +got:\n%s", tc.reason, err, diff)
			}
			AssertNoSecret(t, err, secrets...)
		})
	}
}

// AssertNoSecret fails the test if err or its Message quotes a secret.
func AssertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), storage.Message(err)} {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("An error quotes a credential: %q", text)
			}
		}
	}
}
