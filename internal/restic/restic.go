// Package restic drives the restic binary that moves backup data: it runs
// restic with --json, parses its summaries, progress and errors, and turns
// its exit codes into reasons a condition can carry. The repository password
// and any backend credentials reach restic through its environment only,
// never its command line, and are removed from every error.
package restic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Reasons a restic run failed.
const (
	// ReasonSourceIncomplete: some source files could not be read; the
	// snapshot was made without them (exit code 3).
	ReasonSourceIncomplete = "SourceIncomplete"
	// ReasonRepositoryNotFound: there is no repository at the location
	// (exit code 10).
	ReasonRepositoryNotFound = "RepositoryNotFound"
	// ReasonRepositoryLocked: another run holds the repository's lock (exit
	// code 11).
	ReasonRepositoryLocked = "RepositoryLocked"
	// ReasonWrongPassword: the password opens no key of the repository
	// (exit code 12).
	ReasonWrongPassword = "WrongPassword"
	// ReasonInterrupted: the run was interrupted (exit code 130, or
	// stopped by its context).
	ReasonInterrupted = "Interrupted"
	// ReasonResticFailed: any other failure.
	ReasonResticFailed = "ResticFailed"
)

// reasonOfExit maps restic's documented exit codes.
var reasonOfExit = map[int]string{
	3:   ReasonSourceIncomplete,
	10:  ReasonRepositoryNotFound,
	11:  ReasonRepositoryLocked,
	12:  ReasonWrongPassword,
	130: ReasonInterrupted,
}

// ErrAbandoned, as the cause its context is cancelled with
// (context.WithCancelCause), has a run killed at once rather than
// interrupted: for a restic that cannot have written anything yet, such
// as one whose lock its caller still holds back, and whose interrupt
// would wait for its key derivation to end.
var ErrAbandoned = errors.New("the restic run was abandoned")

// Error is a failed restic run.
type Error struct {
	// Op is the restic command, such as "backup".
	Op string
	// ExitCode of restic; -1 when it did not exit by itself.
	ExitCode int
	// Reason classifies the failure (one of the Reason constants).
	Reason string
	// Message is restic's own account of the failure, with secrets removed.
	Message string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("cannot run restic %s: %s (exit code %d)", e.Op, e.Reason, e.ExitCode)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Reason returns the reason of a failed run, ReasonResticFailed for an
// error that did not come from restic, and "" for nil.
func Reason(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Reason
	}
	return ReasonResticFailed
}

// Options say which restic to run against which repository.
type Options struct {
	// Binary is the restic executable.
	Binary string
	// Repository is the repository location, such as a bridge's
	// rest:http://... or a directory. Passed as RESTIC_REPOSITORY.
	Repository string
	// Password of the repository, passed as RESTIC_PASSWORD; or
	// PasswordFile, a file holding it, passed as RESTIC_PASSWORD_FILE.
	Password, PasswordFile string
	// CacheDir keeps restic's cache; empty runs without one.
	CacheDir string
	// Env adds variables to restic's otherwise minimal environment, such
	// as the keys of a native backend. Their values are removed from
	// errors.
	Env []string
	// ProgressFPS is how many progress messages a second restic sends
	// while it backs up or restores; 0 means restic's default.
	ProgressFPS float64
}

// Restic runs restic against one repository.
type Restic struct {
	opts    Options
	secrets []string
}

// New checks opts and returns a driver.
func New(opts Options) (*Restic, error) {
	if opts.Binary == "" {
		return nil, errors.New("cannot run restic: no binary given")
	}
	if _, err := os.Stat(opts.Binary); err != nil {
		return nil, fmt.Errorf("cannot find the restic binary: %w", err)
	}
	if opts.Repository == "" {
		return nil, errors.New("cannot run restic: no repository given")
	}
	if opts.Password == "" && opts.PasswordFile == "" {
		return nil, errors.New("cannot run restic: no repository password given")
	}
	r := &Restic{opts: opts}
	r.secrets = append(r.secrets, opts.Password)
	if u, err := url.Parse(strings.TrimPrefix(opts.Repository, "rest:")); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			r.secrets = append(r.secrets, p)
		}
	}
	for _, kv := range opts.Env {
		if _, v, _ := strings.Cut(kv, "="); len(v) >= 8 {
			r.secrets = append(r.secrets, v)
		}
	}
	return r, nil
}

