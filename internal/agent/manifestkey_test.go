package agent

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	"github.com/stashplane/stashplane/internal/layout"
)

// sealArgs are the arguments of a sealed manifest's first stanza: its type,
// salt and work factor.
func sealArgs(t *testing.T, b []byte) []string {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() || sc.Text() != "age-encryption.org/v1" || !sc.Scan() {
		t.Fatalf("not an age file: %q", b[:min(len(b), 64)])
	}
	return strings.Fields(strings.TrimPrefix(sc.Text(), "-> "))
}

func TestManifestKeysDeriveOnce(t *testing.T) {
	m := newManifest("app-s1", "dump", "0123abcd", []string{"/data"}, time.Now(), []ManifestFile{{Path: "/data/a", Size: 1, BLAKE3: sum("a")}})
	plain, err := json2gzip(m)
	if err != nil {
		t.Fatal(err)
	}
	weak := newManifestKeys(testPassword)
	if _, err := weak.derive([]byte("0123456789abcdef"), 10); err != nil {
		t.Fatal(err)
	}
	weak.last = weak.keys["0123456789abcdef/10"]
	cases := map[string]struct {
		// opened is the manifest a run opens before it seals one, nil for
		// none.
		opened func(t *testing.T) []byte
		// sameSalt: the manifest sealed has the opened one's salt.
		sameSalt bool
		// derived is how many keys the run derived with its own seal.
		derived int
	}{
		"NothingOpened": {derived: 1},
		"OpenedSealedWithKeys": {
			opened: func(t *testing.T) []byte {
				b, err := m.Encode(testPassword)
				if err != nil {
					t.Fatal(err)
				}
				return b
			},
			sameSalt: true, derived: 1,
		},
		"OpenedSealedBeforeKeys": {
			// age's own scrypt stanza: opening it derives a key that cannot
			// seal, so sealing derives one more.
			opened:  func(t *testing.T) []byte { return sealed(t, plain) },
			derived: 1,
		},
		"OpenedAtALowerWorkFactor": {
			opened: func(t *testing.T) []byte {
				b, err := m.encode(weak)
				if err != nil {
					t.Fatal(err)
				}
				return b
			},
			derived: 2,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			keys := newManifestKeys(testPassword)
			var opened []byte
			if tc.opened != nil {
				opened = tc.opened(t)
				if _, err := decodeManifest(bytes.NewReader(opened), keys, "app-s1", "dump"); err != nil {
					t.Fatal(err)
				}
			}
			first, err := m.encode(keys)
			if err != nil {
				t.Fatal(err)
			}
			second, err := m.encode(keys)
			if err != nil {
				t.Fatal(err)
			}
			args := sealArgs(t, first)
			if len(args) != 3 || args[0] != sealStanza || args[2] != "15" {
				t.Fatalf("sealed with %q, want %s <salt> 15", args, sealStanza)
			}
			if diff := cmp.Diff(args, sealArgs(t, second)); diff != "" {
				t.Errorf("two manifests sealed by one run have other salts: -first +second:\n%s", diff)
			}
			if opened != nil {
				if got := cmp.Equal(args, sealArgs(t, opened)); got != tc.sameSalt {
					t.Errorf("sealed with the opened manifest's salt: %v, want %v", got, tc.sameSalt)
				}
			}
			if got := len(keys.keys); got != tc.derived {
				t.Errorf("derived %d keys, want %d", got, tc.derived)
			}
			for _, b := range [][]byte{first, second} {
				got, err := DecodeManifest(bytes.NewReader(b), testPassword, "app-s1", "dump")
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(m, got); diff != "" {
					t.Errorf("DecodeManifest: -want +got:\n%s", diff)
				}
			}
		})
	}
}

func TestManifestEmptyPasswordRefused(t *testing.T) {
	m := newManifest("app-s1", "dump", "0123abcd", []string{"/data"}, time.Now(), nil)
	if b, err := m.Encode(""); err == nil {
		t.Errorf("Encode with an empty password sealed %d bytes", len(b))
	}
}

// json2gzip is a manifest's content before it is sealed.
func json2gzip(m *Manifest) ([]byte, error) {
	s := &envelope{done: make(chan struct{})}
	close(s.done)
	s.w = nopWriteCloser{&s.buf}
	return m.encodeSealed(s)
}

type nopWriteCloser struct{ *bytes.Buffer }

func (nopWriteCloser) Close() error { return nil }

