// Package agentapi is the agent's contract with what composes its Jobs:
// the flags of `stashplane backup` and `stashplane restore`, the
// environment variables that give them defaults, and the RBAC rules the
// Jobs' ServiceAccount needs. The agent (internal/agent) reads it, and the
// controllers and Functions that compose Jobs write to it, so neither
// imports the other.
package agentapi

// Flags of the agent's command line, as the built-in Functions render it
// (docs/addons.md, "The agent's command line").
const (
	FlagNamespace               = "namespace"
	FlagStorage                 = "storage"
	FlagRepository              = "repository"
	FlagSnapshot                = "snapshot"
	FlagComponent               = "component"
	FlagPaths                   = "paths"
	FlagExclude                 = "exclude"
	FlagInclude                 = "include"
	FlagTarget                  = "target"
	FlagRestoreSession          = "restore-session"
	FlagRestoreSessionNamespace = "restore-session-namespace"
	FlagReadDataSubset          = "read-data-subset"
	FlagStorageSecretDir        = "storage-secret-dir"
	FlagPasswordFile            = "password-file"
	FlagScratchDir              = "scratch-dir"
	FlagRestic                  = "restic"
)

// EnvReadDataSubset is the default of --read-data-subset: the
// RestoreSession controller sets it on every container of a restore Job
// from spec.readDataSubset, so that every addon's restore task passes it on
// without a parameter.
const EnvReadDataSubset = "STASHPLANE_READ_DATA_SUBSET"
