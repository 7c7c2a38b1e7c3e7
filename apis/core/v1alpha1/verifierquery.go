/*
Copyright 2026 The Stashplane Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

import (
	"bytes"
	"encoding/json"

	"k8s.io/apimachinery/pkg/runtime"
)

// VerifierQuery is a Query verifier's query, given to its Function as the
// task's parameters exactly as written. Its fields are the Function's
// (its #Params says which it takes: the built-in postgres-query-verifier
// takes sql, operator, value, database, dumpFile...), except KubeStash's
// structured query for PostgreSQL, postgres, whose shape the schema
// checks at admission.
// +kubebuilder:pruning:PreserveUnknownFields
type VerifierQuery struct {
	// Postgres are row counts a PostgreSQL verifier checks in the
	// restored data (KubeStash's query.postgres): each table's rows
	// must stand in the operator's relation to the value.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Postgres []PostgresQuery `json:"postgres,omitempty"`

	// Raw is the query as written, every field included: what the
	// Function receives. When set it is also what the query encodes to,
	// so a change to Postgres alone is not encoded.
	Raw runtime.RawExtension `json:"-"`
}

// PostgresQuery is one row count of KubeStash's structured PostgreSQL
// query.
type PostgresQuery struct {
	// Database holding the table; the Function's default (postgres)
	// when empty.
	// +optional
	Database string `json:"database,omitempty"`

	// Schema of the table; the Function's default (public) when empty.
	// +optional
	Schema string `json:"schema,omitempty"`

	// Table whose rows are counted.
	// +kubebuilder:validation:MinLength=1
	Table string `json:"table"`

	// RowCount is what the count must be.
	RowCount RowCount `json:"rowCount"`
}

// RowCount is an expected number of rows.
type RowCount struct {
	// Operator compares the count with Value; Equal by default.
	// +kubebuilder:validation:Enum=Equal;NotEqual;LessThan;LessThanOrEqual;GreaterThan;GreaterThanOrEqual
	// +optional
	Operator string `json:"operator,omitempty"`

	// Value the count is compared with.
	// +kubebuilder:validation:Minimum=0
	Value int64 `json:"value"`
}

// UnmarshalJSON keeps the query as written and reads its postgres part.
func (q *VerifierQuery) UnmarshalJSON(b []byte) error {
	var typed struct {
		Postgres []PostgresQuery `json:"postgres,omitempty"`
	}
	if err := json.Unmarshal(b, &typed); err != nil {
		return err
	}
	q.Postgres = typed.Postgres
	q.Raw = runtime.RawExtension{Raw: bytes.Clone(b)}
	return nil
}

// MarshalJSON writes the query as written, or its typed fields when it
// was built without Raw.
func (q VerifierQuery) MarshalJSON() ([]byte, error) {
	if len(q.Raw.Raw) > 0 {
		return q.Raw.Raw, nil
	}
	return json.Marshal(struct {
		Postgres []PostgresQuery `json:"postgres,omitempty"`
	}{q.Postgres})
}

// Params are the Function's parameters: the query as written.
func (q *VerifierQuery) Params() []byte {
	if q == nil {
		return nil
	}
	b, _ := q.MarshalJSON()
	return b
}
