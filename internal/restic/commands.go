package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// BackupOptions say what to back up.
type BackupOptions struct {
	// Paths to back up.
	Paths []string
	// Tags of the snapshot.
	Tags []string
	// Host recorded in the snapshot; empty means restic's default, the
	// machine's host name.
	Host string
	// Args are extra restic backup flags, such as "--compression=max".
	Args []string
	// ListFiles asks restic to name every item it stores (its verbose
	// lines, --verbose=2), so the summary's Files lists the snapshot's
	// regular files without a second restic run (ls) that pays for key
	// derivation and the index again.
	ListFiles bool
	// Parent is the ID of the snapshot restic compares the files with
	// (--parent); empty leaves the choice to restic (the newest snapshot
	// of the same host and paths).
	Parent string
	// Gate, when not nil, holds restic back until it is closed, at a
	// point after it has opened the repository, derived its key and
	// taken its lock, and before it reads anything of the source beyond
	// the existence of its paths: restic reads one more file of exclude
	// patterns, its standard input, which ends (empty) once Gate is
	// closed. A caller can so look at the source itself while restic
	// starts, on any backend, and be sure it looked first. Stopped while
	// held, restic is shut out (gateShut): it removes its lock and stores
	// nothing. Not with BackupStdin.
	Gate <-chan struct{}
}

// gateFile is where a gated restic reads the patterns that hold it back:
// its standard input, which the process node and container runtimes give
// every container, as /proc/self/fd/0.
const gateFile = "/proc/self/fd/0"

// gateShut is what a gate stopped before it opened gives restic: an
// exclude pattern restic refuses (an unclosed character class), so that
// it fails at once, before it reads the source, and removes its lock.
const gateShut = "[\n"

// BackupProgress is one status message of a running backup.
type BackupProgress struct {
	PercentDone  float64
	Elapsed      time.Duration
	TotalFiles   uint64
	FilesDone    uint64
	TotalBytes   uint64
	BytesDone    uint64
	ErrorCount   uint64
	CurrentFiles []string
}

// BackupSummary is what a backup did.
type BackupSummary struct {
	SnapshotID          string
	FilesNew            uint64
	FilesChanged        uint64
	FilesUnmodified     uint64
	DirsNew             uint64
	DirsChanged         uint64
	DirsUnmodified      uint64
	DataAdded           uint64
	DataAddedPacked     uint64
	TotalFilesProcessed uint64
	TotalBytesProcessed uint64
	Duration            time.Duration
	Start, End          time.Time
	// Errors are the items restic could not read, at most maxItemErrors.
	Errors []string
	// StoredAgain counts the files restic read and stored again because
	// the index lacked some of their data (a pack storage lost, dropped
	// from the index by RepairIndex): each heals the snapshots that hold
	// the same content.
	StoredAgain int
	// Files are the snapshot paths of the regular files the snapshot
	// holds, new, changed and unchanged alike, when BackupOptions.ListFiles
	// was set; nil otherwise.
	Files []string
	// Unchanged are those of Files restic found unchanged since the parent
	// snapshot, metadata and content alike: it stored the parent's content
	// for them without reading them.
	Unchanged []string
}

// maxItemErrors bounds how many unreadable items a summary lists.
const maxItemErrors = 20

// verboseLine begins each line restic backup --json --verbose=2 prints for
// an item it stored.
var verboseLine = []byte(`{"message_type":"verbose_status"`)

// verboseMessage is what is read of such a line.
type verboseMessage struct {
	Action string `json:"action"`
	Item   string `json:"item"`
}

