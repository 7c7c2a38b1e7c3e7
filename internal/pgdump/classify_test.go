package pgdump

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClassify(t *testing.T) {
	c := Conn{Host: "app-db", Port: 5432, User: "postgres", Password: "s3cret-pw"}
	cases := map[string]struct {
		reason string
		stderr string
		want   string
	}{
		"NoEndpoint": {
			reason: "A Service without a ready endpoint closes the connection before the greeting: the server is unreachable, not a failed dump.",
			stderr: `psql: error: connection to server at "app-db" (198.18.182.155), port 5432 failed: server closed the connection unexpectedly
	This probably means the server terminated abnormally
	before or while processing the request.`,
			want: ReasonUnreachable,
		},
		"NoName": {
			reason: "A name that does not resolve is unreachable.",
			stderr: `pg_dumpall: error: could not translate host name "app-db" to address: Name or service not known`,
			want:   ReasonUnreachable,
		},
		"ClosedHalfWay": {
			reason: "A connection lost after it was made is a failed dump.",
			stderr: `pg_dumpall: error: Dumping the contents of table "orders" failed: PQgetResult() failed.
pg_dumpall: detail: Error message from server: server closed the connection unexpectedly`,
			want: ReasonDumpFailed,
		},
		"Auth": {
			reason: "A refused password is an auth failure.",
			stderr: `psql: error: connection to server at "app-db" (198.18.0.5), port 5432 failed: FATAL:  password authentication failed for user "postgres"`,
			want:   ReasonAuthFailed,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := c.classify("psql", errors.New("exit status 2"), tc.stderr)
			if diff := cmp.Diff(tc.want, got.Reason); diff != "" {
				t.Errorf("%s\nclassify(%q) = %v: -want +got:\n%s", tc.reason, tc.stderr, got, diff)
			}
		})
	}
}
