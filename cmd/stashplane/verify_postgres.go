package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stashplane/stashplane/internal/agent"
	"github.com/stashplane/stashplane/internal/pgverify"
)

// Exit codes of stashplane verify postgres, the verifier contract's:
// 0 the check passed, 1 it failed (a verdict on the Snapshot), and codes
// that give no verdict.
const (
	exitCheckFailed = 1
	exitBadUsage    = 2
	exitNotMade     = 3
)

// verifyPostgresCommand is what the postgres-query-verifier Function's Job
// runs: it checks a restored PostgreSQL data directory with one query. Its
// last line of output is the result the BackupVerificationSession shows:
// the query's value and how it compared, or one short line saying why no
// check was made. The server's log and psql's messages, which may quote
// row values, are printed only with --debug.
func verifyPostgresCommand() *cobra.Command {
	c := pgverify.Check{}
	var bin string
	var uid, gid uint32
	var debug bool
	var tables string
	cmd := &cobra.Command{
		Use:   "postgres",
		Short: "Start PostgreSQL on a restored data directory and check the value one query returns",
		Long: "Copy the restored data directory (--data-dir, only read) into --work-dir, start PostgreSQL on the " +
			"copy on a private Unix socket (as --uid/--gid when run as root), run --sql with psql, compare the " +
			"single value it returns with --value using --operator, check each of --tables' row counts, and stop the server. " +
			"With --dump-file instead of --data-dir, a new server is made in --work-dir and the dump loaded into it first. Exit code 0: the check " +
			"passed; 1: it failed; 2: bad arguments; 3: the check could not be made (the server did not start, " +
			"the query failed or returned other than one value).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tables != "" {
				if err := json.Unmarshal([]byte(tables), &c.Tables); err != nil {
					return &agent.ExitError{Code: exitBadUsage, Err: fmt.Errorf("cannot read --tables: %w", err)}
				}
			}
			if (c.DataDir == "") == (c.DumpFile == "") || c.WorkDir == "" || (c.SQL == "" && len(c.Tables) == 0) {
				return &agent.ExitError{Code: exitBadUsage, Err: errors.New("cannot verify postgres: one of --data-dir and --dump-file, --work-dir, and --sql or --tables are required")}
			}
			if _, err := pgverify.Compare("0", c.Operator, "0"); err != nil {
				return &agent.ExitError{Code: exitBadUsage, Err: err}
			}
			c.BinDir = pgverify.BinDir(bin)
			c.RunAs = pgverify.User{UID: uid, GID: gid}
			r, err := c.Run(cmd.Context())
			if perr := (*pgverify.Error)(nil); debug && errors.As(err, &perr) && perr.Detail != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), perr.Detail)
			}
			if err != nil {
				return &agent.ExitError{Code: exitNotMade, Err: err}
			}
			if !r.Passed {
				return &agent.ExitError{Code: exitCheckFailed, Err: errors.New(c.String(r))}
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.String(r))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.DataDir, "data-dir", "", "the restored PostgreSQL data directory (holding PG_VERSION)")
	f.StringVar(&c.WorkDir, "work-dir", "", "an empty scratch directory for the copy and the server's socket")
	f.StringVar(&c.DumpFile, "dump-file", "", "a restored plain SQL dump (the postgres-addon's dumpfile.sql) to load into a new server instead of --data-dir")
	f.StringVar(&tables, "tables", "", `row counts to check, as JSON: [{"database","schema","table","rowCount":{"operator","value"}}] (KubeStash's query.postgres)`)
	f.StringVar(&c.Database, "database", "postgres", "database the query runs in")
	f.StringVar(&c.User, "user", "postgres", "database user the query runs as")
	f.StringVar(&c.SQL, "sql", "", "the query; it must return one row of one column")
	f.StringVar(&c.Operator, "operator", "Equal", "Equal, NotEqual, LessThan, LessThanOrEqual, GreaterThan or GreaterThanOrEqual")
	f.StringVar(&c.Value, "value", "", "the value the query's result is compared with (as numbers when both are)")
	f.StringVar(&bin, "postgres-bin", "", "directory of postgres, pg_isready and psql (default: postgres/"+pgverify.DefaultBinDir+" beside this binary, else "+pgverify.DefaultBinDir+")")
	f.Uint32Var(&uid, "uid", 65534, "user ID the server runs as when this runs as root (PostgreSQL refuses root)")
	f.Uint32Var(&gid, "gid", 65534, "group ID the server runs as when this runs as root")
	f.BoolVar(&debug, "debug", false, "print the server's log and psql's messages when the check cannot be made; they may quote row values")
	f.DurationVar(&c.StartTimeout, "start-timeout", 5*time.Minute, "how long the server may take to start, crash recovery included")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &agent.ExitError{Code: exitBadUsage, Err: err}
	})
	return cmd
}
