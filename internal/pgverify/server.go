package pgverify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stashplane/stashplane/internal/pgdump"
)

// DefaultBinDir is where Debian's postgresql-15 package puts the server
// and client programs.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// BinDir finds PostgreSQL's programs: dir when given, else the tree
// extracted beside the running binary (bin/postgres on the dev cluster),
// else DefaultBinDir.
func BinDir(dir string) string {
	if dir != "" {
		return dir
	}
	if exe, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(exe), "postgres", DefaultBinDir)
		if _, err := os.Stat(filepath.Join(beside, "postgres")); err == nil {
			return beside
		}
	}
	return DefaultBinDir
}

// User is who PostgreSQL runs as. PostgreSQL refuses to run as root, so
// when this process is root the server is started as UID and GID, and the
// files it works on are given to them.
type User struct {
	UID, GID uint32
}

// chown gives path to u when this process is root.
func (u User) chown(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, int(u.UID), int(u.GID))
}

// Server is a PostgreSQL server started on a data directory, listening
// only on a Unix socket in a private directory.
type Server struct {
	bin    string
	socket string
	cmd    *exec.Cmd
	log    *tailBuffer
	exited chan struct{}
	err    error
}

// Error is a check that could not be made. Its message is one short line
// that says what went wrong without quoting the server's log or psql's
// output, which may hold row values or settings; Detail keeps those for a
// debug run.
type Error struct {
	Msg    string
	Detail string
}

func (e *Error) Error() string { return e.Msg }

// overrides are the settings Start forces over the restored configuration:
// nothing that reaches outside the Job (no TCP listener, no archiving, no
// WAL fetched by a shell command or streamed from a primary, no
// replication slot) and nothing the verifier lacks (no preloaded
// libraries, no SSL files, no log collector).
var overrides = []string{
	"listen_addresses=",
	"archive_mode=off",
	"archive_command=",
	"restore_command=",
	"primary_conninfo=",
	"primary_slot_name=",
	"shared_preload_libraries=",
	"session_preload_libraries=",
	"local_preload_libraries=",
	"logging_collector=off",
	"ssl=off",
}

// Start runs postgres on dataDir with its socket in socketDir, which it
// makes. The restored configuration is kept except the overrides, and an
// hba file that trusts local connections on the private socket replaces
// the restored one. Without the standby.signal or recovery.signal that
// CopyDataDir leaves out, a copy of a replica starts as a primary after
// crash recovery.
func Start(ctx context.Context, bin, dataDir, socketDir string, u User) (*Server, error) {
	if err := os.MkdirAll(socketDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot make socket directory %q: %w", socketDir, err)
	}
	if err := u.chown(socketDir); err != nil {
		return nil, fmt.Errorf("cannot hand socket directory %q to the server's user: %w", socketDir, err)
	}
	hba := filepath.Join(socketDir, "pg_hba.conf")
	if err := os.WriteFile(hba, []byte("local all all trust\n"), 0o600); err != nil {
		return nil, fmt.Errorf("cannot write %q: %w", hba, err)
	}
	if err := u.chown(hba); err != nil {
		return nil, fmt.Errorf("cannot hand %q to the server's user: %w", hba, err)
	}
	s := &Server{bin: bin, socket: socketDir, log: &tailBuffer{max: 4 << 10}, exited: make(chan struct{})}
	args := []string{"-D", dataDir, "-c", "unix_socket_directories=" + socketDir, "-c", "hba_file=" + hba}
	for _, o := range overrides {
		args = append(args, "-c", o)
	}
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = sysProcAttr(u)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start postgres: %w", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

// Ready waits until the server accepts connections to database, or fails
// when it exits first or ctx ends. A restored data directory may need
// crash recovery first, which this waits for.
func (s *Server) Ready(ctx context.Context, database, user string) error {
	for {
		cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "pg_isready"), "-q", "-h", s.socket, "-d", database, "-U", user)
		if cmd.Run() == nil {
			return nil
		}
		select {
		case <-s.exited:
			return &Error{Msg: fmt.Sprintf("cannot start postgres on the restored data: it exited (%v) while starting", s.err), Detail: s.log.String()}
		case <-ctx.Done():
			return &Error{Msg: fmt.Sprintf("cannot reach postgres: it did not accept connections (%v)", ctx.Err()), Detail: s.log.String()}
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Exec runs sql with psql and returns what it printed, unaligned and
// without headers. ON_ERROR_STOP makes any SQL error fail it; the error
// names the SQLSTATE and its class, and keeps psql's message, which may
// quote values, as its Detail.
func (s *Server) Exec(ctx context.Context, database, user, sql string) (string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "psql"), "-X", "-q", "-A", "-t",
		"-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-F", fieldSep, "-R", recordSep,
		"-h", s.socket, "-d", database, "-U", user, "-c", sql)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		detail := strings.TrimSpace(stderr.String())
		if code := pgdump.SQLState(detail); code != "" {
			return "", &Error{Msg: fmt.Sprintf("cannot run the query: SQLSTATE %s (%s)", code, pgdump.SQLStateClass(code)), Detail: detail}
		}
		return "", &Error{Msg: fmt.Sprintf("cannot run the query: psql failed (%v)", err), Detail: detail}
	}
	return out.String(), nil
}

