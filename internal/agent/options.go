// Package agent is the part of Stashplane that runs inside backup and
// restore Jobs. It reads its Repository, BackupStorage and Snapshot from the
// API server, opens the storage from mounted credentials, serves the
// component's restic repository to restic over a loopback bridge, and
// records what it did in the Snapshot's status.components[<component>]
// together with a content manifest in the storage.
//
// A backup's work beside restic's own is kept small without dropping a
// safety check. The content manifest is hashed while restic reads the
// source, not in a pass before it; files that changed during the run are
// hashed from restic's copy, so the manifest still describes exactly what
// restic stored (contentscan.go). restic's unlock runs only when the
// repository holds a lock file, since it only ever removes stale ones. The
// check after the backup stays as it was, restic's structural check
// (index, snapshots, trees, the packs' presence and sizes; no data read)
// without the exclusive lock, whose time is nearly all restic's key
// derivation; it now runs while the hasher finishes. A restore takes the
// restic snapshot the manifest names instead of listing restic's
// snapshots, and hashes each restored file, on every core, as soon as
// restic reports it finished, rehashing at the end any file whose early
// hash does not match (comparehash.go).
//
// The manifest's digests are BLAKE3 (Manifest.Hash "blake3", each file's
// "blake3" field), which hashes several times faster than SHA-256 with
// SIMD, so a restore's hashing leaves restic more of the CPU. A manifest
// written before has no "hash" and holds SHA-256 digests ("sha256"); a
// restore compares with whichever algorithm the manifest names, and its
// differences name it ("5 bytes, blake3 3f2a9c01").
package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/stashplane/stashplane/internal/agentapi"
)

// Options are the agent's command line, as the built-in Functions render
// it (see docs/addons.md, "The agent's command line").
type Options struct {
	// Namespace of the Repository and the Snapshot.
	Namespace string
	// Storage is the BackupStorage as namespace/name.
	Storage string
	// Repository, Snapshot and Component say what is written or read.
	Repository, Snapshot, Component string
	// Paths are absolute paths as the container sees them.
	Paths []string
	// Exclude (backup) and Include (restore) are restic glob patterns.
	Exclude, Include []string
	// StorageSecretDir holds the storage Secret's keys, one file each;
	// empty for storages without a Secret.
	StorageSecretDir string
	// PasswordFile holds the repository password.
	PasswordFile string
	// ScratchDir holds restic's cache and temporary files.
	ScratchDir string
	// Target (restore) is a directory to restore into instead of the
	// original paths: each file lands at Target/<its backed-up path>.
	Target string
	// Into (restore) is a directory that receives the backup wherever it
	// was taken: a snapshot of one path has that path's content restored
	// at Into (Into/<file relative to the path>), one of several paths
	// each path under Into as with Target. It restores every path, so it
	// goes with neither Paths nor Target.
	Into string
	// RestoreSession (restore) names the RestoreSession whose
	// status.components[<component>] the agent reports to, in
	// RestoreSessionNamespace, else in Namespace.
	RestoreSession string
	// RestoreSessionNamespace (restore) is the RestoreSession's namespace
	// when it is not Namespace: a restore into another namespace than the
	// Repository's.
	RestoreSessionNamespace string
	// ReadDataSubset (restore) makes the agent run restic's check with
	// --read-data-subset (and --no-lock) before restoring; empty or "0"
	// runs none. Its default is $STASHPLANE_READ_DATA_SUBSET, which the
	// RestoreSession controller sets from spec.readDataSubset.
	ReadDataSubset string
	// Restic is the restic binary; empty finds it beside this binary or on
	// PATH.
	Restic string
}

// Kinds of run the options are checked for.
const (
	KindBackup  = "backup"
	KindRestore = "restore"
	// KindPrune prunes every restic repository of a Repository: it names
	// no Snapshot or component.
	KindPrune = "prune"
	// KindBackupStream and KindRestoreStream back up a stream (a database
	// dump) and give it back: they take no paths.
	KindBackupStream  = "backup-stream"
	KindRestoreStream = "restore-stream"
	// KindDownload writes one component of a Snapshot, as a tar archive,
	// to standard output (`stashplane download`): the prune Job's flags
	// and the Snapshot's.
	KindDownload = "download"
)