// backupMessage is any line restic backup --json prints.
type backupMessage struct {
	MessageType string `json:"message_type"`
	// status
	PercentDone    float64  `json:"percent_done"`
	SecondsElapsed float64  `json:"seconds_elapsed"`
	TotalFiles     uint64   `json:"total_files"`
	FilesDone      uint64   `json:"files_done"`
	TotalBytes     uint64   `json:"total_bytes"`
	BytesDone      uint64   `json:"bytes_done"`
	ErrorCount     uint64   `json:"error_count"`
	CurrentFiles   []string `json:"current_files"`
	// error
	Error struct {
		Message string `json:"message"`
	} `json:"error"`
	During string `json:"during"`
	Item   string `json:"item"`
	// verbose_status
	Action string `json:"action"`
	// summary
	SnapshotID          string    `json:"snapshot_id"`
	FilesNew            uint64    `json:"files_new"`
	FilesChanged        uint64    `json:"files_changed"`
	FilesUnmodified     uint64    `json:"files_unmodified"`
	DirsNew             uint64    `json:"dirs_new"`
	DirsChanged         uint64    `json:"dirs_changed"`
	DirsUnmodified      uint64    `json:"dirs_unmodified"`
	DataAdded           uint64    `json:"data_added"`
	DataAddedPacked     uint64    `json:"data_added_packed"`
	TotalFilesProcessed uint64    `json:"total_files_processed"`
	TotalBytesProcessed uint64    `json:"total_bytes_processed"`
	TotalDuration       float64   `json:"total_duration"`
	BackupStart         time.Time `json:"backup_start"`
	BackupEnd           time.Time `json:"backup_end"`
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Backup backs up opts.Paths, calling progress (if not nil) with each
// status message. When some files could not be read the snapshot is still
// made: Backup returns its summary and an error with reason
// ReasonSourceIncomplete.
func (r *Restic) Backup(ctx context.Context, opts BackupOptions, progress func(BackupProgress)) (*BackupSummary, error) {
	if len(opts.Paths) == 0 {
		return nil, errors.New("cannot back up: no paths given")
	}
	return r.backup(ctx, opts, nil, progress)
}

// BackupStdin backs up what stdin gives, up to its io.EOF, as one file
// named filename at the snapshot's root (restic's --stdin); opts.Paths
// are not used. A read error of stdin other than io.EOF interrupts
// restic before its input ends, so no snapshot is made of a stream that
// failed half way: BackupStdin returns that error.
func (r *Restic) BackupStdin(ctx context.Context, opts BackupOptions, filename string, stdin io.Reader, progress func(BackupProgress)) (*BackupSummary, error) {
	if filename == "" || strings.Contains(filename, "/") {
		return nil, fmt.Errorf("cannot back up standard input: file name %q is not one path element", filename)
	}
	opts.Paths = nil
	opts.Args = append(slices.Clone(opts.Args), "--stdin", "--stdin-filename", filename)
	return r.backup(ctx, opts, stdin, progress)
}

func (r *Restic) backup(ctx context.Context, opts BackupOptions, stdin io.Reader, progress func(BackupProgress)) (*BackupSummary, error) {
	var args []string
	for _, t := range opts.Tags {
		args = append(args, "--tag", t)
	}
	if opts.ListFiles {
		args = append(args, "--verbose=2")
	}
	if opts.Host != "" {
		args = append(args, "--host", opts.Host)
	}
	if opts.Parent != "" {
		args = append(args, "--parent", opts.Parent)
	}
	if opts.Gate != nil {
		// runStreams refuses a gate with standard input.
		args = append(args, "--exclude-file", gateFile)
	}
	args = append(args, opts.Args...)
	args = append(args, "--")
	args = append(args, opts.Paths...)
	var sum *BackupSummary
	var itemErrors, files, unchanged []string
	var storedAgain, otherErrors int
	onError := func(line []byte) {
		var m backupMessage
		if json.Unmarshal(line, &m) != nil || m.MessageType != "error" {
			return
		}
		if strings.Contains(m.Error.Message, storedAgainLine) {
			// Not an error: the index lacked some of the file's blobs
			// (storage lost their pack), so restic read the file again
			// and stored it whole.
			storedAgain++
			return
		}
		otherErrors++
		if len(itemErrors) < maxItemErrors {
			itemErrors = append(itemErrors, r.redact(fmt.Sprintf("%s %s: %s", m.During, m.Item, m.Error.Message)))
		}
	}
	onItem := func(action, item string) {
		// Directories are named with a trailing slash; only regular
		// files are named without one (restic reports no other kind),
		// and an item restic failed to store is not reported.
		if !opts.ListFiles || action == "scan_finished" || item == "" || strings.HasSuffix(item, "/") {
			return
		}
		files = append(files, item)
		if action == "unchanged" {
			unchanged = append(unchanged, item)
		}
	}
	err := r.runStreams(ctx, "backup", args, streams{stdin: stdin, gate: opts.Gate, onErrLine: onError, onLine: func(line []byte) {
		if bytes.HasPrefix(line, verboseLine) {
			// One line per item, thousands of them: only what is
			// used is decoded.
			var v verboseMessage
			if json.Unmarshal(line, &v) == nil {
				onItem(v.Action, v.Item)
			}
			return
		}
		var m backupMessage
		if json.Unmarshal(line, &m) != nil {
			return
		}
		switch m.MessageType {
		case "status":
			if progress != nil {
				progress(BackupProgress{
					PercentDone: m.PercentDone, Elapsed: seconds(m.SecondsElapsed),
					TotalFiles: m.TotalFiles, FilesDone: m.FilesDone, TotalBytes: m.TotalBytes, BytesDone: m.BytesDone,
					ErrorCount: m.ErrorCount, CurrentFiles: m.CurrentFiles,
				})
			}
		case "error":
			onError(line)
		case "verbose_status":
			onItem(m.Action, m.Item)
		case "summary":
			sum = &BackupSummary{
				SnapshotID: m.SnapshotID, FilesNew: m.FilesNew, FilesChanged: m.FilesChanged, FilesUnmodified: m.FilesUnmodified,
				DirsNew: m.DirsNew, DirsChanged: m.DirsChanged, DirsUnmodified: m.DirsUnmodified,
				DataAdded: m.DataAdded, DataAddedPacked: m.DataAddedPacked,
				TotalFilesProcessed: m.TotalFilesProcessed, TotalBytesProcessed: m.TotalBytesProcessed,
				Duration: seconds(m.TotalDuration), Start: m.BackupStart, End: m.BackupEnd,
			}
		}
	}})
	if sum != nil {
		sum.Errors, sum.StoredAgain = itemErrors, storedAgain
		if opts.ListFiles {
			sum.Files, sum.Unchanged = files, unchanged
			if sum.Files == nil {
				sum.Files = []string{}
			}
		}
	}
	var e *Error
	if errors.As(err, &e) && e.Reason == ReasonSourceIncomplete && otherErrors == 0 && storedAgain > 0 && sum != nil && sum.SnapshotID != "" {
		// restic exits 3 when it stored files again; every file was read.
		err = nil
	}
	if errors.As(err, &e) && e.Reason == ReasonSourceIncomplete && len(itemErrors) > 0 {
		e.Message = strings.Join(itemErrors, "; ")
	}
	if err == nil && (sum == nil || sum.SnapshotID == "") {
		// Success without a snapshot would be reported as a backup that
		// holds nothing: refuse it.
		return sum, &Error{Op: "backup", Reason: ReasonResticFailed, Message: "restic reported no snapshot"}
	}
	return sum, err
}

// Snapshot is one snapshot in the repository.
type Snapshot struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Tree     string    `json:"tree"`
	Paths    []string  `json:"paths"`
	Hostname string    `json:"hostname"`
	Tags     []string  `json:"tags"`
}

