package pgverify

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stashplane/stashplane/internal/pgdump"
)

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCompare(t *testing.T) {
	type want struct {
		ok  bool
		err string
	}
	cases := map[string]struct {
		reason        string
		got, op, want string
		w             want
	}{
		"EqualNumbers":        {reason: "numbers compare by value", got: "5", op: "Equal", want: "5.0", w: want{ok: true}},
		"EqualBigNumbers":     {reason: "counts beyond float precision stay exact", got: "9007199254740993", op: "Equal", want: "9007199254740992", w: want{ok: false}},
		"NotEqual":            {reason: "a different count is NotEqual", got: "4", op: "NotEqual", want: "5", w: want{ok: true}},
		"LessThan":            {got: "4", op: "LessThan", want: "5", w: want{ok: true}},
		"LessThanEqualValues": {got: "5", op: "LessThan", want: "5", w: want{ok: false}},
		"LessThanOrEqual":     {got: "5", op: "LessThanOrEqual", want: "5", w: want{ok: true}},
		"GreaterThan":         {got: "10", op: "GreaterThan", want: "9", w: want{ok: true}},
		"GreaterThanNumeric":  {reason: "numbers are not compared as text", got: "10", op: "GreaterThan", want: "9.5", w: want{ok: true}},
		"GreaterThanOrEqual":  {got: "-1", op: "GreaterThanOrEqual", want: "0", w: want{ok: false}},
		"Exponent":            {reason: "an exponent is a number, as float8 prints large values", got: "1.5e+3", op: "Equal", want: "1500", w: want{ok: true}},
		"Signed":              {got: "+7", op: "Equal", want: "7", w: want{ok: true}},
		"Hex":                 {reason: "hexadecimal is text, not 16", got: "0x10", op: "Equal", want: "16", w: want{ok: false}},
		"Binary":              {reason: "binary is text, not 3", got: "0b11", op: "Equal", want: "3", w: want{ok: false}},
		"Octal":               {reason: "octal is text, not 8", got: "0o10", op: "Equal", want: "8", w: want{ok: false}},
		"Underscores":         {reason: "digit separators make text", got: "1_000", op: "Equal", want: "1000", w: want{ok: false}},
		"Fraction":            {reason: "a fraction is text, not 0.5", got: "1/2", op: "Equal", want: "0.5", w: want{ok: false}},
		"LeadingDot":          {reason: "a decimal needs digits before its point", got: ".5", op: "Equal", want: "0.5", w: want{ok: false}},
		"HugeExponent": {reason: "an exponent beyond four digits is text, not a number to build", got: "1e100000", op: "GreaterThan", want: "1",
			w: want{err: `cannot compare "1e100000" with "1" using GreaterThan: both must be numbers`}},
		"OrderHex": {reason: "hexadecimal has no order", got: "0x10", op: "GreaterThan", want: "1",
			w: want{err: `cannot compare "0x10" with "1" using GreaterThan: both must be numbers`}},
		"EqualText":    {reason: "text compares exactly", got: "ok", op: "Equal", want: "ok", w: want{ok: true}},
		"NotEqualText": {got: "ok", op: "NotEqual", want: "OK", w: want{ok: true}},
		"OrderText": {reason: "text has no order", got: "a", op: "LessThan", want: "b",
			w: want{err: `cannot compare "a" with "b" using LessThan: both must be numbers`}},
		"UnknownOperator": {got: "1", op: "Like", want: "1",
			w: want{err: `cannot compare with operator "Like": it is none of [Equal NotEqual LessThan LessThanOrEqual GreaterThan GreaterThanOrEqual]`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ok, err := Compare(tc.got, tc.op, tc.want)
			if diff := cmp.Diff(tc.w, want{ok: ok, err: errText(err)}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nCompare(%q, %q, %q): -want +got:\n%s", tc.reason, tc.got, tc.op, tc.want, diff)
			}
		})
	}
}

