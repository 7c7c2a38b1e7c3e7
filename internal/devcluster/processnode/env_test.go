package processnode

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "alpha", "B": "beta"}
	cases := map[string]struct {
		reason string
		in     string
		want   string
	}{
		"Plain":      {reason: "A value without references is kept.", in: "plain", want: "plain"},
		"Reference":  {reason: "A defined variable is substituted.", in: "$(A)-$(B)", want: "alpha-beta"},
		"Undefined":  {reason: "An undefined reference is left as written.", in: "$(C)", want: "$(C)"},
		"Escaped":    {reason: "$$ stands for one dollar and stops expansion.", in: "$$(A)", want: "$(A)"},
		"Unfinished": {reason: "An unclosed reference is kept verbatim.", in: "x$(A", want: "x$(A"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, expand(tc.in, vars)); diff != "" {
				t.Errorf("%s\nexpand(%q): -want +got:\n%s", tc.reason, tc.in, diff)
			}
		})
	}
}
