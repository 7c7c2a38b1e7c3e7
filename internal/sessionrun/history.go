package sessionrun

import (
	"slices"
	"strings"
	"time"
)

// Ended is when a finished run ended: its creation plus the duration its
// status records, or now when it records none yet.
func Ended(created time.Time, duration string, now time.Time) time.Time {
	d, err := time.ParseDuration(duration)
	if duration == "" || err != nil {
		return now
	}
	return created.Add(d)
}

// RetryAt is when a failed run is retried: delay after it ended, for every
// kind of session alike.
func RetryAt(created time.Time, duration string, delay time.Duration, now time.Time) time.Time {
	return Ended(created, duration, now).Add(delay)
}

// Run is what the history rule knows of one finished run.
type Run struct {
	Name    string
	Created time.Time
	// Skipped runs gave no result and are counted apart from those that
	// did (Succeeded, Failed), so that skipped runs never push out the
	// run that last gave one.
	Skipped bool
	// Keep marks a run never deleted: the run that cleans, a failed run
	// whose retry is still to come, a verification a Snapshot names as the
	// one that gave its verdict.
	Keep bool
}

// BeyondHistory names the finished runs beyond limit, newest kept, runs
// that gave a result and skipped runs counted apart, never one marked Keep.
func BeyondHistory(runs []Run, limit int) []string {
	var judged, skipped []Run
	for _, r := range runs {
		if r.Skipped {
			skipped = append(skipped, r)
		} else {
			judged = append(judged, r)
		}
	}
	var out []string
	for _, finished := range [][]Run{judged, skipped} {
		slices.SortFunc(finished, func(a, b Run) int {
			if c := b.Created.Compare(a.Created); c != 0 {
				return c
			}
			return strings.Compare(b.Name, a.Name)
		})
		for i, r := range finished {
			if i >= limit && !r.Keep {
				out = append(out, r.Name)
			}
		}
	}
	return out
}
