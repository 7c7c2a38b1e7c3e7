package agent

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"
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
	// Files, sorted by path.
	Files []ManifestFile `json:"files"`
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
	return m, nil
}
