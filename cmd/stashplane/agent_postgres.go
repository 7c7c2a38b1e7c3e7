package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stashplane/stashplane/internal/agent"
	"github.com/stashplane/stashplane/internal/pgdump"
	"github.com/stashplane/stashplane/internal/pgverify"
)

// postgresFlags say how the postgres-addon's Jobs reach the database. The
// password is read from the mounted auth Secret (--auth-dir), never given
// as an argument.
type postgresFlags struct {
	host, authDir, bin, file string
	port                     int
	timeout, wait            time.Duration
}

func (p *postgresFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&p.host, "host", "", "the database's Service (or host name) in the Job's namespace")
	fs.IntVar(&p.port, "port", 5432, "the database's port")
	fs.StringVar(&p.authDir, "auth-dir", "", "directory of the mounted auth Secret, with keys username and password")
	fs.StringVar(&p.bin, "postgres-bin", "", "directory of pg_dump, pg_dumpall and psql (default: postgres/"+pgverify.DefaultBinDir+" beside this binary, else "+pgverify.DefaultBinDir+")")
	fs.StringVar(&p.file, "file-name", "dumpfile.sql", "name of the dump's file in the backup")
	fs.DurationVar(&p.timeout, "connect-timeout", 15*time.Second, "how long each connection attempt may take")
	fs.DurationVar(&p.wait, "wait-timeout", 0, "how long to wait for the server to accept connections before the first one (0: not at all)")
}

// conn reads the credentials and says how to reach the server.
func (p *postgresFlags) conn() (pgdump.Conn, error) {
	c := pgdump.Conn{BinDir: pgverify.BinDir(p.bin), Host: p.host, Port: p.port, ConnectTimeout: p.timeout, Wait: p.wait}
	if p.host == "" || p.authDir == "" {
		return c, &pgdump.Error{Reason: pgdump.ReasonCredentialsUnreadable, Msg: "cannot reach the database: --host and --auth-dir are required"}
	}
	var err error
	c.User, c.Password, err = pgdump.ReadAuth(p.authDir)
	return c, err
}

// backupPostgresCommand is the postgres-addon's logical-backup: the dump
// of a running server streamed into the component's restic repository.
func backupPostgresCommand() *cobra.Command {
	var p postgresFlags
	d := pgdump.Dump{}
	cmd := agentSubcommand("postgres", agent.KindBackupStream, "Stream a pg_dumpall or pg_dump of a running PostgreSQL into a component of a Snapshot (runs inside the postgres-addon's backup Jobs)",
		func(ctx context.Context, r *agent.Runner) error {
			return r.BackupStream(ctx, p.file, func(ctx context.Context) (io.ReadCloser, error) {
				conn, err := p.conn()
				if err != nil {
					return nil, err
				}
				d.Conn = conn
				return d.Open(ctx)
			})
		})
	p.add(cmd.Flags())
	cmd.Flags().StringVar(&d.Command, "command", pgdump.CommandDumpAll, "pg_dumpall (every database, roles included) or pg_dump (the --database ones)")
	cmd.Flags().StringArrayVar(&d.Databases, "database", nil, "a database pg_dump dumps (repeatable; pg_dump only)")
	cmd.Flags().StringArrayVar(&d.Args, "dump-option", nil, "an option of the dump program, as --name=value (repeatable)")
	return cmd
}

// restorePostgresCommand is the postgres-addon's logical-backup-restore:
// the dump loaded with psql into a running server.
func restorePostgresCommand() *cobra.Command {
	var p postgresFlags
	var database string
	cmd := agentSubcommand("postgres", agent.KindRestoreStream, "Load a component's dump into a running PostgreSQL with psql (runs inside the postgres-addon's restore Jobs)",
		func(ctx context.Context, r *agent.Runner) error {
			return r.RestoreStream(ctx, p.file, func(ctx context.Context, rd io.Reader) error {
				conn, err := p.conn()
				if err != nil {
					return err
				}
				return pgdump.Load(ctx, conn, database, rd)
			})
		})
	p.add(cmd.Flags())
	cmd.Flags().StringVar(&database, "database", "postgres", "the database psql connects to first; the dump's own \\connect lines move on to the others")
	return cmd
}
