package agent

import "time"

// phases times the steps of a run for its "backup phases" or "restore
// phases" log line: each mark ends the step it names, so the steps add up
// to the run. Where the time of a slow run went shows without a profiler.
type phases struct {
	last  time.Time
	steps []any
}

// mark ends the step named step now. A nil recorder records nothing.
func (p *phases) mark(step string) {
	if p == nil {
		return
	}
	now := time.Now()
	p.steps = append(p.steps, step, now.Sub(p.last).Round(time.Millisecond).String())
	p.last = now
}

func (p *phases) keysAndValues() []any {
	if p == nil {
		return nil
	}
	self, children := cpuSpent()
	return append(p.steps, "agentCPU", self.Round(time.Millisecond).String(), "resticCPU", children.Round(time.Millisecond).String())
}