func TestSingleValue(t *testing.T) {
	type want struct {
		v   string
		err string
	}
	cases := map[string]struct {
		out string
		w   want
	}{
		"OneValue":     {out: "42" + recordSep + "\n", w: want{v: "42"}},
		"NoTrailing":   {out: "42\n", w: want{v: "42"}},
		"Null":         {out: recordSep + "\n", w: want{err: "cannot use the query's result: it returned no rows, not exactly one value"}},
		"NoRows":       {out: "", w: want{err: "cannot use the query's result: it returned no rows, not exactly one value"}},
		"TwoRows":      {out: "1" + recordSep + "2" + recordSep, w: want{err: "cannot use the query's result: it returned 2 rows, not exactly one value"}},
		"TwoColumns":   {out: "1" + fieldSep + "2" + recordSep, w: want{err: "cannot use the query's result: it returned 2 columns, not exactly one value"}},
		"PipeInsideOK": {out: "a|b" + recordSep, w: want{v: "a|b"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v, err := SingleValue(tc.out)
			if diff := cmp.Diff(tc.w, want{v: v, err: errText(err)}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("SingleValue(%q): -want +got:\n%s", tc.out, diff)
			}
		})
	}
}

// repoBinDir is bin/postgres of this repository, from `make tools`.
// Without it the tests that need the server are skipped, unless
// STASHPLANE_REQUIRE_TOOLS or CI is set: then they fail, so that a run
// that is meant to check the server never passes without it.
func repoBinDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "bin", "postgres", DefaultBinDir)
	if _, err := os.Stat(filepath.Join(dir, "postgres")); err != nil {
		if os.Getenv("STASHPLANE_REQUIRE_TOOLS") != "" || os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is not in bin/postgres (run make tools): %v", err)
		}
		t.Skipf("PostgreSQL is not in bin/postgres (run make tools): %v", err)
	}
	return dir
}

// openDir makes a temporary directory the unprivileged server user can
// reach.
func openDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgverify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCheckRun runs the real PostgreSQL: a data directory with a table of
// three rows, stopped cleanly, is checked by count; a wrong expectation,
// a query with two values and a missing table are told apart.
func TestCheckRun(t *testing.T) {
	bin := repoBinDir(t)
	ctx := context.Background()
	u := User{UID: 65534, GID: 65534}
	data := filepath.Join(openDir(t), "pgdata")
	if err := InitDB(ctx, bin, data, "postgres", u); err != nil {
		t.Fatal(err)
	}
	s, err := Start(ctx, bin, data, filepath.Join(openDir(t), "socket"), u)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.Ready(rctx, "postgres", "postgres"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(ctx, "postgres", "postgres", "create table items (n int); insert into items select generate_series(1, 3)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(time.Minute); err != nil {
		t.Fatal(err)
	}

	type want struct {
		r   Result
		err string
	}
	cases := map[string]struct {
		sql, op, value string
		w              want
	}{
		"Passes":     {sql: "select count(*) from items", op: "Equal", value: "3", w: want{r: Result{Value: "3", Passed: true}}},
		"WrongCount": {sql: "select count(*) from items", op: "Equal", value: "4", w: want{r: Result{Value: "3"}}},
		"TwoValues":  {sql: "select 1, 2", op: "Equal", value: "1", w: want{err: "cannot use the query's result: it returned 2 columns, not exactly one value"}},
		"NoTable": {sql: "select count(*) from missing", op: "Equal", value: "1",
			w: want{err: `cannot run the query: SQLSTATE 42P01 (syntax error or access rule violation)`}},
		"NoValueQuoted": {sql: "select 'secret-value'::int", op: "Equal", value: "1",
			w: want{err: `cannot run the query: SQLSTATE 22P02 (data exception)`}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := Check{
				BinDir: bin, DataDir: data, WorkDir: openDir(t), Database: "postgres", User: "postgres",
				SQL: tc.sql, Operator: tc.op, Value: tc.value, RunAs: u, StartTimeout: time.Minute,
			}
			r, err := c.Run(ctx)
			if diff := cmp.Diff(tc.w, want{r: r, err: errText(err)}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("Run(%q %s %s): -want +got:\n%s", tc.sql, tc.op, tc.value, diff)
			}
		})
	}
}

