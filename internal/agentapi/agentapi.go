// Package agentapi is the agent's contract with what composes its Jobs:
// the flags of `stashplane backup` and `stashplane restore`, the
// environment variables that give them defaults, and the RBAC rules the
// Jobs' ServiceAccount needs. The agent (internal/agent) reads it, and the
// controllers and Functions that compose Jobs write to it, so neither
// imports the other.
package agentapi

import "strings"

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
	FlagInto                    = "into"
	FlagRestoreSession          = "restore-session"
	FlagRestoreSessionNamespace = "restore-session-namespace"
	FlagReadDataSubset          = "read-data-subset"
	FlagStorageSecretDir        = "storage-secret-dir"
	FlagPasswordFile            = "password-file"
	FlagScratchDir              = "scratch-dir"
	FlagRestic                  = "restic"
)

// SecretKeyStorageGrant is the key, in the Secret a Job of another
// namespace mounts at --storage-secret-dir, of the grant that lets it
// reach a brokered storage (spec.access Broker): its Repositories'
// prefixes only, through the storage's broker, never its credentials.
const SecretKeyStorageGrant = "STASHPLANE_STORAGE_GRANT"

// SecretKeyStorageBrokerCertificate is the key, in the same Secret, of
// the certificate the storage's broker serves TLS with (PEM, public): the
// agent trusts that one certificate for the broker and no other.
const SecretKeyStorageBrokerCertificate = "STASHPLANE_STORAGE_BROKER_CERTIFICATE"

// EnvReadDataSubset is the default of --read-data-subset: the
// RestoreSession controller sets it on every container of a restore Job
// from spec.readDataSubset, so that every addon's restore task passes it on
// without a parameter.
const EnvReadDataSubset = "STASHPLANE_READ_DATA_SUBSET"

// EnvObjectsDryRun, set to "true" on a restore Job, makes a task that
// recreates objects from resource manifests only ask the API server to
// accept each (a server-side dry run), never make one: the RestoreSession
// controller sets it on the Jobs of a verification's restore, whatever the
// task's parameters say.
const EnvObjectsDryRun = "STASHPLANE_OBJECTS_DRY_RUN"

// SourceNamespaceAll, as a manifest-restore task's sourceNamespace,
// recreates every object of a dump of the cluster where it was: the
// RestoreSession controller lets only the namespaces the operator lists
// ask for it, and the agent then moves no object.
const SourceNamespaceAll = "*"

// ResticTuningEnv are the RESTIC_* variables of the agent's environment
// that reach restic: they tune how it packs and reads data and never where
// it reads or writes. restic's environment is otherwise rebuilt from
// nothing (the repository, the password file, PATH, HOME, TMPDIR, TZ). The
// runtime settings' env is refused at admission for any other RESTIC_*
// variable and for variables that would redirect the agent
// (apis/storage/v1alpha1.ContainerRuntimeSettings), so what a user may
// set and what reaches restic are one list.
var ResticTuningEnv = []string{"RESTIC_COMPRESSION", "RESTIC_PACK_SIZE", "RESTIC_READ_CONCURRENCY"}

// RedirectingEnv are variables that would send the agent, or the
// libraries it uses, somewhere other than the API server and the storage
// it is given; so would any AWS_*, AZURE_* or GOOGLE_* variable
// (RedirectingEnvPrefixes). The runtime settings' CEL rule refuses the
// same names at admission.
var RedirectingEnv = []string{"KUBECONFIG", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "XDG_CACHE_HOME"}

// RedirectingEnvPrefixes: see RedirectingEnv.
var RedirectingEnvPrefixes = []string{"AWS_", "AZURE_", "GOOGLE_"}

// ResticTuning picks the ResticTuningEnv entries out of an environment in
// os.Environ's form, in the list's order.
func ResticTuning(environ []string) []string {
	values := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			values[k] = v
		}
	}
	var out []string
	for _, k := range ResticTuningEnv {
		if v, ok := values[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}