func TestManifestSealRefused(t *testing.T) {
	keys := newManifestKeys(testPassword)
	fileKey := bytes.Repeat([]byte{7}, fileKeySize)
	valid, err := keys.Wrap(fileKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := newManifestKeys(testPassword).Unwrap(valid); err != nil || !bytes.Equal(got, fileKey) {
		t.Fatalf("Unwrap(Wrap()) = %x, %v; want %x", got, err, fileKey)
	}
	with := func(change func(s *age.Stanza)) []*age.Stanza {
		s := *valid[0]
		s.Args = append([]string(nil), s.Args...)
		s.Body = bytes.Clone(s.Body)
		change(&s)
		return []*age.Stanza{&s}
	}
	cases := map[string]struct {
		stanzas  []*age.Stanza
		password string
		// incorrect: the error says the seal is not this identity's, so
		// age tries its others; otherwise the file is refused outright.
		incorrect bool
	}{
		"WrongPassword":     {stanzas: valid, password: "another password", incorrect: true},
		"AgeScrypt":         {stanzas: []*age.Stanza{{Type: "scrypt", Args: valid[0].Args, Body: valid[0].Body}}, incorrect: true},
		"AnotherRecipient":  {stanzas: append([]*age.Stanza{{Type: "X25519", Args: []string{"x"}, Body: []byte("x")}}, valid...)},
		"MoreWork":          {stanzas: with(func(s *age.Stanza) { s.Args[1] = "16" })},
		"NoWork":            {stanzas: with(func(s *age.Stanza) { s.Args[1] = "0" })},
		"PaddedWorkFactor":  {stanzas: with(func(s *age.Stanza) { s.Args[1] = "015" })},
		"ShortSalt":         {stanzas: with(func(s *age.Stanza) { s.Args[0] = s.Args[0][:10] })},
		"MissingWorkFactor": {stanzas: with(func(s *age.Stanza) { s.Args = s.Args[:1] })},
		"ShortBody":         {stanzas: with(func(s *age.Stanza) { s.Body = s.Body[:len(s.Body)-1] })},
		"ChangedBody":       {stanzas: with(func(s *age.Stanza) { s.Body[30] ^= 1 }), incorrect: true},
		"AnotherSalt":       {stanzas: with(func(s *age.Stanza) { s.Args[0] = "AAAAAAAAAAAAAAAAAAAAAA" }), incorrect: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			password := tc.password
			if password == "" {
				password = testPassword
			}
			got, err := newManifestKeys(password).Unwrap(tc.stanzas)
			if err == nil {
				t.Fatalf("Unwrap accepted it: %x", got)
			}
			if is := errors.Is(err, age.ErrIncorrectIdentity); is != tc.incorrect {
				t.Errorf("Unwrap: %v; ErrIncorrectIdentity %v, want %v", err, is, tc.incorrect)
			}
		})
	}
}

// TestBackupDerivesOneManifestKey: a backup that opens the previous
// manifest seals its own under the same salt, with real restic.
func TestBackupDerivesOneManifestKey(t *testing.T) {
	src := t.TempDir()
	for _, f := range []string{"a", "b/c"} {
		p := filepath.Join(src, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("content of "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lb := newLocalBackup(t, src, logr.Discard())
	ctx := context.Background()
	salts := map[int][]string{}
	for i := range 3 {
		if _, err := lb.run(ctx, i); err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		b, err := lb.bucket.ReadAll(ctx, layout.ManifestKey(lb.repo.Spec.Path, fmt.Sprintf("app-%d", i), "dump"))
		if err != nil {
			t.Fatal(err)
		}
		salts[i] = sealArgs(t, b)
	}
	// Each backup after the first opens the manifest of the one before.
	if diff := cmp.Diff(salts[0], salts[1]); diff != "" {
		t.Errorf("the second backup sealed under another salt than the manifest it opened: -first +second:\n%s", diff)
	}
	if diff := cmp.Diff(salts[1], salts[2]); diff != "" {
		t.Errorf("the third backup sealed under another salt than the manifest it opened: -second +third:\n%s", diff)
	}
	// A backup that opens none draws its own.
	other := newLocalBackup(t, src, logr.Discard())
	if _, err := other.run(ctx, 0); err != nil {
		t.Fatal(err)
	}
	b, err := other.bucket.ReadAll(ctx, layout.ManifestKey(other.repo.Spec.Path, "app-0", "dump"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sealArgs(t, b); cmp.Equal(got, salts[0]) {
		t.Errorf("the first backups of two repositories drew the same salt: %q", got)
	}
}

// TestManifestBody: a manifest whose files were encoded ahead (a gzip
// member of their own after the rest) reads back as the one encoded in
// one piece; a body that does not hold the manifest's files, entry for
// entry, is not used.
func TestManifestBody(t *testing.T) {
	keys := newManifestKeys("pw")
	files := []ManifestFile{
		{Path: "/data/a", Size: 1, BLAKE3: sum("a"), State: &FileState{MTime: 1, CTime: 2, Inode: 3}},
		{Path: "/data/b", Size: 2, BLAKE3: sum("b")},
	}
	m := newManifest("app-s2", "dump", "0123abcd", []string{"/data"}, time.Now(), files)
	decode := func(b []byte) *Manifest {
		t.Helper()
		got, err := decodeManifest(bytes.NewReader(b), keys, "app-s2", "dump")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	whole, err := m.encode(keys)
	if err != nil {
		t.Fatal(err)
	}
	other := slices.Clone(files)
	other[1].State = &FileState{MTime: 1, CTime: 2, Inode: 4}
	for name, tc := range map[string]struct {
		files     []ManifestFile
		wantParts int
	}{
		"SameFiles":  {files: files, wantParts: 2},
		"OtherState": {files: other, wantParts: 1},
		"Fewer":      {files: files[:1], wantParts: 1},
		"None":       {files: nil, wantParts: 1},
	} {
		t.Run(name, func(t *testing.T) {
			body := startManifestBody(func() []ManifestFile { return tc.files })
			b, err := m.encodeSealedWith(startEnvelope(context.Background(), keys, nil), body)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(decode(whole), decode(b)); diff != "" {
				t.Errorf("-in one piece +with the body:\n%s", diff)
			}
			if got := gzipMembers(t, b, keys); got != tc.wantParts {
				t.Errorf("the manifest is %d gzip members, want %d", got, tc.wantParts)
			}
		})
	}
}

// gzipMembers counts the gzip members of a sealed manifest.
func gzipMembers(t *testing.T, b []byte, keys *manifestKeys) int {
	t.Helper()
	plain, err := age.Decrypt(bytes.NewReader(b), keys)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(plain)
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		zr.Multistream(false)
		if _, err := io.Copy(io.Discard, zr); err != nil {
			t.Fatal(err)
		}
		n++
		if err := zr.Reset(br); err == io.EOF {
			return n
		} else if err != nil {
			t.Fatal(err)
		}
	}
}