// Snapshots lists the repository's snapshots, oldest first.
func (r *Restic) Snapshots(ctx context.Context) ([]Snapshot, error) {
	var out []byte
	err := r.run(ctx, "snapshots", nil, func(line []byte) { out = append(out, line...) })
	if err != nil {
		return nil, err
	}
	var snaps []Snapshot
	if err := json.Unmarshal(out, &snaps); err != nil {
		return nil, fmt.Errorf("cannot parse the snapshots restic listed: %w", err)
	}
	return snaps, nil
}

// RestoreProgress is one status message of a running restore.
type RestoreProgress struct {
	PercentDone   float64
	Elapsed       time.Duration
	TotalFiles    uint64
	FilesRestored uint64
	TotalBytes    uint64
	BytesRestored uint64
}

// RestoreSummary is what a restore did.
type RestoreSummary struct {
	Elapsed       time.Duration
	TotalFiles    uint64
	FilesRestored uint64
	FilesSkipped  uint64
	TotalBytes    uint64
	BytesRestored uint64
	BytesSkipped  uint64
}

type restoreMessage struct {
	MessageType    string  `json:"message_type"`
	PercentDone    float64 `json:"percent_done"`
	SecondsElapsed float64 `json:"seconds_elapsed"`
	TotalFiles     uint64  `json:"total_files"`
	FilesRestored  uint64  `json:"files_restored"`
	FilesSkipped   uint64  `json:"files_skipped"`
	TotalBytes     uint64  `json:"total_bytes"`
	BytesRestored  uint64  `json:"bytes_restored"`
	BytesSkipped   uint64  `json:"bytes_skipped"`
	// Action and Item of a verbose_status message: a file or directory
	// restic has finished ("restored", "updated" or "unchanged").
	Action string `json:"action"`
	Item   string `json:"item"`
}