// AddFlags registers the flags of a run of kind (KindBackup, KindRestore).
func (o *Options) AddFlags(fs *pflag.FlagSet, kind string) {
	fs.StringVar(&o.Namespace, agentapi.FlagNamespace, "", "namespace of the Repository and Snapshot")
	fs.StringVar(&o.Storage, agentapi.FlagStorage, "", "the BackupStorage, namespace/name")
	fs.StringVar(&o.Repository, agentapi.FlagRepository, "", "the Repository")
	if kind != KindPrune {
		fs.StringVar(&o.Snapshot, agentapi.FlagSnapshot, "", "the Snapshot")
		fs.StringVar(&o.Component, agentapi.FlagComponent, "", "the Snapshot's component")
	}
	if kind == KindBackup || kind == KindRestore {
		fs.StringSliceVar(&o.Paths, agentapi.FlagPaths, nil, "comma-separated absolute paths as this container sees them")
	}
	switch kind {
	case KindPrune, KindBackupStream, KindDownload:
	case KindBackup:
		fs.StringArrayVar(&o.Exclude, agentapi.FlagExclude, nil, "glob pattern of files to leave out (repeatable)")
	default:
		if kind == KindRestore {
			fs.StringArrayVar(&o.Include, agentapi.FlagInclude, nil, "glob pattern of files to restore (repeatable)")
			fs.StringVar(&o.Target, agentapi.FlagTarget, "", "restore into this directory (files land at TARGET/<backed-up path>) instead of in place")
			fs.StringVar(&o.Into, agentapi.FlagInto, "", "restore the backup into this directory whatever its paths: one backed-up path's content lands at INTO, several paths each at INTO/<path>")
		}
		fs.StringVar(&o.RestoreSession, agentapi.FlagRestoreSession, "", "the RestoreSession to report the component's restore to")
		fs.StringVar(&o.RestoreSessionNamespace, agentapi.FlagRestoreSessionNamespace, "", "namespace of the RestoreSession (default: --namespace)")
		fs.StringVar(&o.ReadDataSubset, agentapi.FlagReadDataSubset, os.Getenv(agentapi.EnvReadDataSubset), "run restic check --read-data-subset with this subset (n/t, x%, or a size) before restoring; empty or 0 runs none")
	}
	fs.StringVar(&o.StorageSecretDir, agentapi.FlagStorageSecretDir, "", "directory holding the storage Secret's keys, one file per key")
	fs.StringVar(&o.PasswordFile, agentapi.FlagPasswordFile, "", "file holding the repository password")
	fs.StringVar(&o.ScratchDir, agentapi.FlagScratchDir, "", "directory for restic's cache and temporary files")
	fs.StringVar(&o.Restic, agentapi.FlagRestic, "", "the restic binary (default: beside this binary, else on PATH)")
}

// Validate checks the options of a run of kind and returns every problem
// at once.
func (o *Options) Validate(kind string) error {
	var errs []string
	required := map[string]string{
		"--namespace": o.Namespace, "--storage": o.Storage, "--repository": o.Repository,
		"--snapshot": o.Snapshot, "--component": o.Component, "--password-file": o.PasswordFile,
		"--scratch-dir": o.ScratchDir,
	}
	flags := []string{"--namespace", "--storage", "--repository", "--snapshot", "--component", "--password-file", "--scratch-dir"}
	if kind == KindPrune {
		flags = []string{"--namespace", "--storage", "--repository", "--password-file", "--scratch-dir"}
	}
	for _, f := range flags {
		if required[f] == "" {
			errs = append(errs, fmt.Sprintf("%s is required", f))
		}
	}
	if o.Storage != "" {
		if _, _, err := o.StorageRef(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if kind == KindBackup && len(o.Paths) == 0 {
		errs = append(errs, "--paths is required")
	}
	for _, p := range o.Paths {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Sprintf("path %q is not absolute", p))
		}
	}
	if o.Target != "" && !filepath.IsAbs(o.Target) {
		errs = append(errs, fmt.Sprintf("--target %q is not absolute", o.Target))
	}
	if o.Into != "" && !filepath.IsAbs(o.Into) {
		errs = append(errs, fmt.Sprintf("--into %q is not absolute", o.Into))
	}
	if o.Into != "" && (o.Target != "" || len(o.Paths) > 0) {
		errs = append(errs, "--into restores every backed-up path, so it goes with neither --target nor --paths")
	}
	if o.Component != "" && strings.ContainsAny(o.Component, "/,") {
		errs = append(errs, fmt.Sprintf("component %q must not contain '/' or ','", o.Component))
	}
	if len(errs) > 0 {
		return fmt.Errorf("cannot use the arguments: %s", strings.Join(errs, "; "))
	}
	return nil
}

// StorageRef splits --storage into namespace and name.
func (o *Options) StorageRef() (string, string, error) {
	ns, name, ok := strings.Cut(o.Storage, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("--storage %q is not namespace/name", o.Storage)
	}
	return ns, name, nil
}

// resticBinary finds restic: the --restic flag, else a restic beside this
// executable (as the stashplane image ships it), else restic on PATH.
func (o *Options) resticBinary() (string, error) {
	if o.Restic != "" {
		return o.Restic, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "restic")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath("restic")
	if err != nil {
		return "", fmt.Errorf("cannot find the restic binary: %w", err)
	}
	return p, nil
}
