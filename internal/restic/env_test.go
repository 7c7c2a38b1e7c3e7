package restic

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEnv shows restic's environment rebuilt from nothing: the repository,
// the password and what Options.Env adds (the agent's tuning variables),
// never a RESTIC_* variable of the agent's own environment.
func TestEnv(t *testing.T) {
	t.Setenv("RESTIC_REPOSITORY", "s3:elsewhere")
	t.Setenv("RESTIC_PASSWORD_COMMAND", "cat /stolen")
	r := &Restic{opts: Options{Repository: "rest:http://127.0.0.1:1/", PasswordFile: "/pw", Env: []string{"RESTIC_COMPRESSION=max"}}}
	var got []string
	for _, kv := range r.env() {
		if strings.HasPrefix(kv, "RESTIC_") {
			got = append(got, kv)
		}
	}
	want := []string{"RESTIC_REPOSITORY=rest:http://127.0.0.1:1/", "RESTIC_PASSWORD_FILE=/pw", "RESTIC_COMPRESSION=max"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env(): RESTIC_* variables -want +got:\n%s", diff)
	}
}