// redact removes every secret from s.
func (r *Restic) redact(s string) string {
	for _, sec := range r.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// env is restic's environment: enough to run, nothing inherited that could
// change which repository or credentials it uses.
func (r *Restic) env() []string {
	env := []string{"RESTIC_REPOSITORY=" + r.opts.Repository}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if r.opts.Password != "" {
		env = append(env, "RESTIC_PASSWORD="+r.opts.Password)
	} else {
		env = append(env, "RESTIC_PASSWORD_FILE="+r.opts.PasswordFile)
	}
	if r.opts.ProgressFPS > 0 {
		env = append(env, fmt.Sprintf("RESTIC_PROGRESS_FPS=%g", r.opts.ProgressFPS))
	}
	return append(env, r.opts.Env...)
}

// maxStderr bounds what is kept of restic's standard error.
const maxStderr = 64 << 10

// run runs one restic command with --json, handing each line of standard
// output to onLine.
func (r *Restic) run(ctx context.Context, op string, args []string, onLine func([]byte)) error {
	return r.runStreams(ctx, op, args, streams{onLine: onLine})
}

// runIO is run with restic's standard input fed from stdin (when not nil)
// and, when raw is not nil, restic's standard output copied to raw
// instead of parsed as lines. A read error of stdin other than io.EOF
// interrupts restic before its input ends, so that a backup of standard
// input never records what was read up to the error; that error is
// returned, before restic's own.
func (r *Restic) runIO(ctx context.Context, op string, args []string, stdin io.Reader, onLine func([]byte), raw io.Writer) error {
	return r.runStreams(ctx, op, args, streams{stdin: stdin, onLine: onLine, raw: raw})
}

// streams say what a restic run reads and what is done with what it
// writes.
type streams struct {
	// stdin, when not nil, feeds restic's standard input (runIO).
	stdin io.Reader
	// gate, when not nil, holds restic's standard input open, and empty,
	// until it is closed; the input then ends. Not with stdin.
	gate <-chan struct{}
	// onLine takes each line of standard output, unless raw is set.
	onLine func([]byte)
	// onErrLine, when not nil, takes each line of standard error: with
	// --json, restic reports the problems it meets item by item there.
	onErrLine func([]byte)
	// raw, when not nil, receives standard output as it is.
	raw io.Writer
}

// runStreams runs one restic command with --json and the streams s.
func (r *Restic) runStreams(ctx context.Context, op string, args []string, s streams) error {
	if s.stdin != nil && s.gate != nil {
		return fmt.Errorf("cannot run restic %s: standard input is either fed or a gate", op)
	}
	stdin, onLine, onErrLine, raw := s.stdin, s.onLine, s.onErrLine, s.raw
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Global flags first: args may end in "--" and paths.
	all := []string{op, "--json", "--no-cache"}
	if r.opts.CacheDir != "" {
		all = []string{op, "--json", "--cache-dir", r.opts.CacheDir}
	}
	all = append(all, args...)
	cmd := exec.CommandContext(ctx, r.opts.Binary, all...)
	cmd.Env = r.env()
	// A gate is passed once: opened (its input ends empty) or, when the
	// run is stopped first, shut (restic reads a pattern it refuses and
	// fails there, before it reads the source; it removes its lock).
	var gateIn io.WriteCloser
	var gateOnce sync.Once
	var shut atomic.Bool
	openGate, shutGate := func() {}, func() {}
	if s.gate != nil {
		var err error
		if gateIn, err = cmd.StdinPipe(); err != nil {
			return fmt.Errorf("cannot run restic %s: %w", op, err)
		}
		openGate = func() { gateOnce.Do(func() { _ = gateIn.Close() }) }
		shutGate = func() {
			gateOnce.Do(func() {
				shut.Store(true)
				_, _ = io.WriteString(gateIn, gateShut)
				_ = gateIn.Close()
			})
		}
	}
	// Stopped by its context, restic gets an interrupt first, so that it
	// removes its lock, and is killed only if it does not exit; a run
	// abandoned (ErrAbandoned) is killed at once. A restic held at its
	// gate is not let through.
	cmd.Cancel = func() error {
		shutGate()
		if errors.Is(context.Cause(ctx), ErrAbandoned) {
			return cmd.Process.Kill()
		}
		return cmd.Process.Signal(syscall.SIGINT)
	}
	cmd.WaitDelay = 15 * time.Second
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if onErrLine != nil {
		lines := &lineWriter{onLine: onErrLine}
		defer lines.flush()
		cmd.Stderr = io.MultiWriter(&stderr, lines)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("cannot run restic %s: %w", op, err)
	}
	var in io.WriteCloser
	if stdin != nil {
		if in, err = cmd.StdinPipe(); err != nil {
			return fmt.Errorf("cannot run restic %s: %w", op, err)
		}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot run restic %s: %w", op, err)
	}
	if s.gate != nil {
		exited := make(chan struct{})
		defer close(exited)
		go func() {
			select {
			case <-s.gate:
			case <-exited:
			}
			openGate()
		}()
	}
	feeding := make(chan error, 1)
	if stdin != nil {
		go func() { feeding <- feed(in, stdin, cancel) }()
	} else {
		feeding <- nil
	}
	var copyErr error
	if raw != nil {
		if _, copyErr = io.Copy(raw, stdout); copyErr != nil {
			// What restic writes cannot be taken: stop it.
			cancel()
		}
	} else {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			if onLine != nil {
				onLine(sc.Bytes())
			}
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	if ferr := <-feeding; ferr != nil {
		return ferr
	}
	if copyErr != nil {
		return fmt.Errorf("cannot take what restic %s wrote: %w", op, copyErr)
	}
	if err == nil {
		return nil
	}
	code := -1
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	}
	reason, ok := reasonOfExit[code]
	if !ok {
		reason = ReasonResticFailed
	}
	msg := r.redact(stderrMessage(stderr.Bytes()))
	switch {
	case shut.Load() && ctx.Err() != nil:
		reason, msg = ReasonInterrupted, "stopped at its gate, before it read the source"
	case code == -1 && ctx.Err() != nil:
		reason = ReasonInterrupted
	}
	return &Error{Op: op, ExitCode: code, Reason: reason, Message: msg}
}

// feed copies src into restic's standard input. It closes the input only
// when src ended with io.EOF: on any other read error it interrupts restic
// first (cancel) and leaves the input open, so that restic never sees the
// end of a stream that failed and never records it as complete. A write
// error (restic exited) ends the copy; restic's own error tells why.
func feed(in io.WriteCloser, src io.Reader, cancel func()) error {
	buf := make([]byte, 256<<10)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := in.Write(buf[:n]); werr != nil {
				// restic stopped reading; drain nothing more from src.
				return nil
			}
		}
		switch {
		case errors.Is(rerr, io.EOF):
			return in.Close()
		case rerr != nil:
			cancel()
			return rerr
		}
	}
}

