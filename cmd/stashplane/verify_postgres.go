package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stashplane/stashplane/internal/agent"
	"github.com/stashplane/stashplane/internal/pgverify"
)

// verifyPostgresCommand is what the postgres-query-verifier Function's Job
// runs: it checks a restored PostgreSQL data directory with one query. Its
// last line of output is the result the BackupVerificationSession shows.
func verifyPostgresCommand() *cobra.Command {
	c := pgverify.Check{}
	var bin string
	var uid, gid uint32
	cmd := &cobra.Command{
		Use:   "postgres",
		Short: "Start PostgreSQL on a restored data directory and check the value one query returns",
		Long: "Copy the restored data directory (--data-dir, only read) into --work-dir, start PostgreSQL on the " +
			"copy on a private Unix socket (as --uid/--gid when run as root), run --sql with psql, compare the " +
			"single value it returns with --value using --operator, and stop the server. Exit code 0: the check " +
			"passed; 1: it failed or could not be made; 2: bad arguments.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c.DataDir == "" || c.WorkDir == "" || c.SQL == "" {
				return &agent.ExitError{Code: 2, Err: errors.New("cannot verify: --data-dir, --work-dir and --sql are required")}
			}
			if _, err := pgverify.Compare("0", c.Operator, "0"); err != nil {
				return &agent.ExitError{Code: 2, Err: err}
			}
			c.BinDir = pgverify.BinDir(bin)
			c.RunAs = pgverify.User{UID: uid, GID: gid}
			r, err := c.Run(cmd.Context())
			if err != nil {
				return &agent.ExitError{Code: 1, Err: err}
			}
			if !r.Passed {
				return &agent.ExitError{Code: 1, Err: errors.New(c.String(r))}
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.String(r))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.DataDir, "data-dir", "", "the restored PostgreSQL data directory (holding PG_VERSION)")
	f.StringVar(&c.WorkDir, "work-dir", "", "an empty scratch directory for the copy and the server's socket")
	f.StringVar(&c.Database, "database", "postgres", "database the query runs in")
	f.StringVar(&c.User, "user", "postgres", "database user the query runs as")
	f.StringVar(&c.SQL, "sql", "", "the query; it must return one row of one column")
	f.StringVar(&c.Operator, "operator", "Equal", "Equal, NotEqual, LessThan, LessThanOrEqual, GreaterThan or GreaterThanOrEqual")
	f.StringVar(&c.Value, "value", "", "the value the query's result is compared with (as numbers when both are)")
	f.StringVar(&bin, "postgres-bin", "", "directory of postgres, pg_isready and psql (default: postgres/"+pgverify.DefaultBinDir+" beside this binary, else "+pgverify.DefaultBinDir+")")
	f.Uint32Var(&uid, "uid", 65534, "user ID the server runs as when this runs as root (PostgreSQL refuses root)")
	f.Uint32Var(&gid, "gid", 65534, "group ID the server runs as when this runs as root")
	f.DurationVar(&c.StartTimeout, "start-timeout", 5*time.Minute, "how long the server may take to start, crash recovery included")
	return cmd
}
