package pgdump_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stashplane/stashplane/internal/pgdump"
	"github.com/stashplane/stashplane/internal/pgverify"
)

// binDir is bin/postgres of this repository (make tools); the test fails
// without it rather than pass without a server.
func binDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "bin", "postgres", pgverify.DefaultBinDir)
	if _, err := os.Stat(filepath.Join(dir, "postgres")); err != nil {
		t.Fatalf("PostgreSQL is not in bin/postgres (run make tools): %v", err)
	}
	return dir
}

func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgdump-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// server starts a fresh PostgreSQL on a private socket and returns how to
// reach it.
func server(t *testing.T, bin string) (*pgverify.Server, pgdump.Conn) {
	t.Helper()
	ctx := context.Background()
	u := pgverify.User{UID: 65534, GID: 65534}
	data := filepath.Join(openDir(t), "pgdata")
	if err := pgverify.InitDB(ctx, bin, data, "postgres", u); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(openDir(t), "socket")
	s, err := pgverify.Start(ctx, bin, data, socket, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(time.Minute) })
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.Ready(rctx, "postgres", "postgres"); err != nil {
		t.Fatal(err)
	}
	return s, pgdump.Conn{BinDir: bin, Host: socket, Port: 5432, User: "postgres"}
}

func reason(err error) string {
	var e *pgdump.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

// TestDumpAndLoad runs the real PostgreSQL: a pg_dumpall and a pg_dump of
// one database load into a fresh server and hold the rows; a missing
// database, a socket without a server, and a dump program that fails
// after writing part of its output are told apart, and the failed one
// never ends its stream as if it were whole.
func TestDumpAndLoad(t *testing.T) {
	bin := binDir(t)
	ctx := context.Background()
	src, conn := server(t, bin)
	if _, err := src.Exec(ctx, "postgres", "postgres", "create database shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Exec(ctx, "shop", "postgres", "create table orders (id int primary key); insert into orders select generate_series(1, 250)"); err != nil {
		t.Fatal(err)
	}

	for name, d := range map[string]pgdump.Dump{
		"DumpAll": {Conn: conn, Command: pgdump.CommandDumpAll},
		"Dump":    {Conn: conn, Command: pgdump.CommandDump, Databases: []string{"shop"}},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := d.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var dump bytes.Buffer
			if _, err := io.Copy(&dump, r); err != nil {
				t.Fatalf("cannot read the dump: %v", err)
			}
			_ = r.Close()
			dst, dconn := server(t, bin)
			if err := pgdump.Load(ctx, dconn, "postgres", &dump); err != nil {
				t.Fatalf("cannot load the dump: %v", err)
			}
			out, err := dst.Exec(ctx, "shop", "postgres", "select count(*) from orders")
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := pgverify.SingleValue(out); v != "250" {
				t.Errorf("the loaded database holds %q orders, want 250", v)
			}
		})
	}

	t.Run("LoadTwice", func(t *testing.T) {
		r, err := pgdump.Dump{Conn: conn, Command: pgdump.CommandDump, Databases: []string{"shop"}}.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		err = pgdump.Load(ctx, conn, "postgres", bytes.NewReader(b))
		if diff := cmp.Diff(pgdump.ReasonLoadFailed, reason(err)); diff != "" {
			t.Errorf("A dump loaded where its database exists stops at the error (%v): -want +got:\n%s", err, diff)
		}
		if err != nil && strings.Contains(err.Error(), "shop") {
			t.Errorf("The load's error quotes psql's message: %v", err)
		}
	})

	t.Run("LoadBrokenOff", func(t *testing.T) {
		errBroken := errors.New("the restore stream broke off")
		src := io.MultiReader(strings.NewReader("create table broken (n int);\ninsert into broken values (1"), iotest.ErrReader(errBroken))
		err := pgdump.Load(ctx, conn, "postgres", src)
		if !errors.Is(err, errBroken) {
			t.Errorf("Load of a stream that broke off = %v, want its error", err)
		}
	})

	fails := filepath.Join(openDir(t), "bin")
	if err := os.MkdirAll(fails, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho 'CREATE TABLE half (n int);'\necho 'pg_dumpall: error: Dumping the contents of table \"half\" failed: server closed the connection' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(fails, "pg_dumpall"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		d      pgdump.Dump
		reason string
	}{
		"MissingDatabase": {d: pgdump.Dump{Conn: conn, Command: pgdump.CommandDump, Databases: []string{"shop", "nosuchdb"}}, reason: pgdump.ReasonDatabaseNotFound},
		"NoServer": {d: pgdump.Dump{Conn: pgdump.Conn{BinDir: bin, Host: openDir(t), Port: 5432, User: "postgres", ConnectTimeout: 2 * time.Second},
			Command: pgdump.CommandDumpAll}, reason: pgdump.ReasonUnreachable},
		"FailedHalfWay": {d: pgdump.Dump{Conn: pgdump.Conn{BinDir: fails, Host: openDir(t), Port: 5432, User: "postgres"}, Command: pgdump.CommandDumpAll}, reason: pgdump.ReasonDumpFailed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := tc.d.Open(ctx)
			if err == nil {
				_, err = io.Copy(io.Discard, r)
				_ = r.Close()
			}
			if diff := cmp.Diff(tc.reason, reason(err)); diff != "" {
				t.Errorf("reading the dump (%v): -want +got:\n%s", err, diff)
			}
		})
	}
}