// stderrMessage finds restic's exit message in its standard error: the
// exit_error record of --json, followed by the first few item errors
// (such as a blob that failed to decrypt, naming its pack), else the last
// non-empty lines.
func stderrMessage(b []byte) string {
	var last, items []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var m struct {
			MessageType string `json:"message_type"`
			Message     string `json:"message"`
			Error       struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(line, &m) == nil {
			switch {
			case m.MessageType == "exit_error" && len(items) > 0:
				return strings.TrimSpace(m.Message) + ": " + strings.Join(items, "; ")
			case m.MessageType == "exit_error":
				return strings.TrimSpace(m.Message)
			case m.MessageType == "error" && m.Error.Message != "" && len(items) < 3 && !slices.Contains(items, m.Error.Message):
				items = append(items, m.Error.Message)
				continue
			}
		}
		last = append(last, string(line))
	}
	if len(last) > 3 {
		last = last[len(last)-3:]
	}
	return strings.Join(last, "; ")
}

// lineWriter hands each complete line written to it to onLine.
type lineWriter struct {
	onLine  func([]byte)
	partial []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.onLine(l.partial[:i])
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > maxStderr {
		// A line this long is nothing restic reports item by item.
		l.partial = l.partial[:0]
	}
	return len(p), nil
}

// flush hands on a last line that did not end in a newline.
func (l *lineWriter) flush() {
	if len(l.partial) > 0 {
		l.onLine(l.partial)
		l.partial = nil
	}
}

// tailBuffer keeps the last maxStderr bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > maxStderr {
		t.b = t.b[len(t.b)-maxStderr:]
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte { return t.b }

// Init creates the repository.
func (r *Restic) Init(ctx context.Context) error {
	return r.run(ctx, "init", nil, nil)
}

// Unlock removes stale locks; all also removes locks of live processes.
func (r *Restic) Unlock(ctx context.Context, all bool) error {
	var args []string
	if all {
		args = append(args, "--remove-all")
	}
	return r.run(ctx, "unlock", args, nil)
}

// Lock is a lock on a repository, as `restic cat lock` shows it: restic
// records the host (a pod's name, in a pod) and process that took it.
type Lock struct {
	// ID names the lock's file, locks/<ID>.
	ID        string    `json:"-"`
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Hostname  string    `json:"hostname"`
	PID       int       `json:"pid"`
}

// Locks lists the repository's locks without taking one. A lock that
// cannot be read (its run ended and removed it meanwhile) is left out.
func (r *Restic) Locks(ctx context.Context) ([]Lock, error) {
	var ids []string
	if err := r.run(ctx, "list", []string{"--no-lock", "locks"}, func(line []byte) {
		if id := strings.TrimSpace(string(line)); id != "" {
			ids = append(ids, id)
		}
	}); err != nil {
		return nil, err
	}
	var out []Lock
	for _, id := range ids {
		var buf bytes.Buffer
		if err := r.run(ctx, "cat", []string{"--no-lock", "lock", id}, func(line []byte) {
			buf.Write(line)
			buf.WriteByte('\n')
		}); err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			continue
		}
		l := Lock{ID: id}
		if err := json.Unmarshal(buf.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("cannot read restic lock %q: %w", id, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// Prune removes the data no snapshot references any more, under restic's
// exclusive lock, which it takes itself: it fails with
// ReasonRepositoryLocked while a backup or another prune holds a lock.
func (r *Restic) Prune(ctx context.Context) error {
	return r.run(ctx, "prune", nil, nil)
}