// TestCheckReplicaCopy runs the real PostgreSQL on the data directory of a
// standby whose restored settings would fetch WAL with a shell command,
// stream from a primary and preload libraries the verifier lacks: the copy
// starts as a primary, none of those settings apply, and the restored
// directory keeps its standby.signal.
func TestCheckReplicaCopy(t *testing.T) {
	bin := repoBinDir(t)
	ctx := context.Background()
	u := User{UID: 65534, GID: 65534}
	data := filepath.Join(openDir(t), "pgdata")
	if err := InitDB(ctx, bin, data, "postgres", u); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(openDir(t), "restore-command-ran")
	conf := strings.Join([]string{
		"primary_conninfo = 'host=127.0.0.1 port=1 user=replicator'",
		"primary_slot_name = 'replica_1'",
		"restore_command = 'touch " + marker + "'",
		"archive_mode = on",
		"archive_command = 'touch " + marker + "'",
		"shared_preload_libraries = 'no_such_library'",
		"session_preload_libraries = 'no_such_library'",
		"local_preload_libraries = 'no_such_library'",
		"listen_addresses = '*'",
	}, "\n") + "\n"
	f, err := os.OpenFile(filepath.Join(data, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(conf); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, signal := range []string{"standby.signal", "recovery.signal"} {
		if err := os.WriteFile(filepath.Join(data, signal), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := Check{
		BinDir: bin, DataDir: data, WorkDir: openDir(t), Database: "postgres", User: "postgres",
		SQL: "select concat_ws(',', pg_is_in_recovery(), current_setting('primary_conninfo'), current_setting('restore_command'), " +
			"current_setting('shared_preload_libraries'), current_setting('session_preload_libraries'), current_setting('listen_addresses'))",
		Operator: "Equal", Value: "f,,,,,", RunAs: u, StartTimeout: time.Minute,
	}
	r, err := c.Run(ctx)
	if diff := cmp.Diff(Result{Value: "f,,,,,", Passed: true}, r); diff != "" || err != nil {
		t.Errorf("Run on a standby's data directory: error %v; -want +got:\n%s", err, diff)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the restored restore_command or archive_command ran")
	}
	if _, err := os.Stat(filepath.Join(data, "standby.signal")); err != nil {
		t.Errorf("the restored data directory lost its standby.signal: %v", err)
	}
}

// TestCheckDump runs the real PostgreSQL: a pg_dumpall of a server is
// loaded into a new server made for the check, where a free-form query
// and KubeStash's row counts are compared; a count that does not hold
// fails the check, and a table the dump lacks makes no check.
func TestCheckDump(t *testing.T) {
	bin := repoBinDir(t)
	ctx := context.Background()
	u := User{UID: 65534, GID: 65534}
	data := filepath.Join(openDir(t), "pgdata")
	if err := InitDB(ctx, bin, data, "postgres", u); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(openDir(t), "socket")
	s, err := Start(ctx, bin, data, socket, u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(time.Minute)
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.Ready(rctx, "postgres", "postgres"); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"create database shop", "create role app login"} {
		if _, err := s.Exec(ctx, "postgres", "postgres", sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Exec(ctx, "shop", "postgres", "create table orders (n int); insert into orders select generate_series(1, 3); create table counter (n int); insert into counter values (3)"); err != nil {
		t.Fatal(err)
	}
	r, err := pgdump.Dump{Conn: pgdump.Conn{BinDir: bin, Host: socket, Port: 5432, User: "postgres"}, Command: pgdump.CommandDumpAll}.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(openDir(t), "dumpfile.sql")
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dump, b, 0o644); err != nil {
		t.Fatal(err)
	}

	type want struct {
		r   Result
		err string
	}
	cases := map[string]struct {
		sql    string
		tables []TableCheck
		w      want
	}{
		"Passes": {
			sql:    "select count(*) - (select n from counter) from orders",
			tables: []TableCheck{{Database: "shop", Table: "orders", RowCount: RowCountCheck{Operator: "GreaterThanOrEqual", Value: 3}}},
			w:      want{r: Result{Value: "0", Passed: true, Tables: []int64{3}}},
		},
		"CountFails": {
			tables: []TableCheck{{Database: "shop", Schema: "public", Table: "orders", RowCount: RowCountCheck{Value: 4}}},
			w:      want{r: Result{Tables: []int64{3}}},
		},
		"NoTable": {
			tables: []TableCheck{{Database: "shop", Table: "missing", RowCount: RowCountCheck{Value: 1}}},
			w:      want{err: `cannot run the query: SQLSTATE 42P01 (syntax error or access rule violation)`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := Check{
				BinDir: bin, DumpFile: dump, WorkDir: openDir(t), Database: "shop", User: "postgres",
				SQL: tc.sql, Operator: "Equal", Value: "0", Tables: tc.tables, RunAs: u, StartTimeout: time.Minute,
			}
			r, err := c.Run(ctx)
			if diff := cmp.Diff(tc.w, want{r: r, err: errText(err)}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("Run(): -want +got:\n%s", diff)
			}
		})
	}
}
