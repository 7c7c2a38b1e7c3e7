package agent

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"lukechampine.com/blake3"
)

// Manifest is a component's content as the agent read it at backup time,
// stored beside the restic repository (backend.ManifestKey) so a
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

// hashBuffers are the read buffers of hashContent: large enough for the
// BLAKE3 hasher to compress many chunks at once with SIMD.
var hashBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

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
	sum := hex.EncodeToString(h.Sum(nil))
	switch alg {
	case HashSHA256:
		m.SHA256 = sum
	case HashBLAKE3:
		m.BLAKE3 = sum
	}
	return m, nil
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

// Encode writes the manifest as gzipped JSON.
func (m *Manifest) Encode() ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(m); err != nil {
		return nil, fmt.Errorf("cannot encode the manifest: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("cannot compress the manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// maxManifest bounds a decompressed manifest (about ten million files).
const maxManifest = 2 << 30

// DecodeManifest reads a manifest written by Encode.
func DecodeManifest(r io.Reader) (*Manifest, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("cannot decompress the manifest: %w", err)
	}
	defer zr.Close()
	m := &Manifest{}
	if err := json.NewDecoder(io.LimitReader(zr, maxManifest)).Decode(m); err != nil {
		return nil, fmt.Errorf("cannot decode the manifest: %w", err)
	}
	if m.Kind != ManifestKind {
		return nil, fmt.Errorf("cannot decode the manifest: kind is %q, not %q", m.Kind, ManifestKind)
	}
	if _, err := newHash(m.Algorithm()); err != nil {
		return nil, fmt.Errorf("cannot decode the manifest: %w", err)
	}
	return m, nil
}