// Restore restores snapshot (an ID, or "latest") into target, calling
// progress (if not nil) with each status message. Include patterns, when
// given, restore only the files they match (restic's --include).
func (r *Restic) Restore(ctx context.Context, snapshot, target string, progress func(RestoreProgress), include ...string) (*RestoreSummary, error) {
	return r.RestoreItems(ctx, snapshot, target, progress, nil, include...)
}

// RestoreItems is Restore that also calls finished (if not nil) with each
// file and directory restic has finished writing (or found unchanged),
// by its path in the restored tree ("/" is the target), while the
// restore goes on.
func (r *Restic) RestoreItems(ctx context.Context, snapshot, target string, progress func(RestoreProgress), finished func(item string), include ...string) (*RestoreSummary, error) {
	if snapshot == "" || target == "" {
		return nil, errors.New("cannot restore: a snapshot and a target are required")
	}
	args := []string{"--target", target}
	if finished != nil {
		args = append(args, "--verbose=2")
	}
	for _, p := range include {
		args = append(args, "--include", p)
	}
	var sum *RestoreSummary
	err := r.run(ctx, "restore", append(args, "--", snapshot), func(line []byte) {
		var m restoreMessage
		if json.Unmarshal(line, &m) != nil {
			return
		}
		switch m.MessageType {
		case "status":
			if progress != nil {
				progress(RestoreProgress{
					PercentDone: m.PercentDone, Elapsed: seconds(m.SecondsElapsed), TotalFiles: m.TotalFiles,
					FilesRestored: m.FilesRestored, TotalBytes: m.TotalBytes, BytesRestored: m.BytesRestored,
				})
			}
		case "verbose_status":
			if finished != nil && m.Item != "" {
				finished(m.Item)
			}
		case "summary":
			sum = &RestoreSummary{
				Elapsed: seconds(m.SecondsElapsed), TotalFiles: m.TotalFiles, FilesRestored: m.FilesRestored,
				FilesSkipped: m.FilesSkipped, TotalBytes: m.TotalBytes, BytesRestored: m.BytesRestored, BytesSkipped: m.BytesSkipped,
			}
		}
	})
	return sum, err
}