// Stop shuts the server down (fast shutdown: sessions are ended, the data
// is flushed) and waits for it, killing it after timeout.
func (s *Server) Stop(timeout time.Duration) error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("cannot stop postgres: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("cannot stop postgres: it did not stop within %s and was killed", timeout)
	}
}

// Log is the end of what the server printed.
func (s *Server) Log() string { return s.log.String() }

// Separators psql prints between fields and records, chosen so that no
// value a query returns is split by mistake.
const (
	fieldSep  = "\x1f"
	recordSep = "\x1e"
)

// SingleValue reads the one value a query printed. A verifier query must
// return exactly one row of one column.
func SingleValue(out string) (string, error) {
	out = strings.TrimSuffix(strings.TrimSuffix(out, "\n"), recordSep)
	if out == "" {
		return "", errors.New("cannot use the query's result: it returned no rows, not exactly one value")
	}
	rows := strings.Split(out, recordSep)
	if len(rows) != 1 {
		return "", fmt.Errorf("cannot use the query's result: it returned %d rows, not exactly one value", len(rows))
	}
	if cols := strings.Split(rows[0], fieldSep); len(cols) != 1 {
		return "", fmt.Errorf("cannot use the query's result: it returned %d columns, not exactly one value", len(cols))
	}
	return rows[0], nil
}

// CopyDataDir copies a data directory to dst, which must not exist, for
// the server to run on: the restored files stay as they were, and the copy
// is owned by u with the modes PostgreSQL demands (0700 directories). A
// postmaster.pid left by a server that was running during the backup is
// not copied, nor are standby.signal and recovery.signal: the copy of a
// replica's (or of a server in archive recovery's) data directory is
// checked as a primary after crash recovery, never as a standby that
// fetches WAL from elsewhere. A missing postgresql.conf (Debian keeps it in /etc) is
// written empty so that the defaults apply.
func CopyDataDir(src, dst string, u User) error {
	if _, err := os.Stat(filepath.Join(src, "PG_VERSION")); err != nil {
		return fmt.Errorf("cannot find a PostgreSQL data directory at %q: %w", src, err)
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case rel == "postmaster.pid" || rel == "standby.signal" || rel == "recovery.signal":
			return nil
		case d.IsDir():
			if err := os.Mkdir(to, 0o700); err != nil {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
		case d.Type().IsRegular():
			if err := copyFile(p, to); err != nil {
				return err
			}
		default:
			return nil
		}
		return u.chown(to)
	})
	if err != nil {
		return fmt.Errorf("cannot copy data directory %q: %w", src, err)
	}
	conf := filepath.Join(dst, "postgresql.conf")
	if _, err := os.Stat(conf); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(conf, nil, 0o600); err != nil {
			return fmt.Errorf("cannot write %q: %w", conf, err)
		}
		if err := u.chown(conf); err != nil {
			return fmt.Errorf("cannot hand %q to the server's user: %w", conf, err)
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close() //nolint:errcheck // read-only
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
