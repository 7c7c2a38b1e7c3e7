package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"filippo.io/age"
	"lukechampine.com/blake3"
)

// Manifest is a component's content as the agent read it at backup time,
// stored beside the restic repository (layout.ManifestKey) so a
// verification can compare restored files with what was backed up without
// trusting the repository it is checking.
type Manifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Snapshot and Component the manifest belongs to.
	Snapshot  string `json:"snapshot"`
	Component string `json:"component"`
	// ResticSnapshot is the ID of the restic snapshot holding the files.
	ResticSnapshot string `json:"resticSnapshot"`
	// Paths that were backed up.
	Paths []string `json:"paths"`
	// Created is when the files were read.
	Created time.Time `json:"created"`
	// TotalSize is the sum of the files' sizes.
	TotalSize int64 `json:"totalSize"`
	// Hash is the algorithm of the files' digests, HashBLAKE3 for the
	// manifests written now. Manifests written before it existed have
	// none and hold SHA-256 digests (HashSHA256); see Algorithm.
	Hash string `json:"hash,omitempty"`
	// Files, sorted by path.
	Files []ManifestFile `json:"files"`
}

// Content hash algorithms a manifest names. Backups write BLAKE3, which
// hashes several times faster than SHA-256 with SIMD and so leaves restic
// more of the CPU during a restore's comparison; SHA-256 manifests,
// written before, are still read and compared with SHA-256.
const (
	HashSHA256 = "sha256"
	HashBLAKE3 = "blake3"
)

// backupHash is the algorithm of the manifests backups write.
const backupHash = HashBLAKE3

// Algorithm is the hash algorithm of the manifest's digests: its Hash, or
// HashSHA256 for a manifest written before Hash existed.
func (m *Manifest) Algorithm() string {
	if m.Hash == "" {
		return HashSHA256
	}
	return m.Hash
}

// Digest is the file's hex digest under the algorithm alg, empty when it
// has none.
func (f ManifestFile) Digest(alg string) string {
	switch alg {
	case HashSHA256:
		return f.SHA256
	case HashBLAKE3:
		return f.BLAKE3
	}
	return ""
}

// newHash is a hasher of the algorithm alg.
func newHash(alg string) (hash.Hash, error) {
	switch alg {
	case HashSHA256:
		return sha256.New(), nil
	case HashBLAKE3:
		return blake3.New(32, nil), nil
	}
	return nil, fmt.Errorf("unknown content hash algorithm %q", alg)
}

// hashBuffers are the read buffers of the hashers: large enough for the
// BLAKE3 hasher to compress many chunks at once with SIMD, each write
// being split into subtrees, each compressed on a goroutine of its own.
// On this project's 2-core machine a MiB per write costs a fifth less
// processor time per byte than 256 KiB (3.0 against 2.35 GB/s of one
// core) and a restore's hashing a quarter less (docs/performance.md); past
// the core's second-level cache, 4 MiB was slower again.
var hashBuffers = sync.Pool{New: func() any { b := make([]byte, hashBufferSize); return &b }}

const hashBufferSize = 1 << 20

// hashContent reads f to its end and returns its size and its digest under
// alg in the field of a ManifestFile that alg names.
func hashContent(f *os.File, alg string) (ManifestFile, error) {
	h, err := newHash(alg)
	if err != nil {
		return ManifestFile{}, err
	}
	buf := hashBuffers.Get().(*[]byte)
	defer hashBuffers.Put(buf)
	// Hide the file's WriteTo, which would copy through a small buffer.
	n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, *buf)
	if err != nil {
		return ManifestFile{}, err
	}
	m := ManifestFile{Size: n}
	setDigest(&m, alg, h.Sum(nil))
	return m, nil
}

// setDigest sets the field of m that alg names to the hex of sum.
func setDigest(m *ManifestFile, alg string, sum []byte) {
	switch alg {
	case HashSHA256:
		m.SHA256 = hex.EncodeToString(sum)
	case HashBLAKE3:
		m.BLAKE3 = hex.EncodeToString(sum)
	}
}

// Manifest record kind.
const (
	ManifestAPIVersion = "storage.stashplane.io/v1alpha1"
	ManifestKind       = "ContentManifest"
)

