package provider

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The soft memory limit is taken from the flag: a quantity, off, or the
// container's (none in a process without a cgroup limit, or GOMEMLIMIT's).
func TestSetMemoryLimit(t *testing.T) {
	was := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(was) })
	type want struct {
		limit   int64
		runtime int64
		err     bool
	}
	cases := map[string]struct {
		value      string
		gomemlimit string
		want       want
	}{
		"Quantity":      {value: "160Mi", want: want{limit: 160 << 20, runtime: 160 << 20}},
		"Off":           {value: "off", want: want{limit: math.MaxInt64, runtime: math.MaxInt64}},
		"AutoWithEnv":   {value: "auto", gomemlimit: "300MiB", want: want{limit: 300 << 20, runtime: 300 << 20}},
		"NotAQuantity":  {value: "lots", want: want{err: true, runtime: 1 << 30}},
		"Negative":      {value: "-1Mi", want: want{err: true, runtime: 1 << 30}},
		"ZeroIsRefused": {value: "0", want: want{err: true, runtime: 1 << 30}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			debug.SetMemoryLimit(1 << 30)
			if tc.gomemlimit != "" {
				// The runtime reads GOMEMLIMIT at start; here it is set
				// as it would have been.
				t.Setenv("GOMEMLIMIT", tc.gomemlimit)
				debug.SetMemoryLimit(300 << 20)
			}
			limit, err := setMemoryLimit(tc.value)
			got := want{limit: limit, runtime: debug.SetMemoryLimit(-1), err: err != nil}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}
