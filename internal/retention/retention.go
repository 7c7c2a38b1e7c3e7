// Package retention decides which Snapshots a RetentionPolicy keeps. It is
// pure: the caller passes the Snapshots of one session of one
// configuration in one Repository, the policy and the time, and gets a
// decision for each Snapshot naming the rule behind it. Nothing here
// deletes anything.
//
// The precedence, first match wins:
//
//  1. a Snapshot whose backup has not finished is not judged;
//  2. a Snapshot in use (by a running restore or verification) or paused is
//     never removed: were it due to go, it waits;
//  3. the newest Verified Snapshot stays until a newer one is Verified, even
//     past maxRetentionPeriod;
//  4. a Snapshot older than maxRetentionPeriod goes;
//  5. a Succeeded Snapshot stays when a successfulSnapshots rule keeps it
//     (last, hourly, daily, weekly, monthly, yearly: any one is enough), a
//     Failed one when it is among the newest failedSnapshots.last; the rest
//     go.
package retention

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Outcome is what happened to a Snapshot's backup.
type Outcome string

// Outcomes.
const (
	Unfinished Outcome = "Unfinished"
	Succeeded  Outcome = "Succeeded"
	Failed     Outcome = "Failed"
)

// Snapshot is what the evaluation reads of one Snapshot.
type Snapshot struct {
	Name    string
	Time    time.Time
	Outcome Outcome
	// Verified: the Snapshot's last verdict is Verified.
	Verified bool
	// InUse names what uses the Snapshot now, such as
	// "restoresession demo/r1"; empty when nothing does.
	InUse  string
	Paused bool
}

// Policy is a RetentionPolicy's rules. A nil count is a rule that is not
// set; with no successful rule set at all, every Succeeded Snapshot is
// kept (only maxRetentionPeriod removes them).
type Policy struct {
	MaxRetentionPeriod Period
	// MaxRetentionPeriodText is the period as written, for messages.
	MaxRetentionPeriodText                       string
	Last, Hourly, Daily, Weekly, Monthly, Yearly *int32
	FailedLast                                   int32
}

// Rule names, as they appear in decisions, events and status.
const (
	RuleUnfinished          = "unfinished"
	RuleInUse               = "in use"
	RulePaused              = "paused"
	RuleNewestVerified      = "newest Verified"
	RuleMaxRetentionPeriod  = "maxRetentionPeriod"
	RuleNoSuccessfulRule    = "successfulSnapshots not set"
	RuleLast                = "last"
	RuleHourly              = "hourly"
	RuleDaily               = "daily"
	RuleWeekly              = "weekly"
	RuleMonthly             = "monthly"
	RuleYearly              = "yearly"
	RuleSuccessfulSnapshots = "successfulSnapshots"
	RuleFailedLast          = "failedSnapshots.last"
)

// Decision is the verdict on one Snapshot.
type Decision struct {
	Name string `json:"snapshot"`
	// Keep says the Snapshot stays.
	Keep bool `json:"keep"`
	// Rules are the rules that keep it, or the one rule that removes it.
	Rules []string `json:"rules"`
	// Waits says the Snapshot is due to go but is in use or paused: it is
	// kept for now and judged again later.
	Waits bool `json:"waits,omitempty"`
	// Note says more, for example that the newest Verified Snapshot is
	// kept past maxRetentionPeriod.
	Note string `json:"note,omitempty"`
}

// Remove says whether the Snapshot is to be removed now.
func (d Decision) Remove() bool { return !d.Keep && !d.Waits }

// Rule is the decision's rules joined, for messages.
func (d Decision) Rule() string { return strings.Join(d.Rules, ", ") }

