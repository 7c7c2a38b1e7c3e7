package retention

import (
	"testing"
	"time"
)

// FuzzParsePeriod: any text either is refused or gives a period that ends
// in the past, no further back than the longest period allowed, so no
// overflow ever turns a period into one that keeps nothing or everything.
func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"", "30d12h", "1y6mo", "2w", "90m", "1000y", "1001y", "527040000h", "527040000m", "9999999999999999999d", "1y1y1y", "0d", "5x", "d"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeriod(s)
		if err != nil {
			return
		}
		before := p.Before(now)
		if before.After(now) {
			t.Fatalf("period %q (%+v) ends after now: %v", s, p, before)
		}
		if !p.Zero() && !before.Before(now) && p.Clock > 0 {
			t.Fatalf("period %q (%+v) is not empty and ends now", s, p)
		}
		if before.Before(now.AddDate(-maxPeriodYears-2, 0, 0)) {
			t.Fatalf("period %q (%+v) reaches past %d years: %v", s, p, maxPeriodYears, before)
		}
	})
}