// newManifest builds the manifest of files, sorting them by path.
func newManifest(snapshot, component, resticID string, paths []string, created time.Time, files []ManifestFile) *Manifest {
	m := &Manifest{
		APIVersion: ManifestAPIVersion, Kind: ManifestKind,
		Snapshot: snapshot, Component: component, ResticSnapshot: resticID,
		Paths: append([]string(nil), paths...), Created: created.UTC(),
		Hash:  backupHash,
		Files: append([]ManifestFile{}, files...),
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	for _, f := range m.Files {
		m.TotalSize += f.Size
	}
	return m
}

// manifestWorkFactor is the scrypt work factor (2^15, about 0.1 s and 32
// MiB) that turns the repository password into the key of a manifest's
// seal (manifestkey.go).
const manifestWorkFactor = 15

// Encode writes the manifest as gzipped JSON sealed with the repository's
// password (an age file whose file key is wrapped under a key derived
// from the password, manifestkey.go): storage holds neither the names of
// the files backed up nor a manifest anyone without the password could
// write, and a manifest read back has not been changed.
func (m *Manifest) Encode(password string) ([]byte, error) {
	return m.encode(newManifestKeys(password))
}

// encode is Encode with keys, which a run shares between the manifests it
// opens and seals.
func (m *Manifest) encode(keys *manifestKeys) ([]byte, error) {
	return m.encodeSealed(startEnvelope(context.Background(), keys, nil))
}

// envelope is a manifest's age envelope, made ahead of its content: deriving
// its key from the password (scrypt) is the costly part of sealing, and a
// backup lets it run beside restic rather than after it.
type envelope struct {
	done chan struct{}
	buf  bytes.Buffer
	w    io.WriteCloser
	err  error
}

// startEnvelope starts an envelope sealed with keys in the background,
// once after, when not nil, is closed: a backup opening the previous
// manifest waits for it, and seals under the key it derived. A run that
// ended by then (ctx done) derives no key.
func startEnvelope(ctx context.Context, keys *manifestKeys, after <-chan struct{}) *envelope {
	s := &envelope{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if after != nil {
			<-after
		}
		if s.err = ctx.Err(); s.err != nil {
			return
		}
		var err error
		if s.w, err = age.Encrypt(&s.buf, keys); err != nil {
			s.err = fmt.Errorf("cannot seal the manifest: %w", err)
		}
	}()
	return s
}

// encodeSealed writes the manifest into s, which it uses up.
func (m *Manifest) encodeSealed(s *envelope) ([]byte, error) {
	return m.encodeSealedWith(s, nil)
}

// encodeSealedWith is encodeSealed taking the manifest's files from body
// when body holds them, in the manifest's order. The gzip stream is then
// two members, the manifest up to its files and body's, which a gzip
// reader reads as one.
func (m *Manifest) encodeSealedWith(s *envelope, body *manifestBody) ([]byte, error) {
	<-s.done
	if s.err != nil {
		return nil, s.err
	}
	if b := body.of(m.Files); b != nil {
		head, err := m.head()
		if err == nil {
			err = compressInto(s.w, func(w io.Writer) error { _, err := w.Write(head); return err })
		}
		if err == nil {
			_, err = s.w.Write(b)
		}
		if err != nil {
			return nil, fmt.Errorf("cannot encode the manifest: %w", err)
		}
	} else if err := compressInto(s.w, func(w io.Writer) error { return json.NewEncoder(w).Encode(m) }); err != nil {
		return nil, fmt.Errorf("cannot encode the manifest: %w", err)
	}
	if err := s.w.Close(); err != nil {
		return nil, fmt.Errorf("cannot seal the manifest: %w", err)
	}
	return s.buf.Bytes(), nil
}

// compressInto writes a gzip member of what write gives to w.
func compressInto(w io.Writer, write func(io.Writer) error) error {
	// The fastest level: a manifest is written after restic has finished,
	// while the run waits for it, and is small beside the data.
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if err := write(zw); err != nil {
		return err
	}
	return zw.Close()
}

// filesTail is how the JSON of a manifest without files ends: its files
// are its last field.
var filesTail = []byte(`"files":null}`)

// head is the manifest's JSON up to its files: the object opened, every
// other field, and a comma.
func (m *Manifest) head() ([]byte, error) {
	bare := *m
	bare.Files = nil
	b, err := json.Marshal(&bare)
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b, filesTail) {
		return nil, errors.New("the manifest's files are not its last field")
	}
	return b[:len(b)-len(filesTail)], nil
}

// manifestBody is a manifest's files, encoded and compressed while the
// backup still runs: the files key, the array and the object's end, as a
// gzip member of their own. A backup that finds restic stored the
// previous manifest's files unchanged (quiet.go) seals them without
// encoding them after restic.
type manifestBody struct {
	done  chan struct{}
	files []ManifestFile
	b     []byte
}

