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

// The collector's target is the flag's, unless GOGC was set or the
// option left at zero, which keep the runtime's.
func TestSetGCPercent(t *testing.T) {
	was := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(was) })
	type want struct {
		inForce int
		runtime int
	}
	cases := map[string]struct {
		percent int
		gogc    string
		want    want
	}{
		"Default":       {percent: DefaultGCPercent, want: want{inForce: 50, runtime: 50}},
		"Given":         {percent: 30, want: want{inForce: 30, runtime: 30}},
		"ZeroKeeps":     {percent: 0, want: want{inForce: 80, runtime: 80}},
		"GOGCWins":      {percent: 50, gogc: "80", want: want{inForce: 80, runtime: 80}},
		"NegativeIsOff": {percent: -1, want: want{inForce: -1, runtime: -1}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			// As the runtime would have it at start, from GOGC or not.
			debug.SetGCPercent(80)
			// Empty reads as unset, whatever the shell running the
			// tests exports.
			t.Setenv("GOGC", tc.gogc)
			inForce := setGCPercent(tc.percent)
			got := want{inForce: inForce, runtime: debug.SetGCPercent(80)}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}
