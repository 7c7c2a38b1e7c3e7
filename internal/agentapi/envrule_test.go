package agentapi

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
)

// TestEnvRuleMatchesLists evaluates the runtime settings' admission rules
// on env (apis/storage/v1alpha1, ContainerRuntimeSettings) against the Go
// lists the agent and the Job checks use, so that the two spellings of the
// rule cannot drift apart: each tuning variable is admitted, and every
// other RESTIC_* variable and every redirecting one is refused.
func TestEnvRuleMatchesLists(t *testing.T) {
	src, err := os.ReadFile("../../apis/storage/v1alpha1/shared_types.go")
	if err != nil {
		t.Fatal(err)
	}
	env, err := cel.NewEnv(cel.Variable("self", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	var rules []cel.Program
	for _, m := range regexp.MustCompile(`XValidation:rule="(.*self\.env.*?)",message=`).FindAllSubmatch(src, -1) {
		ast, iss := env.Compile(string(m[1]))
		if iss.Err() != nil {
			t.Fatalf("cannot compile rule %s: %v", m[1], iss.Err())
		}
		prg, err := env.Program(ast)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, prg)
	}
	if len(rules) != 2 {
		t.Fatalf("found %d env rules in shared_types.go, want 2 (RESTIC_* and redirecting variables)", len(rules))
	}
	admitted := func(name string) bool {
		for _, prg := range rules {
			out, _, err := prg.Eval(map[string]any{"self": map[string]any{"env": []any{map[string]any{"name": name}}}})
			if err != nil {
				t.Fatalf("cannot evaluate the rule on %s: %v", name, err)
			}
			if out.Value() != true {
				return false
			}
		}
		return true
	}
	want := map[string]bool{"PATH": true, "GOMAXPROCS": true, "TZ": true}
	for _, k := range ResticTuningEnv {
		want[k] = true
	}
	// restic's own variables beyond tuning: where it reads, with what key.
	for _, k := range []string{"RESTIC_REPOSITORY", "RESTIC_REPOSITORY_FILE", "RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND",
		"RESTIC_CACHE_DIR", "RESTIC_KEY_HINT", "RESTIC_HOST", "RESTIC_CACERT", "RESTIC_TLS_CLIENT_CERT", "RESTIC_FEATURES"} {
		want[k] = false
	}
	for _, k := range RedirectingEnv {
		want[k] = false
		// Go's proxy settings are read in lower case too.
		if strings.HasSuffix(k, "_PROXY") {
			want[strings.ToLower(k)] = false
		}
	}
	for _, p := range append(append([]string{}, RedirectingEnvPrefixes...), "STASHPLANE_") {
		want[p+"ANYTHING"] = false
	}
	for name, ok := range want {
		if got := admitted(name); got != ok {
			t.Errorf("env %s: admitted by the rule %t, want %t (agentapi's lists say so)", name, got, ok)
		}
	}
}
