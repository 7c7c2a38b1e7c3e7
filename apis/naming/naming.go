// Package naming holds the rules that name what Stashplane makes: the
// sessions a schedule starts, the Snapshots of a run, and the accounts,
// Secrets, CronJobs, claims and locks that controllers compose. Every name
// that could outgrow a Kubernetes limit goes through Bound, which keeps
// distinct inputs distinct by a hash. The names are part of what is stored
// in clusters and backends, so a rule here changes only with a test that
// says why (naming_test.go pins them).
package naming

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// Limits of the names Stashplane composes.
const (
	// MaxLabelValue bounds label values and the names of objects that are
	// also label values or DNS labels (ServiceAccounts, Jobs, claims).
	MaxLabelValue = 63
	// MaxCronJobName bounds CronJob names: the Jobs they make add eleven
	// characters.
	MaxCronJobName = 52
	// MaxObjectName bounds the names of other objects (DNS subdomains).
	MaxObjectName = 253
)

// hashLen is how many hex digits of a SHA-256 a bounded name keeps.
const hashLen = 8

// Hash is the short hash Bound ends a cut name with: the first eight hex
// digits of the SHA-256 of s.
func Hash(s string) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(s)))[:hashLen]
}

// Bound appends suffix to base. When the whole would be longer than max,
// base is cut and ends with "-" and Hash(base), so that distinct bases keep
// distinct names.
func Bound(base, suffix string, max int) string {
	if len(base)+len(suffix) <= max {
		return base + suffix
	}
	return base[:max-len(suffix)-hashLen-1] + "-" + Hash(base) + suffix
}

// SessionName is the name of the BackupSession of a configuration's session
// started at the given Unix time.
func SessionName(config, session string, unix int64) string {
	return fmt.Sprintf("%s-%s-%d", config, session, unix)
}

// SnapshotName is the name of the Snapshot a backup session writes to a
// repository.
func SnapshotName(repository, session string) string {
	return repository + "-" + session
}

// ConfigurationServiceAccount is the account a BackupConfiguration's
// CronJobs and backup Jobs run as.
func ConfigurationServiceAccount(config string) string {
	return Bound(config, "-stashplane", MaxLabelValue)
}

// BackupReportGrant names the Role and RoleBinding that let a
// BackupSession's Jobs report to its Snapshots while it runs.
func BackupReportGrant(session string) string {
	return Bound(session, "-report", MaxObjectName)
}

// ConfigurationCronJob is the CronJob of a configuration's session.
func ConfigurationCronJob(config, session string) string {
	return Bound(config+"-"+session, "", MaxCronJobName)
}

// ConfigurationGrant names a configuration's Role and RoleBinding in
// other namespaces; a namespace holds no dot, so distinct configurations
// get distinct names.
func ConfigurationGrant(namespace, config string) string {
	return Bound(namespace+"."+config, "-backup", MaxObjectName)
}

// ConfigurationStorageSecret names a configuration's copy of the credential
// Secret of BackupStorage namespace/storage, which its backup Jobs mount
// instead of the storage's own when the storage is in another namespace.
func ConfigurationStorageSecret(config, namespace, storage string) string {
	return Bound(config+"."+namespace+"."+storage, "-storage", MaxObjectName)
}

// RestoreServiceAccount is the account a RestoreSession's Jobs run as.
func RestoreServiceAccount(session string) string {
	return Bound(session, "-restore", MaxLabelValue)
}

// RestoreGrant names a RestoreSession's Role and RoleBinding in other
// namespaces.
func RestoreGrant(namespace, session string) string {
	return Bound(namespace+"."+session, "-restore", MaxObjectName)
}

// RestoreStorageSecret names a RestoreSession's copy of the credential
// Secret of a storage in another namespace.
func RestoreStorageSecret(session string) string {
	return Bound(session, "-storage", MaxObjectName)
}

// VerifierServiceAccount is the account a BackupVerifier's CronJob runs as.
func VerifierServiceAccount(verifier string) string {
	return Bound(verifier, "-verifier", MaxLabelValue)
}

// VerifierCronJob is a BackupVerifier's CronJob.
func VerifierCronJob(verifier string) string {
	return Bound(verifier, "-verify", MaxCronJobName)
}

// verifyLockPrefix begins the name of the Lease that locks a Snapshot for
// a verification.
const verifyLockPrefix = "stashplane-verify-"

// VerifyLock is the Lease that one verification session at a time holds
// on a Snapshot.
func VerifyLock(snapshot string) string {
	return verifyLockPrefix + Bound(snapshot, "", MaxObjectName-len(verifyLockPrefix))
}

// ScratchClaim is the claim a verification session makes when its
// verifier's target claim does not exist: the target's name, cut to fit,
// and the hash of the session's, so that two sessions of one verifier
// never share one.
func ScratchClaim(target, session string) string {
	if max := MaxLabelValue - hashLen - 1; len(target) > max {
		target = target[:max]
	}
	return target + "-" + Hash(session)
}

// VerificationRetry is the session that retries a failed verification:
// named after the first session of the chain and the retries left, so that
// a chain's names never repeat.
func VerificationRetry(first string, left int32) string {
	return Bound(strings.TrimSuffix(first, "-"), fmt.Sprintf("-retry-%d", left), MaxObjectName)
}

// PruneJob is the Job that prunes a Repository's restic repositories.
// There is one at a time per Repository: its fixed name is the lock that
// keeps two prunes of a Repository apart.
func PruneJob(repository string) string {
	return Bound(repository, "-prune", MaxLabelValue)
}

// HookJob is the Job of attempt n of the hook named hook, on the given side
// ("pre" or "post") of session's work, for a hook whose template has a
// Function executor.
func HookJob(session, side, hook string, n int32) string {
	return Bound(fmt.Sprintf("%s-%s-%s", session, side, hook), fmt.Sprintf("-%d", n), 63)
}

// UnlockJob names the Job `stashplane unlock` runs for a Repository.
func UnlockJob(repository string) string {
	return Bound(repository, "-unlock", MaxLabelValue)
}

// PasswordJob is the Job that lists, adds or removes the restic keys of a
// Repository (`stashplane password`).
func PasswordJob(repository string) string {
	return Bound(repository, "-password", MaxLabelValue)
}

// PasswordSecret holds, while a password change of a Repository is under
// way, the new password and the one it replaces.
func PasswordSecret(repository string) string {
	return Bound(repository, "-password-change", 253)
}

// DownloadJob is the Job whose pod `stashplane download` streams one
// component of a Snapshot from.
func DownloadJob(snapshot, component string) string {
	return Bound(snapshot+"-"+component, "-download", MaxLabelValue)
}
