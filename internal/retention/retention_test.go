package retention

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"
)

// now is the injected clock of every case: a Wednesday evening.
var now = time.Date(2026, 3, 18, 20, 30, 0, 0, time.UTC)

// hourlyHistory is a Snapshot every hour at :05 for n hours before now,
// named by its age in hours ("h0" the newest).
func hourlyHistory(n int) []Snapshot {
	var out []Snapshot
	for i := 0; i < n; i++ {
		t := now.Add(-time.Duration(i) * time.Hour).Truncate(time.Hour).Add(5 * time.Minute)
		if t.After(now) {
			t = t.Add(-time.Hour)
		}
		out = append(out, Snapshot{Name: fmt.Sprintf("h%d", i), Time: t, Outcome: Succeeded})
	}
	return out
}

// dailyHistory is a Snapshot every day at 02:00 for n days before now,
// named by its age in days ("d0" today's).
func dailyHistory(n int) []Snapshot {
	var out []Snapshot
	for i := 0; i < n; i++ {
		t := time.Date(now.Year(), now.Month(), now.Day()-i, 2, 0, 0, 0, time.UTC)
		out = append(out, Snapshot{Name: fmt.Sprintf("d%d", i), Time: t, Outcome: Succeeded})
	}
	return out
}

func with(snaps []Snapshot, name string, change func(*Snapshot)) []Snapshot {
	out := append([]Snapshot(nil), snaps...)
	for i := range out {
		if out[i].Name == name {
			change(&out[i])
		}
	}
	return out
}

// summary writes each decision as "name keep|remove|wait rules".
func summary(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		verb := "keep"
		switch {
		case d.Waits:
			verb = "wait"
		case !d.Keep:
			verb = "remove"
		}
		line := fmt.Sprintf("%s %s %s", d.Name, verb, d.Rule())
		if d.Note != "" {
			line += " (" + d.Note + ")"
		}
		out = append(out, line)
	}
	return out
}

