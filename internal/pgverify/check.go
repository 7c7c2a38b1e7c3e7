package pgverify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stashplane/stashplane/internal/pgdump"
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
	// DumpFile, when set, is a plain SQL dump (the postgres-addon's
	// dumpfile.sql) loaded with psql into a new, empty server made for
	// the check, instead of starting a server on DataDir.
	DumpFile string
	// SQL must return one row of one column; empty runs no free-form
	// query (Tables must then hold a check).
	SQL string
	// Operator and Value: the check passes when the value the query
	// returns stands in this relation to Value.
	Operator, Value string
	// Tables are row counts to check, KubeStash's structured query.
	Tables []TableCheck
	// RunAs is the user the server runs as when this process is root.
	RunAs User
	// StartTimeout bounds the server's start, crash recovery included.
	StartTimeout time.Duration
}

// TableCheck is one row count of KubeStash's structured query
// (query.postgres[]): the rows of database.schema.table stand in the
// operator's relation to value.
type TableCheck struct {
	Database string        `json:"database,omitempty"`
	Schema   string        `json:"schema,omitempty"`
	Table    string        `json:"table"`
	RowCount RowCountCheck `json:"rowCount"`
}

// RowCountCheck is the expected row count of a TableCheck.
type RowCountCheck struct {
	Operator string `json:"operator,omitempty"`
	Value    int64  `json:"value"`
}

// name is database.schema.table, with the defaults applied.
func (t TableCheck) name() string { return t.database() + "." + t.schema() + "." + t.Table }

func (t TableCheck) database() string {
	if t.Database == "" {
		return "postgres"
	}
	return t.Database
}

func (t TableCheck) schema() string {
	if t.Schema == "" {
		return "public"
	}
	return t.Schema
}

func (t TableCheck) operator() string {
	if t.RowCount.Operator == "" {
		return "Equal"
	}
	return t.RowCount.Operator
}

// sql counts the table's rows, its names quoted as identifiers.
func (t TableCheck) sql() string {
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	return "select count(*) from " + quote(t.schema()) + "." + quote(t.Table)
}

// Result is what a check found.
type Result struct {
	// Value the query returned.
	Value string
	// Passed is true when Value stands in the Operator's relation to the
	// expected value, and every table check passed.
	Passed bool
	// Tables are the row counts found, one per TableCheck, in order.
	Tables []int64
}

// String is the one line a verifier prints as its result.
func (c Check) String(r Result) string {
	var parts []string
	if c.SQL != "" {
		ok, _ := Compare(r.Value, c.Operator, c.Value)
		not := "not "
		if ok {
			not = ""
		}
		parts = append(parts, fmt.Sprintf("query returned %q, which is %s%s %q", r.Value, not, c.Operator, c.Value))
	}
	for i, t := range c.Tables {
		if i >= len(r.Tables) {
			break
		}
		got := strconv.FormatInt(r.Tables[i], 10)
		ok, _ := Compare(got, t.operator(), strconv.FormatInt(t.RowCount.Value, 10))
		not := "not "
		if ok {
			not = ""
		}
		parts = append(parts, fmt.Sprintf("%s has %s rows, %s%s %d", t.name(), got, not, t.operator(), t.RowCount.Value))
	}
	return strings.Join(parts, "; ")
}

// Run copies the data directory, starts PostgreSQL on the copy, runs the
// query, compares its value and stops the server. An error means the check
// could not be made (the server did not start, the query failed or
// returned other than one value); a value that fails the comparison is a
// Result with Passed false.
func (c Check) Run(ctx context.Context) (Result, error) {
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	data := filepath.Join(c.WorkDir, "pgdata")
	if err := c.RunAs.chown(c.WorkDir); err != nil {
		return Result{}, fmt.Errorf("cannot hand %q to the server's user: %w", c.WorkDir, err)
	}
	first := c.Database
	if c.DumpFile != "" {
		if err := InitDB(ctx, c.BinDir, data, c.User, c.RunAs); err != nil {
			return Result{}, err
		}
		// A new server has only postgres until the dump is loaded.
		first = "postgres"
	} else if err := CopyDataDir(c.DataDir, data, c.RunAs); err != nil {
		return Result{}, err
	}
	socket := filepath.Join(c.WorkDir, "socket")
	s, err := Start(ctx, c.BinDir, data, socket, c.RunAs)
	if err != nil {
		return Result{}, err
	}
	stop := func() error { return s.Stop(time.Minute) }
	rctx, cancel := context.WithTimeout(ctx, c.StartTimeout)
	defer cancel()
	if err := s.Ready(rctx, first, c.User); err != nil {
		return Result{}, errors.Join(err, stop())
	}
	if c.DumpFile != "" {
		if err := c.load(ctx, socket); err != nil {
			return Result{}, errors.Join(err, stop())
		}
	}
	r, err := c.query(ctx, s)
	if serr := stop(); err == nil {
		err = serr
	}
	return r, err
}

// validate checks the operators and that there is something to check.
func (c Check) validate() error {
	if c.SQL == "" && len(c.Tables) == 0 {
		return errors.New("cannot verify: give a query (sql) or a table's row count")
	}
	if c.SQL != "" {
		if _, err := Compare("0", c.Operator, "0"); err != nil {
			return err
		}
	}
	for _, t := range c.Tables {
		if t.Table == "" {
			return errors.New("cannot verify: a row count names no table")
		}
		if _, err := Compare("0", t.operator(), "0"); err != nil {
			return err
		}
	}
	return nil
}

// load runs the dump through psql into the new server.
func (c Check) load(ctx context.Context, socket string) error {
	f, err := os.Open(c.DumpFile)
	if err != nil {
		return fmt.Errorf("cannot open the restored dump: %w", err)
	}
	defer f.Close()
	conn := pgdump.Conn{BinDir: c.BinDir, Host: socket, Port: 5432, User: c.User}
	if err := pgdump.Load(ctx, conn, "postgres", f); err != nil {
		return &Error{Msg: "cannot load the restored dump into the scratch server: " + err.Error()}
	}
	return nil
}

// query runs the free-form query and the row counts and compares them.
func (c Check) query(ctx context.Context, s *Server) (Result, error) {
	r := Result{}
	passed := true
	if c.SQL != "" {
		out, err := s.Exec(ctx, c.Database, c.User, c.SQL)
		if err != nil {
			return r, err
		}
		v, err := SingleValue(out)
		if err != nil {
			return r, err
		}
		ok, err := Compare(v, c.Operator, c.Value)
		if err != nil {
			return Result{Value: v}, err
		}
		r.Value, passed = v, ok
	}
	for _, t := range c.Tables {
		out, err := s.Exec(ctx, t.database(), c.User, t.sql())
		if err != nil {
			return r, err
		}
		v, err := SingleValue(out)
		if err != nil {
			return r, err
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return r, fmt.Errorf("cannot count the rows of %s: %q is not a number", t.name(), v)
		}
		ok, err := Compare(v, t.operator(), strconv.FormatInt(t.RowCount.Value, 10))
		if err != nil {
			return r, err
		}
		r.Tables = append(r.Tables, n)
		passed = passed && ok
	}
	r.Passed = passed
	return r, nil
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
