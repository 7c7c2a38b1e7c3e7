// Package pgdump streams logical dumps out of a running PostgreSQL
// (pg_dumpall, or pg_dump of named databases) and loads them into one
// with psql, with PostgreSQL 15's client programs. The password reaches
// the programs in their environment only (PGPASSWORD), never their
// arguments, and is removed from every error. Errors carry a reason a
// component can show: the credentials refused, the server unreachable, a
// database missing, or the dump or load failed.
package pgdump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Reasons a dump or a load fails.
const (
	// ReasonAuthFailed: the server refused the Secret's user or password.
	ReasonAuthFailed = "DatabaseAuthFailed"
	// ReasonUnreachable: no server answered at the host and port.
	ReasonUnreachable = "DatabaseUnreachable"
	// ReasonDatabaseNotFound: a database the task names does not exist.
	ReasonDatabaseNotFound = "DatabaseNotFound"
	// ReasonCredentialsUnreadable: the Secret's files cannot be read.
	ReasonCredentialsUnreadable = "DatabaseCredentialsUnreadable"
	// ReasonDumpFailed: the dump program failed for another reason, or
	// stopped half way; nothing it wrote is kept.
	ReasonDumpFailed = "DumpFailed"
	// ReasonLoadFailed: psql stopped at an SQL error of the dump.
	ReasonLoadFailed = "LoadFailed"
	// ReasonDumpRefused: the dump's command, databases or options cannot
	// be carried out as given; nothing ran.
	ReasonDumpRefused = "DumpRefused"
)

// Error is a failed dump or load: a reason and one line free of the
// password.
type Error struct {
	Reason string
	Msg    string
}

func (e *Error) Error() string { return e.Reason + ": " + e.Msg }

// FailureReason is the reason and message a component shows.
func (e *Error) FailureReason() (string, string) { return e.Reason, e.Msg }

// Dump programs.
const (
	CommandDumpAll = "pg_dumpall"
	CommandDump    = "pg_dump"
)

// Conn says how to reach a running PostgreSQL.
type Conn struct {
	// BinDir holds pg_dump, pg_dumpall and psql.
	BinDir string
	// Host is a Service's name, a host name, an address, or a directory
	// holding the server's Unix socket.
	Host string
	// Port of the server.
	Port int
	// User and Password to connect with. Password may be empty (trust or
	// peer authentication).
	User, Password string
	// ConnectTimeout bounds each connection attempt.
	ConnectTimeout time.Duration
	// Wait is how long a dump or load waits for the server to accept
	// connections before its first connection (WaitReady); zero waits
	// not at all.
	Wait time.Duration
}

// ReadAuth reads the user and password from a mounted Secret's files,
// named as KubeDB's and KubeStash's auth Secrets name them: "username" and
// "password".
func ReadAuth(dir string) (user, password string, err error) {
	u, err := os.ReadFile(filepath.Join(dir, "username"))
	if err != nil {
		return "", "", &Error{Reason: ReasonCredentialsUnreadable, Msg: fmt.Sprintf("cannot read the database user: the Secret mounted at %q has no readable key \"username\"", dir)}
	}
	p, err := os.ReadFile(filepath.Join(dir, "password"))
	if err != nil {
		return "", "", &Error{Reason: ReasonCredentialsUnreadable, Msg: fmt.Sprintf("cannot read the database password: the Secret mounted at %q has no readable key \"password\"", dir)}
	}
	return strings.TrimRight(string(u), "\r\n"), strings.TrimRight(string(p), "\r\n"), nil
}

