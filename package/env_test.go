package stashpkg

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/stashplane/stashplane/internal/agentapi"
)

// TestEnvRuleIsTheAgents shows that the RESTIC_* variables the schema
// accepts in runtime settings are exactly those the agent passes on to
// restic, in every CRD that has runtime settings.
func TestEnvRuleIsTheAgents(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	quoted := regexp.MustCompile(`'(RESTIC_[A-Z_]+)'`)
	rules := 0
	for _, crd := range crds {
		for _, v := range crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			walkSchema(*v.Schema.OpenAPIV3Schema, func(s []string) {
				for _, rule := range s {
					if !strings.Contains(rule, "startsWith('RESTIC_')") {
						continue
					}
					rules++
					var got []string
					for _, m := range quoted.FindAllStringSubmatch(rule, -1) {
						got = append(got, m[1])
					}
					if diff := cmp.Diff(agentapi.ResticTuningEnv, got); diff != "" {
						t.Errorf("CRD %s: RESTIC_* variables the schema accepts, -agent's +schema's:\n%s", crd.Name, diff)
					}
				}
			})
		}
	}
	if rules == 0 {
		t.Error("no CRD has the RESTIC_* env rule")
	}
}

// walkSchema calls visit with the CEL rules of every schema in s.
func walkSchema(s apiextensionsv1.JSONSchemaProps, visit func(rules []string)) {
	var rules []string
	for _, r := range s.XValidations {
		rules = append(rules, r.Rule)
	}
	visit(rules)
	for _, p := range s.Properties {
		walkSchema(p, visit)
	}
	if s.Items != nil && s.Items.Schema != nil {
		walkSchema(*s.Items.Schema, visit)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		walkSchema(*s.AdditionalProperties.Schema, visit)
	}
}
