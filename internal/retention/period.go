package retention

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// maxPeriodYears bounds a maxRetentionPeriod: a longer one is a typing
// mistake, and one that overflows time arithmetic would keep nothing.
const maxPeriodYears = 1000

// maxClockYears bounds the hours and minutes of a period, which are kept
// as a time.Duration (at most about 292 years): longer spans are written
// in y, mo, w or d.
const maxClockYears = 200

var periodPart = regexp.MustCompile(`([0-9]+)(y|mo|w|d|h|m)`)

// Period is a maxRetentionPeriod: calendar years, months and days, and
// clock hours and minutes.
type Period struct {
	Years, Months, Days int
	Clock               time.Duration
}

// ParsePeriod reads a period written as numbers with the units y, mo, w, d,
// h and m, such as "30d12h" or "1y6mo". The empty string is no period.
func ParsePeriod(s string) (Period, error) {
	var p Period
	if s == "" {
		return p, nil
	}
	var clockMinutes int64
	rest := s
	for rest != "" {
		m := periodPart.FindStringSubmatchIndex(rest)
		if m == nil || m[0] != 0 {
			return Period{}, fmt.Errorf("cannot parse period %q: want numbers with the units y, mo, w, d, h or m, such as 30d12h", s)
		}
		n, err := strconv.Atoi(rest[m[2]:m[3]])
		if err != nil || n > maxPeriodYears*366*24*60 {
			return Period{}, fmt.Errorf("cannot parse period %q: %q is too large", s, rest[m[0]:m[1]])
		}
		switch rest[m[4]:m[5]] {
		case "y":
			p.Years += n
		case "mo":
			p.Months += n
		case "w":
			p.Days += 7 * n
		case "d":
			p.Days += n
		case "h":
			clockMinutes += int64(n) * 60
		case "m":
			clockMinutes += int64(n)
		}
		if clockMinutes > maxClockYears*366*24*60 {
			return Period{}, fmt.Errorf("cannot parse period %q: its hours and minutes make more than %d years; write long periods in y, mo, w or d", s, maxClockYears)
		}
		rest = rest[m[1]:]
	}
	p.Clock = time.Duration(clockMinutes) * time.Minute
	if p.Years+p.Months/12+p.Days/365+int(p.Clock/(365*24*time.Hour)) > maxPeriodYears {
		return Period{}, fmt.Errorf("cannot parse period %q: it is longer than %d years", s, maxPeriodYears)
	}
	return p, nil
}

// Zero says whether the period is empty (no limit).
func (p Period) Zero() bool { return p == Period{} }

// Before is the instant the period ends at, counted back from now.
func (p Period) Before(now time.Time) time.Time {
	return now.AddDate(-p.Years, -p.Months, -p.Days).Add(-p.Clock)
}