// Evaluate decides each Snapshot's fate under the policy at now. Calendar
// buckets (hour, day, ISO week, month, year) are taken in loc. Decisions
// come newest first.
func Evaluate(p Policy, snaps []Snapshot, now time.Time, loc *time.Location) []Decision {
	if loc == nil {
		loc = time.UTC
	}
	sorted := append([]Snapshot(nil), snaps...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].Time.Equal(sorted[j].Time) {
			return sorted[i].Time.After(sorted[j].Time)
		}
		return sorted[i].Name > sorted[j].Name
	})
	kept := keepRules(p, sorted, loc)
	newestVerified := -1
	for i, s := range sorted {
		if s.Outcome == Succeeded && s.Verified {
			newestVerified = i
			break
		}
	}
	var cutoff time.Time
	if !p.MaxRetentionPeriod.Zero() {
		cutoff = p.MaxRetentionPeriod.Before(now)
	}
	failed := int32(0)
	out := make([]Decision, 0, len(sorted))
	for i, s := range sorted {
		d := Decision{Name: s.Name}
		switch {
		case s.Outcome != Succeeded && s.Outcome != Failed:
			d.Keep, d.Rules = true, []string{RuleUnfinished}
		case i == newestVerified:
			d.Keep, d.Rules = true, []string{RuleNewestVerified}
			if !cutoff.IsZero() && s.Time.Before(cutoff) {
				d.Note = fmt.Sprintf("kept past maxRetentionPeriod %s until a newer Snapshot is Verified", p.MaxRetentionPeriodText)
			}
		case !cutoff.IsZero() && s.Time.Before(cutoff):
			d.Rules = []string{RuleMaxRetentionPeriod}
		case s.Outcome == Succeeded:
			d.Rules = kept[i]
			d.Keep = len(d.Rules) > 0
			if !d.Keep {
				d.Rules = []string{RuleSuccessfulSnapshots}
			}
		default:
			failed++
			d.Keep = failed <= p.FailedLast
			d.Rules = []string{RuleFailedLast}
		}
		if !d.Keep && (s.InUse != "" || s.Paused) {
			d.Waits = true
			if s.Paused {
				d.Note = fmt.Sprintf("due to go by %s, kept while paused", d.Rule())
			} else {
				d.Note = fmt.Sprintf("due to go by %s, waits while in use by %s", d.Rule(), s.InUse)
			}
		}
		out = append(out, d)
	}
	return out
}

// bucketRule is one calendar keep rule: how many buckets it keeps and how
// it names the bucket of an instant.
type bucketRule struct {
	name   string
	count  *int32
	bucket func(time.Time) int
}

// keepRules lists, for each Succeeded Snapshot of sorted (newest first),
// the keep rules that keep it: last keeps the newest n; a calendar rule
// keeps the newest Snapshot of each of the newest n buckets that hold one.
func keepRules(p Policy, sorted []Snapshot, loc *time.Location) map[int][]string {
	out := map[int][]string{}
	rules := []bucketRule{
		{RuleLast, p.Last, nil},
		{RuleHourly, p.Hourly, func(t time.Time) int { return (t.Year()*1000+t.YearDay())*100 + t.Hour() }},
		{RuleDaily, p.Daily, func(t time.Time) int { return t.Year()*1000 + t.YearDay() }},
		{RuleWeekly, p.Weekly, func(t time.Time) int { y, w := t.ISOWeek(); return y*100 + w }},
		{RuleMonthly, p.Monthly, func(t time.Time) int { return t.Year()*100 + int(t.Month()) }},
		{RuleYearly, p.Yearly, func(t time.Time) int { return t.Year() }},
	}
	any := false
	for _, r := range rules {
		if r.count == nil {
			continue
		}
		any = true
		left, last := *r.count, -1
		for i, s := range sorted {
			if left <= 0 {
				break
			}
			if s.Outcome != Succeeded {
				continue
			}
			if r.bucket != nil {
				b := r.bucket(s.Time.In(loc))
				if b == last {
					continue
				}
				last = b
			}
			out[i] = append(out[i], r.name)
			left--
		}
	}
	if !any {
		for i, s := range sorted {
			if s.Outcome == Succeeded {
				out[i] = []string{RuleNoSuccessfulRule}
			}
		}
	}
	return out
}
