package v1alpha1

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestVerifierQueryKeepsFreeFormFields: a query decodes its postgres row
// counts and encodes back exactly as written, free-form fields included,
// since that is what the Function receives.
func TestVerifierQueryKeepsFreeFormFields(t *testing.T) {
	in := `{"sql":"select 1","value":1,"postgres":[{"database":"shop","table":"orders","rowCount":{"operator":"GreaterThan","value":3}}]}`
	spec := &BackupVerifierSpec{}
	if err := json.Unmarshal([]byte(`{"query":`+in+`}`), spec); err != nil {
		t.Fatal(err)
	}
	want := []PostgresQuery{{Database: "shop", Table: "orders", RowCount: RowCount{Operator: "GreaterThan", Value: 3}}}
	if diff := cmp.Diff(want, spec.Query.Postgres); diff != "" {
		t.Errorf("postgres: -want +got:\n%s", diff)
	}
	if diff := cmp.Diff(in, string(spec.Query.Params())); diff != "" {
		t.Errorf("Params(): -want +got:\n%s", diff)
	}
	out, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	back := &BackupVerifierSpec{}
	if err := json.Unmarshal(out, back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, string(back.Query.Params())); diff != "" {
		t.Errorf("after a round trip: -want +got:\n%s", diff)
	}
	copied := spec.DeepCopy()
	if diff := cmp.Diff(in, string(copied.Query.Params())); diff != "" {
		t.Errorf("DeepCopy: -want +got:\n%s", diff)
	}
}