// env is a client program's environment: where the server is and who
// connects, with nothing inherited that could redirect it.
func (c Conn) env() []string {
	env := []string{"PGHOST=" + c.Host, "PGPORT=" + strconv.Itoa(c.Port), "PGUSER=" + c.User,
		"PGAPPNAME=stashplane", "LC_ALL=C", "PGCLIENTENCODING=UTF8"}
	if c.Password != "" {
		env = append(env, "PGPASSWORD="+c.Password)
	}
	t := c.ConnectTimeout
	if t <= 0 {
		t = 15 * time.Second
	}
	env = append(env, fmt.Sprintf("PGCONNECT_TIMEOUT=%d", int(t.Seconds())))
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (c Conn) redact(s string) string {
	if len(c.Password) >= 3 {
		s = strings.ReplaceAll(s, c.Password, "[redacted]")
	}
	return s
}

func (c Conn) where() string {
	if strings.HasPrefix(c.Host, "/") {
		return fmt.Sprintf("the socket in %q", c.Host)
	}
	return fmt.Sprintf("%s:%d", c.Host, c.Port)
}

// classify turns a client program's failure into an Error from what it
// printed (the C locale's messages).
func (c Conn) classify(program string, err error, stderr string) *Error {
	low := strings.ToLower(stderr)
	switch {
	case strings.Contains(low, "password authentication failed"), strings.Contains(low, "no password supplied"),
		strings.Contains(low, "authentication failed for user"), strings.Contains(low, "no pg_hba.conf entry"),
		strings.Contains(low, `fatal:  role "`) && strings.Contains(low, "does not exist"):
		return &Error{Reason: ReasonAuthFailed, Msg: fmt.Sprintf("PostgreSQL at %s refused user %q: check the user and password of the task's auth Secret", c.where(), c.User)}
	case strings.Contains(low, "could not translate host name"), strings.Contains(low, "connection refused"),
		strings.Contains(low, "timeout expired"), strings.Contains(low, "no route to host"),
		strings.Contains(low, "network is unreachable"), strings.Contains(low, "no such file or directory") && strings.Contains(low, "connection to server"),
		// A Service without a ready endpoint takes the connection and
		// closes it before the server's greeting.
		strings.Contains(low, "connection to server") && strings.Contains(low, "failed: server closed the connection unexpectedly"):
		return &Error{Reason: ReasonUnreachable, Msg: fmt.Sprintf("cannot reach PostgreSQL at %s: check the task's host (a Service of the namespace) and port", c.where())}
	}
	if db := missingDatabase(stderr); db != "" {
		return &Error{Reason: ReasonDatabaseNotFound, Msg: fmt.Sprintf("database %q does not exist on PostgreSQL at %s", db, c.where())}
	}
	msg := fmt.Sprintf("%s failed (%v)", program, err)
	if line := errorLine(stderr); line != "" {
		msg += ": " + line
	}
	msg = c.redact(msg)
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	return &Error{Reason: ReasonDumpFailed, Msg: msg}
}

// missingDatabase is the database a "database "x" does not exist" message
// names, or "".
func missingDatabase(stderr string) string {
	const mark = `database "`
	for _, line := range strings.Split(stderr, "\n") {
		i := strings.Index(line, mark)
		if i < 0 || !strings.Contains(line, "does not exist") {
			continue
		}
		rest := line[i+len(mark):]
		if j := strings.Index(rest, `" does not exist`); j >= 0 {
			return rest[:j]
		}
	}
	return ""
}

// errorLine is the first line of a client program's output that says
// "error:", without the program's name.
func errorLine(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		if _, after, ok := strings.Cut(line, "error: "); ok {
			return strings.TrimSpace(after)
		}
	}
	return strings.TrimSpace(strings.SplitN(strings.TrimSpace(stderr), "\n", 2)[0])
}

// Dump is one logical dump of a running server.
type Dump struct {
	Conn Conn
	// Command is CommandDumpAll (every database, with roles and
	// tablespaces) or CommandDump (each of Databases, with --create so
	// that a load makes the database again).
	Command string
	// Databases are dumped one after another into the one stream
	// (CommandDump only).
	Databases []string
	// Args are more options of the dump program.
	Args []string
}

// Validate checks a dump's command, databases and options.
func (d Dump) Validate() error {
	switch d.Command {
	case CommandDumpAll:
		if len(d.Databases) > 0 {
			return errors.New("cannot dump: pg_dumpall dumps every database; name databases with pg_dump")
		}
	case CommandDump:
		if len(d.Databases) == 0 {
			return errors.New("cannot dump: pg_dump needs at least one database")
		}
	default:
		return fmt.Errorf("cannot dump: command %q is neither pg_dumpall nor pg_dump", d.Command)
	}
	for _, a := range d.Args {
		if err := checkArg(a); err != nil {
			return err
		}
	}
	return nil
}