// TestValidate: options that would take the dump out of the stream, or
// the connection out of the task's hands, are refused.
func TestValidate(t *testing.T) {
	cases := map[string]struct {
		d    pgdump.Dump
		want bool
	}{
		"DumpAll":            {d: pgdump.Dump{Command: pgdump.CommandDumpAll, Args: []string{"--no-role-passwords"}}, want: true},
		"DumpAllDatabases":   {d: pgdump.Dump{Command: pgdump.CommandDumpAll, Databases: []string{"shop"}}},
		"DumpNoDatabase":     {d: pgdump.Dump{Command: pgdump.CommandDump}},
		"File":               {d: pgdump.Dump{Command: pgdump.CommandDumpAll, Args: []string{"--file=/tmp/x"}}},
		"ShortFile":          {d: pgdump.Dump{Command: pgdump.CommandDump, Databases: []string{"a"}, Args: []string{"-f/tmp/x"}}},
		"Format":             {d: pgdump.Dump{Command: pgdump.CommandDump, Databases: []string{"a"}, Args: []string{"-Fc"}}},
		"Host":               {d: pgdump.Dump{Command: pgdump.CommandDump, Databases: []string{"a"}, Args: []string{"--host=elsewhere"}}},
		"Positional":         {d: pgdump.Dump{Command: pgdump.CommandDump, Databases: []string{"a"}, Args: []string{"b"}}},
		"OtherCommand":       {d: pgdump.Dump{Command: "sh"}},
		"DumpWithLockOption": {d: pgdump.Dump{Command: pgdump.CommandDump, Databases: []string{"a"}, Args: []string{"--lock-wait-timeout=2000"}}, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.d.Validate()
			if diff := cmp.Diff(tc.want, err == nil); diff != "" {
				t.Errorf("Validate() = %v: -want valid +got:\n%s", err, diff)
			}
		})
	}
}

// TestWaitReady: with a wait, a dump started before its server waits for
// it and succeeds once the server accepts connections; without a server
// it gives up when the wait is over, DatabaseUnreachable naming
// waitTimeout; with no wait, it fails at once.
func TestWaitReady(t *testing.T) {
	bin := binDir(t)
	ctx := context.Background()
	u := pgverify.User{UID: 65534, GID: 65534}
	data := filepath.Join(openDir(t), "pgdata")
	if err := pgverify.InitDB(ctx, bin, data, "postgres", u); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(openDir(t), "socket")
	conn := pgdump.Conn{BinDir: bin, Host: socket, Port: 5432, User: "postgres", ConnectTimeout: 2 * time.Second}

	cases := map[string]struct {
		reason string
		wait   time.Duration
		// within bounds how long the dump may take to fail.
		within     time.Duration
		wantReason string
		wantMsg    string
	}{
		"NoWait": {
			reason: "Without a wait the first connection decides: no server, DatabaseUnreachable at once.",
			within: 10 * time.Second, wantReason: pgdump.ReasonUnreachable,
		},
		"GivesUp": {
			reason: "A server that never comes is DatabaseUnreachable once the wait is over, naming waitTimeout.",
			wait:   3 * time.Second, within: 15 * time.Second, wantReason: pgdump.ReasonUnreachable,
			wantMsg: "did not accept connections within waitTimeout (3s)",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := conn
			c.Wait = tc.wait
			start := time.Now()
			r, err := pgdump.Dump{Conn: c, Command: pgdump.CommandDumpAll}.Open(ctx)
			if err == nil {
				_, err = io.Copy(io.Discard, r)
				_ = r.Close()
			}
			took := time.Since(start)
			if diff := cmp.Diff(tc.wantReason, reason(err)); diff != "" {
				t.Errorf("%s\nOpen: %v: -want +got:\n%s", tc.reason, err, diff)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("%s\nOpen: %v, want it to say %q", tc.reason, err, tc.wantMsg)
			}
			if took < tc.wait || took > tc.within {
				t.Errorf("%s\nOpen failed after %s, want between %s and %s", tc.reason, took, tc.wait, tc.within)
			}
		})
	}

	t.Run("ServerComesLate", func(t *testing.T) {
		c := conn
		c.Wait = 2 * time.Minute
		type result struct {
			dump []byte
			err  error
		}
		done := make(chan result, 1)
		go func() {
			r, err := pgdump.Dump{Conn: c, Command: pgdump.CommandDumpAll}.Open(ctx)
			if err != nil {
				done <- result{err: err}
				return
			}
			defer func() { _ = r.Close() }()
			b, err := io.ReadAll(r)
			done <- result{b, err}
		}()
		time.Sleep(2 * time.Second)
		select {
		case r := <-done:
			t.Fatalf("the dump ended before its server started: %v", r.err)
		default:
		}
		s, err := pgverify.Start(ctx, bin, data, socket, u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop(time.Minute) })
		select {
		case r := <-done:
			if r.err != nil || !bytes.Contains(r.dump, []byte("PostgreSQL database cluster dump")) {
				t.Errorf("the dump that waited for its server: %v, %d bytes", r.err, len(r.dump))
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("the dump did not end after its server started")
		}
	})
}
