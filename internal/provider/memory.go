package provider

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"k8s.io/apimachinery/pkg/api/resource"
)

// MemoryLimitAuto takes the Go runtime's soft memory limit from the
// container: a share of its memory limit, unless GOMEMLIMIT says
// otherwise.
const MemoryLimitAuto = "auto"

// containerShare is the share of a container's memory limit the Go heap
// may grow to before the collector works harder: the rest is for the
// binary's mapped pages, stacks and what the runtime has not returned.
const containerShare = 0.9

// setMemoryLimit sets the Go runtime's soft memory limit from v: a
// quantity ("160Mi"), "off" for none, or "auto" (or empty). It returns the
// limit in bytes, math.MaxInt64 for none.
//
// Without a limit the collector lets the heap grow by its target
// percentage over what is live before it runs (setGCPercent), whatever the
// container allows. A soft limit makes it collect sooner as it nears the
// limit; past it, the collector takes at most about half the CPU rather
// than failing.
func setMemoryLimit(v string) (int64, error) {
	switch v {
	case "", MemoryLimitAuto:
		limit, err := memlimit.Set(memlimit.WithRatio(containerShare), memlimit.WithProvider(memlimit.FromCgroup))
		if err != nil {
			return 0, fmt.Errorf("cannot set memory limit from the container's: %w", err)
		}
		return limit, nil
	case "off":
		debug.SetMemoryLimit(math.MaxInt64)
		return math.MaxInt64, nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil || q.Value() <= 0 {
		return 0, fmt.Errorf("cannot parse memory limit %q: want a quantity such as 200Mi, %q or %q", v, MemoryLimitAuto, "off")
	}
	debug.SetMemoryLimit(q.Value())
	return q.Value(), nil
}

// DefaultGCPercent is the provider binary's default for how far the heap
// grows over what is live before the collector runs (the runtime's own is
// 100). The provider's live heap is mostly its cache, which lives as long
// as the process; at 100 its garbage may take as much room again on top
// of it. At 50 the collector runs about twice as often, on the CPU the
// controllers leave idle while they wait on the API server and the
// storage, and the peak stays near one and a half times what is live
// (docs/scale.md, the tenth round).
const DefaultGCPercent = 50

// setGCPercent sets the collector's target percentage, unless GOGC is set
// (the runtime has read it at start) or p is zero (the runtime's as it
// is). A negative p turns the collector off, as GOGC=off does. It returns
// the percentage in force.
func setGCPercent(p int) int {
	if p == 0 || os.Getenv("GOGC") != "" {
		sample := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(sample)
		// Off reads as the largest uint64, which converts to -1.
		return int(sample[0].Value.Uint64())
	}
	debug.SetGCPercent(p)
	return p
}
