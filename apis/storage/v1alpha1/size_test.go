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
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSize(t *testing.T) {
	cases := map[string]struct {
		reason string
		in     string
		want   int64
		err    bool
	}{
		"Empty":     {reason: "No size is zero.", in: "", want: 0},
		"Bytes":     {reason: "A plain count is bytes.", in: "512", want: 512},
		"Formatted": {reason: "FormatSize's output reads back.", in: FormatSize(3 << 20), want: 3 << 20},
		"Fraction":  {reason: "A rounded binary size reads back to its value.", in: "1.5 GiB", want: 1610612736},
		"Quantity":  {reason: "A Kubernetes quantity is accepted.", in: "2Mi", want: 2 << 20},
		"Decimal":   {reason: "Decimal units are decimal.", in: "3 MB", want: 3000000},
		"Garbage":   {reason: "Anything else is an error.", in: "lots", err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("%s\nParseSize(%q): error %v, want error %v", tc.reason, tc.in, err, tc.err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nParseSize(%q): -want +got:\n%s", tc.reason, tc.in, diff)
			}
		})
	}
	if diff := cmp.Diff("1.5 GiB", FormatSize(1610612736)); diff != "" {
		t.Errorf("FormatSize: -want +got:\n%s", diff)
	}
}
