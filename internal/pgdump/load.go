package pgdump

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
)

// Load runs the plain SQL dump r through psql into the server (once it
// accepts connections, waiting up to c.Wait), connected
// to database (the dump's \connect lines move on to the others). psql
// stops at the first SQL error (ON_ERROR_STOP), and the error names the
// dump's line and the SQLSTATE, never psql's message, which may quote
// values. The one statement pg_dumpall writes that always fails on a
// live server, CREATE ROLE of the user Load connects as (who exists
// already), is left out; that user's ALTER ROLE still applies.
func Load(ctx context.Context, c Conn, database string, r io.Reader) error {
	if err := c.WaitReady(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, "psql"), "-X", "-q", "--no-password",
		"-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "--dbname="+database, "-f", "-")
	cmd.Env = c.env()
	cmd.SysProcAttr = childAttr()
	stderr := &tail{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("cannot run psql: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return &Error{Reason: ReasonLoadFailed, Msg: fmt.Sprintf("cannot run psql: %v", err)}
	}
	src := &sourceReader{r: r}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		// A write error means psql stopped reading: its own exit says why.
		_, _ = io.Copy(in, &roleFilter{r: bufio.NewReaderSize(src, 64<<10), user: c.User})
		if src.err != nil {
			// A dump that broke off is not ended: psql is killed before
			// it could take the end of its input for the dump's end.
			cancel()
			return
		}
		_ = in.Close()
	}()
	werr := cmd.Wait()
	<-copied
	// What reading the dump met (a failed restore stream, say) comes first.
	if src.err != nil {
		return src.err
	}
	if werr == nil {
		return nil
	}
	out := stderr.String()
	var exit *exec.ExitError
	if errors.As(werr, &exit) && exit.ExitCode() == 2 {
		// psql's connection failed.
		return c.classify("psql", werr, out)
	}
	if db := missingDatabase(out); db != "" && strings.Contains(out, "connection to server") {
		return &Error{Reason: ReasonDatabaseNotFound, Msg: fmt.Sprintf("database %q does not exist on PostgreSQL at %s", db, c.where())}
	}
	if code := SQLState(out); code != "" {
		msg := fmt.Sprintf("psql stopped at an error of the dump: SQLSTATE %s (%s)", code, SQLStateClass(code))
		if line := dumpLine(out); line != "" {
			msg += " at line " + line
		}
		return &Error{Reason: ReasonLoadFailed, Msg: msg}
	}
	return c.classify("psql", werr, out)
}

// sourceReader keeps the first read error of the dump other than io.EOF.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && s.err == nil {
		s.err = err
	}
	return n, err
}

// dumpLine is the line of the dump psql names in "psql:<stdin>:LINE: ERROR".
func dumpLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(l, "psql:<stdin>:")
		if !ok {
			continue
		}
		if n, _, ok := strings.Cut(rest, ":"); ok {
			return n
		}
	}
	return ""
}

// roleFilter passes a dump through, leaving out "CREATE ROLE <user>;" in
// its globals, before the first \connect (pg_dumpall writes the roles
// first; no table data comes before a \connect).
type roleFilter struct {
	r       *bufio.Reader
	user    string
	pending []byte
	past    bool
}

func (f *roleFilter) Read(p []byte) (int, error) {
	for len(f.pending) == 0 {
		if f.past {
			return f.r.Read(p)
		}
		line, err := f.r.ReadBytes('\n')
		if bytes.HasPrefix(line, []byte(`\connect`)) {
			f.past = true
		}
		if !f.past && f.user != "" && isCreateRole(string(line), f.user) {
			line = nil
		}
		f.pending = line
		if err != nil {
			if len(f.pending) > 0 {
				break
			}
			return 0, err
		}
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

// isCreateRole says whether line is pg_dumpall's CREATE ROLE of user,
// quoted as pg_dumpall quotes identifiers that need it.
func isCreateRole(line, user string) bool {
	line = strings.TrimRight(line, "\r\n")
	quoted := `"` + strings.ReplaceAll(user, `"`, `""`) + `"`
	return line == "CREATE ROLE "+user+";" || line == "CREATE ROLE "+quoted+";"
}