// startManifestBody encodes the files files gives, when it gives any, in
// the background.
func startManifestBody(files func() []ManifestFile) *manifestBody {
	body := &manifestBody{done: make(chan struct{})}
	go func() {
		defer close(body.done)
		fs := files()
		if len(fs) == 0 {
			return
		}
		var buf bytes.Buffer
		err := compressInto(&buf, func(w io.Writer) error {
			if _, err := io.WriteString(w, `"files":`); err != nil {
				return err
			}
			if err := json.NewEncoder(w).Encode(fs); err != nil {
				return err
			}
			_, err := io.WriteString(w, "}\n")
			return err
		})
		if err == nil {
			body.files, body.b = fs, buf.Bytes()
		}
	}()
	return body
}

// of is the encoded body when it holds files, path for path; nil
// otherwise, or for a nil body.
func (body *manifestBody) of(files []ManifestFile) []byte {
	if body == nil {
		return nil
	}
	<-body.done
	if body.b == nil || len(body.files) != len(files) {
		return nil
	}
	for i, f := range files {
		if !sameEntry(f, body.files[i]) {
			return nil
		}
	}
	return body.b
}

// sameEntry says whether two manifest entries are equal, field for field,
// their states by value.
func sameEntry(a, b ManifestFile) bool {
	if (a.State == nil) != (b.State == nil) || a.State != nil && *a.State != *b.State {
		return false
	}
	a.State, b.State = nil, nil
	return a == b
}

// maxManifest bounds a decompressed manifest (about ten million files).
const maxManifest = 2 << 30

// ErrManifestUnsealed is what DecodeManifest wraps for a manifest that is
// not sealed with the repository's password, or whose seal does not hold:
// written by a Stashplane that did not seal manifests, or replaced.
var ErrManifestUnsealed = errors.New("the content manifest is not sealed with the repository's password")

// DecodeManifest reads the manifest of snapshot's component written by
// Encode with password. One that is not sealed with it, was changed, or
// belongs to another Snapshot or component is refused: a verification
// compares restored files only with what the backup itself recorded.
func DecodeManifest(r io.Reader, password, snapshot, component string) (*Manifest, error) {
	return decodeManifest(r, newManifestKeys(password), snapshot, component)
}

// decodeManifest is DecodeManifest with keys, which a run shares between
// the manifests it opens and seals.
func decodeManifest(r io.Reader, keys *manifestKeys, snapshot, component string) (*Manifest, error) {
	// Manifests sealed before manifestkey.go have age's own scrypt stanza.
	old, err := age.NewScryptIdentity(string(keys.password))
	if err != nil {
		return nil, fmt.Errorf("cannot open the manifest: %w", err)
	}
	// A manifest asking for more work than Encode gives is refused before
	// scrypt spends it.
	old.SetMaxWorkFactor(manifestWorkFactor)
	plain, err := age.Decrypt(r, keys, old)
	if err != nil {
		return nil, fmt.Errorf("%w (written before Stashplane sealed manifests, or replaced: back up again): %v", ErrManifestUnsealed, err)
	}
	ar := &sealReader{r: plain}
	// unsealed says an error came from the seal, not from what it holds.
	unsealed := func(err error) error {
		if ar.err != nil {
			return fmt.Errorf("%w: %v", ErrManifestUnsealed, ar.err)
		}
		return err
	}
	zr, err := gzip.NewReader(ar)
	if err != nil {
		return nil, unsealed(fmt.Errorf("cannot decompress the manifest: %w", err))
	}
	defer zr.Close()
	m := &Manifest{}
	if err := json.NewDecoder(io.LimitReader(zr, maxManifest)).Decode(m); err != nil {
		return nil, unsealed(fmt.Errorf("cannot decode the manifest: %w", err))
	}
	// The seal is checked chunk by chunk: read to the end, so that a cut
	// or changed tail is found.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, unsealed(fmt.Errorf("cannot decompress the manifest: %w", err))
	}
	if m.Kind != ManifestKind {
		return nil, fmt.Errorf("cannot decode the manifest: kind is %q, not %q", m.Kind, ManifestKind)
	}
	if m.Snapshot != snapshot || m.Component != component {
		return nil, fmt.Errorf("cannot use the manifest: it is the one of snapshot %q, component %q, not of snapshot %q, component %q", m.Snapshot, m.Component, snapshot, component)
	}
	if _, err := newHash(m.Algorithm()); err != nil {
		return nil, fmt.Errorf("cannot decode the manifest: %w", err)
	}
	return m, nil
}

// sealReader keeps the first error other than io.EOF its reader returned:
// the seal's.
type sealReader struct {
	r   io.Reader
	err error
}

func (s *sealReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}
