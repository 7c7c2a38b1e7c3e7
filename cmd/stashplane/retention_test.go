package main

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/retention"
)

func TestWritePlans(t *testing.T) {
	plans := []retention.RepositoryPlan{
		{Session: "nightly", Repository: "app", Policy: &storagev1alpha1.ObjectReference{Namespace: "demo", Name: "keep-2"}, Decisions: []retention.Decision{
			{Name: "app-3", Keep: true, Rules: []string{"last", "daily"}},
			{Name: "app-2", Keep: true, Rules: []string{"newest Verified"}, Note: "kept past maxRetentionPeriod 1d until a newer Snapshot is Verified"},
			{Name: "app-1", Rules: []string{"successfulSnapshots"}},
			{Name: "app-0", Rules: []string{"successfulSnapshots"}, Waits: true, Note: "due to go by successfulSnapshots, waits while in use by restoresession demo/r"},
		}},
		{Session: "nightly", Repository: "offsite", Policy: &storagev1alpha1.ObjectReference{Namespace: "demo", Name: "gone"}, Problem: "spec.backends[1].retentionPolicy: retentionpolicy demo/gone not found"},
		{Session: "hourly", Repository: "app"},
	}
	cases := map[string]struct {
		reason string
		output string
		want   string
	}{
		"Table": {
			reason: "A row per Snapshot with what happens to it and the rules why; a repository whose policy cannot apply says why.",
			want: `SESSION   REPOSITORY   POLICY        SNAPSHOT   ACTION   RULES                 NOTE
nightly   app          demo/keep-2   app-3      keep     last,daily            <none>
nightly   app          demo/keep-2   app-2      keep     newest Verified       kept past maxRetentionPeriod 1d until a newer Snapshot is Verified
nightly   app          demo/keep-2   app-1      remove   successfulSnapshots   <none>
nightly   app          demo/keep-2   app-0      wait     successfulSnapshots   due to go by successfulSnapshots, waits while in use by restoresession demo/r
nightly   offsite      demo/gone     <all>      keep     <none>                not applied: spec.backends[1].retentionPolicy: retentionpolicy demo/gone not found
hourly    app          <none>        <all>      keep     <none>                no retention policy
`,
		},
		"YAML": {
			reason: "-o yaml prints the plans as data.",
			output: "yaml",
			want: `- decisions:
  - keep: true
    rules:
    - last
    - daily
    snapshot: app-3
  - keep: true
    note: kept past maxRetentionPeriod 1d until a newer Snapshot is Verified
    rules:
    - newest Verified
    snapshot: app-2
  - keep: false
    rules:
    - successfulSnapshots
    snapshot: app-1
  - keep: false
    note: due to go by successfulSnapshots, waits while in use by restoresession demo/r
    rules:
    - successfulSnapshots
    snapshot: app-0
    waits: true
  policy:
    name: keep-2
    namespace: demo
  repository: app
  session: nightly
- policy:
    name: gone
    namespace: demo
  problem: 'spec.backends[1].retentionPolicy: retentionpolicy demo/gone not found'
  repository: offsite
  session: nightly
- repository: app
  session: hourly
`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writePlans(&b, plans, tc.output); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("%s\nwritePlans: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
