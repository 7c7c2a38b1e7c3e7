package provider

import (
	"fmt"
	"math"
	"runtime/debug"

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
// Without a limit the collector lets the heap grow to twice what is live
// before it runs, and a provider whose cache holds ten thousand Snapshots
// peaks at well over twice its live heap while they arrive
// (docs/scale.md). A soft limit makes it collect sooner as it nears the
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