// refusedOptions would write the dump elsewhere than the stream, in
// another format than the plain SQL psql loads, or ask for a password on
// a terminal.
var refusedOptions = []string{"-f", "--file", "-F", "--format", "-j", "--jobs", "-W", "--password", "-d", "--dbname", "-l", "--database", "-h", "--host", "-p", "--port", "-U", "--username"}

func checkArg(a string) error {
	if !strings.HasPrefix(a, "-") {
		return fmt.Errorf("cannot dump: argument %q is not an option (name databases in databases)", a)
	}
	name, _, _ := strings.Cut(a, "=")
	for _, r := range refusedOptions {
		if name == r || (len(r) == 2 && strings.HasPrefix(a, r)) {
			return fmt.Errorf("cannot dump: option %q is refused: the dump is streamed as plain SQL to the backup, and the connection comes from the task's host, port and auth Secret", a)
		}
	}
	return nil
}

// argv is each program run of the dump, in order.
func (d Dump) argv() [][]string {
	bin := filepath.Join(d.Conn.BinDir, d.Command)
	if d.Command == CommandDumpAll {
		return [][]string{append([]string{bin, "--no-password"}, d.Args...)}
	}
	var out [][]string
	for _, db := range d.Databases {
		a := append([]string{bin, "--no-password", "--create", "--format=plain"}, d.Args...)
		out = append(out, append(a, "--dbname="+db))
	}
	return out
}

// Open starts the dump and returns its output. Reading gives io.EOF only
// after every dump program has exited with status 0; a program that
// failed, at any point of its output, makes the read fail with an *Error
// instead, so that what it wrote so far is never taken for a whole dump.
// Close stops what still runs.
func (d Dump) Open(ctx context.Context) (io.ReadCloser, error) {
	if err := d.Validate(); err != nil {
		return nil, &Error{Reason: ReasonDumpRefused, Msg: err.Error()}
	}
	if err := d.Conn.WaitReady(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &stream{ctx: ctx, cancel: cancel, conn: d.Conn, runs: d.argv()}
	if err := s.next(); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// stream reads the dump programs' outputs one after another.
type stream struct {
	ctx    context.Context
	cancel context.CancelFunc
	conn   Conn
	runs   [][]string

	mu     sync.Mutex
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr *tail
}

func (s *stream) next() error {
	argv := s.runs[0]
	s.runs = s.runs[1:]
	cmd := exec.CommandContext(s.ctx, argv[0], argv[1:]...)
	cmd.Env = s.conn.env()
	cmd.SysProcAttr = childAttr()
	s.stderr = &tail{max: 16 << 10}
	cmd.Stderr = s.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("cannot run %s: %w", filepath.Base(argv[0]), err)
	}
	if err := cmd.Start(); err != nil {
		return &Error{Reason: ReasonDumpFailed, Msg: fmt.Sprintf("cannot run %s: %v", filepath.Base(argv[0]), err)}
	}
	s.mu.Lock()
	s.cmd, s.out = cmd, out
	s.mu.Unlock()
	return nil
}

func (s *stream) Read(p []byte) (int, error) {
	for {
		n, err := s.out.Read(p)
		if n > 0 || !errors.Is(err, io.EOF) {
			if err != nil && !errors.Is(err, io.EOF) {
				return n, s.fail(err)
			}
			return n, nil
		}
		// This program's output ended: it must have succeeded.
		if werr := s.cmd.Wait(); werr != nil {
			return 0, s.fail(werr)
		}
		if len(s.runs) == 0 {
			return 0, io.EOF
		}
		if err := s.next(); err != nil {
			return 0, err
		}
	}
}

// fail is the error of the running program, once it has exited.
func (s *stream) fail(err error) error {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Wait()
	}
	if s.ctx.Err() != nil {
		return &Error{Reason: ReasonDumpFailed, Msg: fmt.Sprintf("%s was stopped before it finished", filepath.Base(s.cmd.Path))}
	}
	return s.conn.classify(filepath.Base(s.cmd.Path), err, s.stderr.String())
}

func (s *stream) Close() error {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && s.cmd.ProcessState == nil {
		_ = s.out.Close()
		_ = s.cmd.Wait()
	}
	return nil
}

// tail keeps the end of what a program printed.
type tail struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