func period(t *testing.T, s string) Period {
	t.Helper()
	p, err := ParsePeriod(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvaluate(t *testing.T) {
	type args struct {
		policy Policy
		snaps  []Snapshot
	}
	cases := map[string]struct {
		reason string
		args   args
		want   []string
	}{
		"Last": {
			reason: "last keeps the newest n Succeeded Snapshots and removes the rest.",
			args:   args{policy: Policy{Last: ptr.To[int32](2)}, snaps: hourlyHistory(4)},
			want:   []string{"h0 keep last", "h1 keep last", "h2 remove successfulSnapshots", "h3 remove successfulSnapshots"},
		},
		"LastCountsOnlySucceeded": {
			reason: "A Failed Snapshot neither counts for last nor is kept by it; failedSnapshots.last keeps the newest failed.",
			args: args{policy: Policy{Last: ptr.To[int32](2), FailedLast: 1},
				snaps: with(with(hourlyHistory(5), "h0", func(s *Snapshot) { s.Outcome = Failed }), "h2", func(s *Snapshot) { s.Outcome = Failed })},
			want: []string{"h0 keep failedSnapshots.last", "h1 keep last", "h2 remove failedSnapshots.last", "h3 keep last", "h4 remove successfulSnapshots"},
		},
		"HourlyAndDailyOverThreeDaysOfHourlyBackups": {
			reason: "hourly keeps the newest of each of the last n hours; daily the newest of each of the last n days; any rule is enough.",
			args:   args{policy: Policy{Hourly: ptr.To[int32](3), Daily: ptr.To[int32](3)}, snaps: hourlyHistory(50)},
			want: func() []string {
				// h0..h2 are the three newest hours; h0 is also today's
				// newest; h21 is 23:05 of the day before, h45 23:05 of
				// the day before that.
				var out []string
				for i := 0; i < 50; i++ {
					switch i {
					case 0:
						out = append(out, "h0 keep hourly, daily")
					case 1, 2:
						out = append(out, fmt.Sprintf("h%d keep hourly", i))
					case 21, 45:
						out = append(out, fmt.Sprintf("h%d keep daily", i))
					default:
						out = append(out, fmt.Sprintf("h%d remove successfulSnapshots", i))
					}
				}
				return out
			}(),
		},
		"WeeklyMonthlyYearlyOverDailyBackups": {
			reason: "weekly buckets by ISO week, monthly by month, yearly by year, each keeping the newest of its bucket.",
			args: args{policy: Policy{Weekly: ptr.To[int32](2), Monthly: ptr.To[int32](2), Yearly: ptr.To[int32](2)},
				snaps: dailyHistory(80)},
			// 2026-03-18 is a Wednesday: d0 ends this week, d3 (Sun 15th)
			// the week before; d18 is 28 February, d77 31 December 2025.
			want: func() []string {
				var out []string
				for i := 0; i < 80; i++ {
					switch i {
					case 0:
						out = append(out, "d0 keep weekly, monthly, yearly")
					case 3:
						out = append(out, "d3 keep weekly")
					case 18:
						out = append(out, "d18 keep monthly")
					case 77:
						out = append(out, "d77 keep yearly")
					default:
						out = append(out, fmt.Sprintf("d%d remove successfulSnapshots", i))
					}
				}
				return out
			}(),
		},
		"MaxRetentionPeriodOverridesKeepRules": {
			reason: "A Snapshot older than maxRetentionPeriod goes even when a keep rule would keep it.",
			args:   args{policy: Policy{MaxRetentionPeriod: period(t, "3d"), MaxRetentionPeriodText: "3d", Last: ptr.To[int32](10)}, snaps: dailyHistory(5)},
			want:   []string{"d0 keep last", "d1 keep last", "d2 keep last", "d3 remove maxRetentionPeriod", "d4 remove maxRetentionPeriod"},
		},
		"NewestVerifiedKeptPastEveryRule": {
			reason: "The newest Verified Snapshot stays past maxRetentionPeriod and the keep rules, and the decision says so.",
			args: args{policy: Policy{MaxRetentionPeriod: period(t, "1d"), MaxRetentionPeriodText: "1d", Last: ptr.To[int32](1)},
				snaps: with(with(dailyHistory(4), "d2", func(s *Snapshot) { s.Verified = true }), "d3", func(s *Snapshot) { s.Verified = true })},
			want: []string{"d0 keep last", "d1 remove maxRetentionPeriod",
				"d2 keep newest Verified (kept past maxRetentionPeriod 1d until a newer Snapshot is Verified)", "d3 remove maxRetentionPeriod"},
		},
		"NewerVerifiedReleasesOlder": {
			reason: "Once a newer Snapshot is Verified, the older Verified one is judged by the rules like any other.",
			args: args{policy: Policy{Last: ptr.To[int32](1)},
				snaps: with(with(dailyHistory(3), "d1", func(s *Snapshot) { s.Verified = true }), "d2", func(s *Snapshot) { s.Verified = true })},
			want: []string{"d0 keep last", "d1 keep newest Verified", "d2 remove successfulSnapshots"},
		},
		"InUseAndPausedWait": {
			reason: "A Snapshot due to go that is in use or paused is kept for now and says why it waits.",
			args: args{policy: Policy{Last: ptr.To[int32](1)},
				snaps: with(with(dailyHistory(3), "d1", func(s *Snapshot) { s.InUse = "backupverificationsession demo/v1" }), "d2", func(s *Snapshot) { s.Paused = true })},
			want: []string{"d0 keep last",
				"d1 wait successfulSnapshots (due to go by successfulSnapshots, waits while in use by backupverificationsession demo/v1)",
				"d2 wait successfulSnapshots (due to go by successfulSnapshots, kept while paused)"},
		},
		"UnfinishedNotJudged": {
			reason: "A Snapshot whose backup is still running is neither counted nor removed.",
			args:   args{policy: Policy{Last: ptr.To[int32](1)}, snaps: with(dailyHistory(3), "d0", func(s *Snapshot) { s.Outcome = Unfinished })},
			want:   []string{"d0 keep unfinished", "d1 keep last", "d2 remove successfulSnapshots"},
		},
		"NoSuccessfulRuleKeepsAllSucceeded": {
			reason: "A policy that sets no successful rule keeps every Succeeded Snapshot within maxRetentionPeriod.",
			args:   args{policy: Policy{MaxRetentionPeriod: period(t, "1w"), MaxRetentionPeriodText: "1w"}, snaps: dailyHistory(9)},
			want: []string{"d0 keep successfulSnapshots not set", "d1 keep successfulSnapshots not set", "d2 keep successfulSnapshots not set",
				"d3 keep successfulSnapshots not set", "d4 keep successfulSnapshots not set", "d5 keep successfulSnapshots not set",
				"d6 keep successfulSnapshots not set", "d7 remove maxRetentionPeriod", "d8 remove maxRetentionPeriod"},
		},
		"LastZeroKeepsNoneButTheNewestVerified": {
			reason: "last: 0 keeps no Succeeded Snapshot by rule; the newest Verified one still stays.",
			args:   args{policy: Policy{Last: ptr.To[int32](0)}, snaps: with(dailyHistory(3), "d1", func(s *Snapshot) { s.Verified = true })},
			want:   []string{"d0 remove successfulSnapshots", "d1 keep newest Verified", "d2 remove successfulSnapshots"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := summary(Evaluate(tc.args.policy, tc.args.snaps, now, time.UTC))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nEvaluate(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestEvaluateInLocation(t *testing.T) {
	// 23:30 UTC on 17 March is already 18 March in Tokyo, while 14:00 UTC
	// is still the 17th there: daily buckets follow the location the
	// caller passes.
	snaps := []Snapshot{
		{Name: "late", Time: time.Date(2026, 3, 17, 23, 30, 0, 0, time.UTC), Outcome: Succeeded},
		{Name: "early", Time: time.Date(2026, 3, 17, 14, 0, 0, 0, time.UTC), Outcome: Succeeded},
	}
	tokyo := time.FixedZone("JST", 9*3600)
	want := []string{"late keep daily", "early keep daily"}
	if diff := cmp.Diff(want, summary(Evaluate(Policy{Daily: ptr.To[int32](2)}, snaps, now, tokyo))); diff != "" {
		t.Errorf("Evaluate in Tokyo: -want +got:\n%s", diff)
	}
	want = []string{"late keep daily", "early remove successfulSnapshots"}
	if diff := cmp.Diff(want, summary(Evaluate(Policy{Daily: ptr.To[int32](2)}, snaps, now, time.UTC))); diff != "" {
		t.Errorf("Evaluate in UTC: -want +got:\n%s", diff)
	}
}

func TestParsePeriod(t *testing.T) {
	type want struct {
		Before time.Time
		Err    bool
	}
	cases := map[string]struct {
		reason string
		in     string
		want   want
	}{
		"DaysAndHours": {"Days and hours count back on the calendar and the clock.", "30d12h", want{Before: time.Date(2026, 2, 16, 8, 30, 0, 0, time.UTC)}},
		"YearsMonths":  {"Years and months are calendar units, not fixed durations.", "1y1mo", want{Before: time.Date(2025, 2, 18, 20, 30, 0, 0, time.UTC)}},
		"WeeksMinutes": {"A week is seven days; m is minutes, mo months.", "2w30m", want{Before: time.Date(2026, 3, 4, 20, 0, 0, 0, time.UTC)}},
		"Empty":        {"No period is no limit: the instant is now.", "", want{Before: now}},
		"Malformed":    {"A unit the format lacks is refused.", "30days", want{Err: true}},
		"NoUnit":       {"A bare number is refused.", "30", want{Err: true}},
		"Overflow":     {"A number that overflows is refused rather than wrapping.", "99999999999999999999d", want{Err: true}},
		"TooLong":      {"A period over a thousand years is refused.", "1001y", want{Err: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePeriod(tc.in)
			got := want{Err: err != nil}
			if err == nil {
				got.Before = p.Before(now)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nParsePeriod(%q): -want +got:\n%s", tc.reason, tc.in, diff)
			}
		})
	}
}

// BenchmarkEvaluate judges 10,000 Snapshots (hourly backups for about 14
// months, every tenth failed, one in fifty verified) under a policy using
// every rule.
func BenchmarkEvaluate(b *testing.B) {
	snaps := hourlyHistory(10000)
	for i := range snaps {
		switch {
		case i%10 == 9:
			snaps[i].Outcome = Failed
		case i%50 == 7:
			snaps[i].Verified = true
		}
	}
	p := Policy{MaxRetentionPeriod: Period{Years: 1}, MaxRetentionPeriodText: "1y", Last: ptr.To[int32](24), Hourly: ptr.To[int32](48),
		Daily: ptr.To[int32](30), Weekly: ptr.To[int32](8), Monthly: ptr.To[int32](12), Yearly: ptr.To[int32](3), FailedLast: 3}
	b.ReportAllocs()
	for b.Loop() {
		if ds := Evaluate(p, snaps, now, time.UTC); len(ds) != len(snaps) {
			b.Fatalf("%d decisions for %d snapshots", len(ds), len(snaps))
		}
	}
}
