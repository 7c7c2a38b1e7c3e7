// Package layout is the one layout of what Stashplane records in a bucket,
// and the operations over it that more than one part needs (forgetting a
// restic snapshot, wiping a prefix):
//
//	metadata.yaml                                       the storage's record
//	<repo path>/repository.yaml                         a Repository
//	<repo path>/snapshots/<snapshot>.yaml               a Snapshot
//	<repo path>/manifests/<snapshot>/<component>.json.gz  a content manifest
//	<repo path>/repository/v1/<session>/<component>/    restic repositories
//	  config, keys/, locks/, snapshots/, index/, data/    restic's own layout
package layout

import (
	"path"
	"strings"
	"time"
)

// Keys of what Stashplane records in a backend, relative to the storage's
// prefix.
const (
	MetadataKey = "metadata.yaml"
)

// CleanPath is a repository's path as its keys use it: "/a//b/" and "a/b"
// name the same place.
func CleanPath(p string) string { return strings.Trim(path.Clean("/"+p), "/") }

// Within says whether clean repository path a is b or lies under it.
func Within(a, b string) bool { return a == b || strings.HasPrefix(a, b+"/") }

// RepositoryKey is the key of a repository's record.
func RepositoryKey(repoPath string) string { return path.Join(repoPath, "repository.yaml") }

// SnapshotKey is the key of a snapshot's record.
func SnapshotKey(repoPath, snapshot string) string {
	return path.Join(repoPath, "snapshots", snapshot+".yaml")
}

// ResticPrefix is the prefix of one component's restic repository.
func ResticPrefix(repoPath, session, component string) string {
	return path.Join(ResticSessionsPrefix(repoPath), session, component) + "/"
}

// ResticSessionsPrefix is the prefix under which a repository's restic
// repositories lie, one per session and component.
func ResticSessionsPrefix(repoPath string) string {
	return path.Join(repoPath, "repository", "v1") + "/"
}

// LedgerKey is the key of one component's ledger: the packs and index
// files of its restic repository that restic's structural check last
// vouched for, with their sizes (JSON, written by the backup agent).
func LedgerKey(repoPath, session, component string) string {
	return path.Join(repoPath, "ledgers", session, component+".json")
}

// ManifestsPrefix is the prefix of a repository's content manifests.
func ManifestsPrefix(repoPath string) string { return path.Join(repoPath, "manifests") + "/" }

// Inside one restic repository (a ResticPrefix), restic's own layout: its
// config, and the directories of its locks and snapshots.
func ResticConfigKey(prefix string) string { return strings.TrimSuffix(prefix, "/") + "/config" }

// ResticSnapshotKey is the file of restic snapshot id in a restic
// repository.
func ResticSnapshotKey(prefix, id string) string { return ResticSnapshotsPrefix(prefix) + id }

// ResticLocksPrefix is the prefix of a restic repository's lock files.
func ResticLocksPrefix(prefix string) string { return strings.TrimSuffix(prefix, "/") + "/locks/" }

// IsResticLockKey says whether key is the lock file of one of the restic
// repositories under repository directory repoPath:
// <repoPath>/repository/v1/<session>/<component>/locks/<64 hex digits>.
func IsResticLockKey(repoPath, key string) bool {
	rest, ok := strings.CutPrefix(key, ResticSessionsPrefix(repoPath))
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return len(parts) == 4 && parts[0] != "" && parts[1] != "" && parts[2] == "locks" && IsResticID(parts[3])
}

// IsResticID says whether s is a whole restic ID, the name of a restic
// file: 64 lower-case hex digits.
func IsResticID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ResticSnapshotsPrefix is the prefix of a restic repository's snapshot
// files.
func ResticSnapshotsPrefix(prefix string) string {
	return strings.TrimSuffix(prefix, "/") + "/snapshots/"
}

// Metadata is the storage's record, metadata.yaml at its root: who wrote
// it and which repositories the storage holds.
type Metadata struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Operator   OperatorInfo `json:"operator"`
	// Owner is the UID of the BackupStorage object that writes the record;
	// empty in records written before owners were recorded.
	Owner        string               `json:"owner,omitempty"`
	Repositories []RepositoryLocation `json:"repositories,omitempty"`
}

// OperatorInfo says which Stashplane wrote a record.
type OperatorInfo struct {
	Name      string    `json:"name"`
	Version   string    `json:"version"`
	Initiated time.Time `json:"initiated"`
}

// RepositoryLocation is one repository the storage holds.
type RepositoryLocation struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Path      string `json:"path"`
}

// Record kinds.
const (
	RecordAPIVersion = "storage.stashplane.io/v1alpha1"
	KindBackendMeta  = "BackendMeta"
	OperatorName     = "stashplane"
)

// ManifestKey is the key of a component's content manifest (gzipped JSON:
// each file's path, size and SHA-256), written by the backup agent beside
// the restic data for later verification.
func ManifestKey(repoPath, snapshot, component string) string {
	return path.Join(ManifestsPrefix(repoPath), snapshot, component+".json.gz")
}
