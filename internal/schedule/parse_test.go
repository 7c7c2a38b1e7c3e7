package schedule

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/robfig/cron/v3"
)

func TestParse(t *testing.T) {
	from := time.Date(2026, 12, 2, 10, 30, 0, 0, time.UTC)
	cases := map[string]struct {
		reason   string
		schedule string
		wantErr  string
		wantNext time.Time
	}{
		"FiveFields": {"a CronJob schedule", "0 2 * * *", "", time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)},
		"Descriptor": {"a descriptor CronJobs accept", "@daily", "", time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)},
		"Spaces":     {"surrounding spaces are dropped", " 45 * * * * ", "", time.Date(2026, 12, 2, 10, 45, 0, 0, time.UTC)},
		"Every":      {"@every is not a CronJob schedule", "@every 1h", "@every is not a CronJob schedule", time.Time{}},
		"TZ":         {"a time zone belongs in timeZone", "TZ=Europe/Paris 0 2 * * *", "set the scheduler's timeZone", time.Time{}},
		"CronTZ":     {"CRON_TZ too", "CRON_TZ=UTC 0 2 * * *", "set the scheduler's timeZone", time.Time{}},
		"SixFields":  {"seconds are not a CronJob field", "0 0 2 * * *", "expected exactly 5 fields", time.Time{}},
		"OutOfRange": {"minute 60 does not exist", "60 * * * *", "end of range (60) above maximum (59)", time.Time{}},
		"Empty":      {"an empty schedule", "", "empty spec string", time.Time{}},
		"FebThirty":  {"a date that never comes parses; Next says never (zero)", "0 0 30 2 *", "", time.Time{}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Parse(tc.schedule)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && !strings.Contains(got, tc.wantErr) {
				t.Fatalf("%s: Parse(%q) error %q, want one holding %q", tc.reason, tc.schedule, got, tc.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.wantNext, s.Next(from)); diff != "" {
				t.Errorf("%s: Next: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// FuzzParse: whatever the schedule, Parse returns; what it accepts the API
// server's CronJob validation parses too (cron's standard parser) and
// carries no time zone, and its next run is after the time asked about or
// never (zero), so a configuration's next run is always answerable.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0 2 * * *", "@daily", "@every 1h", "TZ=UTC 0 2 * * *", "*/5 * * * *", "0 0 30 2 *",
		"59 23 31 12 7", "0-59/7 1,2,3 ? * MON-FRI", "@yearly", "", " ", "0 0 * * 8", "1-0 * * * *", "*/0 * * * *"} {
		f.Add(s)
	}
	from := time.Date(2026, 12, 2, 10, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, schedule string) {
		s, err := Parse(schedule)
		if err != nil {
			return
		}
		if _, err := cron.ParseStandard(strings.TrimSpace(schedule)); err != nil {
			t.Fatalf("Parse(%q) accepts what a CronJob refuses: %v", schedule, err)
		}
		if strings.Contains(schedule, "TZ=") {
			t.Fatalf("Parse(%q) accepts a time zone in the schedule", schedule)
		}
		if next := s.Next(from); !next.IsZero() && !next.After(from) {
			t.Fatalf("Parse(%q): next run %s is not after %s", schedule, next, from)
		}
	})
}
