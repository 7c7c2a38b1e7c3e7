package agentapi

// Reasons an agent's restore fails for how it was asked, not for what the
// backup holds. A verification whose restore ends with one gives the
// Snapshot no verdict: the verifier's settings are at fault.
const (
	// ReasonIncludeMatchedNothing: the include patterns match none of the
	// backup's files.
	ReasonIncludeMatchedNothing = "IncludeMatchedNothing"
	// ReasonPathNotInBackup: a path to restore is not one the backup holds.
	ReasonPathNotInBackup = "PathNotInBackup"
	// ReasonNotAStream: a stream restore (a database load) of a component
	// that was backed up as files, or as another stream.
	ReasonNotAStream = "NotAStream"
	// ReasonTargetTooSmall: the restore's target ran out of space.
	ReasonTargetTooSmall = "TargetTooSmall"
	// ReasonTargetWriteFailed: the restored files could not be written
	// from the page cache to the target's disk.
	ReasonTargetWriteFailed = "TargetWriteFailed"
)

// SetupReasons are the restore failures that blame the restore's own
// settings or target, never the backup.
var SetupReasons = []string{ReasonIncludeMatchedNothing, ReasonPathNotInBackup, ReasonNotAStream, ReasonTargetTooSmall, ReasonTargetWriteFailed}
