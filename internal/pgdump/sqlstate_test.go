package pgdump

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSQLState(t *testing.T) {
	cases := map[string]struct {
		out, code, class string
	}{
		"Error":   {out: "ERROR:  22P02: invalid input syntax for type integer: \"secret\"\nLOCATION:  pg_strtoint32, numutils.c:320", code: "22P02", class: "data exception"},
		"Fatal":   {out: "psql: error: connection to server on socket \"/s/.s.PGSQL.5432\" failed: FATAL:  3D000: database \"shop\" does not exist", code: "3D000", class: "invalid catalog name"},
		"Unknown": {out: "ERROR:  P0001: raised", code: "P0001", class: "class P0"},
		"None":    {out: "psql: could not connect", code: ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code := SQLState(tc.out)
			if diff := cmp.Diff(tc.code, code); diff != "" {
				t.Errorf("SQLState(%q): -want +got:\n%s", tc.out, diff)
			}
			if code == "" {
				return
			}
			if diff := cmp.Diff(tc.class, SQLStateClass(code)); diff != "" {
				t.Errorf("SQLStateClass(%q): -want +got:\n%s", code, diff)
			}
		})
	}
}
