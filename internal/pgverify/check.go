package pgverify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Check is one query verification of a restored data directory.
type Check struct {
	// BinDir holds postgres, pg_isready and psql.
	BinDir string
	// DataDir is the restored data directory; it is only read.
	DataDir string
	// WorkDir is an empty scratch directory for the copy and the socket.
	WorkDir string
	// Database and User the query runs as.
	Database, User string
	// SQL must return one row of one column.
	SQL string
	// Operator and Value: the check passes when the value the query
	// returns stands in this relation to Value.
	Operator, Value string
	// RunAs is the user the server runs as when this process is root.
	RunAs User
	// StartTimeout bounds the server's start, crash recovery included.
	StartTimeout time.Duration
}

// Result is what a check found.
type Result struct {
	// Value the query returned.
	Value string
	// Passed is true when Value stands in the Operator's relation to the
	// expected value.
	Passed bool
}

// String is the one line a verifier prints as its result.
func (c Check) String(r Result) string {
	if r.Passed {
		return fmt.Sprintf("query returned %q, which is %s %q", r.Value, c.Operator, c.Value)
	}
	return fmt.Sprintf("query returned %q, which is not %s %q", r.Value, c.Operator, c.Value)
}

// Run copies the data directory, starts PostgreSQL on the copy, runs the
// query, compares its value and stops the server. An error means the check
// could not be made (the server did not start, the query failed or
// returned other than one value); a value that fails the comparison is a
// Result with Passed false.
func (c Check) Run(ctx context.Context) (Result, error) {
	if _, err := Compare("0", c.Operator, "0"); err != nil {
		return Result{}, err
	}
	data := filepath.Join(c.WorkDir, "pgdata")
	if err := c.RunAs.chown(c.WorkDir); err != nil {
		return Result{}, fmt.Errorf("cannot hand %q to the server's user: %w", c.WorkDir, err)
	}
	if err := CopyDataDir(c.DataDir, data, c.RunAs); err != nil {
		return Result{}, err
	}
	s, err := Start(ctx, c.BinDir, data, filepath.Join(c.WorkDir, "socket"), c.RunAs)
	if err != nil {
		return Result{}, err
	}
	stop := func() error { return s.Stop(time.Minute) }
	rctx, cancel := context.WithTimeout(ctx, c.StartTimeout)
	defer cancel()
	if err := s.Ready(rctx, c.Database, c.User); err != nil {
		return Result{}, errors.Join(err, stop())
	}
	out, err := s.Exec(ctx, c.Database, c.User, c.SQL)
	if err != nil {
		return Result{}, errors.Join(err, stop())
	}
	if err := stop(); err != nil {
		return Result{}, err
	}
	v, err := SingleValue(out)
	if err != nil {
		return Result{}, err
	}
	ok, err := Compare(v, c.Operator, c.Value)
	if err != nil {
		return Result{Value: v}, err
	}
	return Result{Value: v, Passed: ok}, nil
}

// InitDB makes a new data directory at dir, owned by u, with a superuser
// named user and trust authentication on local connections.
func InitDB(ctx context.Context, bin, dir, user string, u User) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot make data directory %q: %w", dir, err)
	}
	if err := u.chown(dir); err != nil {
		return fmt.Errorf("cannot hand %q to the server's user: %w", dir, err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", dir, "-U", user, "--auth=trust", "--no-sync")
	cmd.SysProcAttr = sysProcAttr(u)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cannot run initdb in %q: %w: %s", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}