// CheckOptions say how deep a check goes.
type CheckOptions struct {
	// ReadData reads and verifies every pack, not only the structure.
	ReadData bool
	// Subset reads only part of the packs, in restic's syntax: "n/t",
	// "x%" or a size such as "500M". It implies reading data.
	Subset string
	// NoLock checks without taking restic's exclusive lock, so a lock
	// left by an interrupted run does not stop the check. The check only
	// reads; it may report spurious errors if a prune runs meanwhile.
	NoLock bool
}

// CheckSummary is what a check found.
type CheckSummary struct {
	NumErrors   int
	BrokenPacks []string
	// MissingPacks are packs the index names and storage does not hold,
	// sorted.
	MissingPacks []string
	// Errors are the problems restic reported, at most maxItemErrors.
	Errors []string
}

// Check verifies the repository. A repository with problems is an error
// (ReasonResticFailed) returned with the summary.
func (r *Restic) Check(ctx context.Context, opts CheckOptions) (*CheckSummary, error) {
	var args []string
	if opts.NoLock {
		args = append(args, "--no-lock")
	}
	switch {
	case opts.Subset != "":
		args = append(args, "--read-data-subset", opts.Subset)
	case opts.ReadData:
		args = append(args, "--read-data")
	}
	sum := &CheckSummary{}
	onLine := func(line []byte) {
		var m struct {
			MessageType string   `json:"message_type"`
			NumErrors   int      `json:"num_errors"`
			BrokenPacks []string `json:"broken_packs"`
			Message     string   `json:"message"`
		}
		if json.Unmarshal(line, &m) != nil {
			return
		}
		switch m.MessageType {
		case "summary":
			sum.NumErrors, sum.BrokenPacks = m.NumErrors, m.BrokenPacks
		case "error":
			sum.MissingPacks = missingPacks(sum.MissingPacks, m.Message)
			if len(sum.Errors) < maxItemErrors {
				sum.Errors = append(sum.Errors, r.redact(m.Message))
			}
		}
	}
	// restic reports the problems it finds on standard error.
	err := r.runStreams(ctx, "check", args, streams{onLine: onLine, onErrLine: onLine})
	slices.Sort(sum.MissingPacks)
	var e *Error
	if errors.As(err, &e) && e.Message == "" && len(sum.Errors) > 0 {
		e.Message = strings.Join(sum.Errors, "; ")
	}
	return sum, err
}

// Files lists the paths of the regular files snapshot holds, in the order
// restic ls prints them; directories, symbolic links and other entries are
// left out.
func (r *Restic) Files(ctx context.Context, snapshot string) ([]string, error) {
	if snapshot == "" {
		return nil, errors.New("cannot list a snapshot's files: no snapshot given")
	}
	var files []string
	err := r.run(ctx, "ls", []string{"--", snapshot}, func(line []byte) {
		var n struct {
			StructType string `json:"struct_type"`
			Type       string `json:"type"`
			Path       string `json:"path"`
		}
		if json.Unmarshal(line, &n) == nil && n.StructType == "node" && n.Type == "file" {
			files = append(files, n.Path)
		}
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

// Dump writes the file at path (as the snapshot holds it, such as
// "/dumpfile.sql") of snapshot to w (restic's dump), without writing it to
// disk.
func (r *Restic) Dump(ctx context.Context, snapshot, path string, w io.Writer) error {
	if snapshot == "" || path == "" {
		return errors.New("cannot dump a file: a snapshot and a path are required")
	}
	return r.runIO(ctx, "dump", []string{"--", snapshot, path}, nil, nil, w)
}

// DumpTar writes every file of snapshot to w as one tar archive (restic's
// dump --archive tar of "/"), paths relative to the snapshot's root.
func (r *Restic) DumpTar(ctx context.Context, snapshot string, w io.Writer) error {
	if snapshot == "" {
		return errors.New("cannot dump a snapshot: a snapshot is required")
	}
	return r.runIO(ctx, "dump", []string{"--archive", "tar", "--", snapshot, "/"}, nil, nil, w)
}
