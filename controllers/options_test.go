package controllers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSnapshotPoll(t *testing.T) {
	cases := map[string]struct {
		reason string
		o      Options
		want   time.Duration
	}{
		"Own":     {"A Snapshot poll interval of its own is used.", Options{PollInterval: time.Minute, SnapshotPollInterval: 10 * time.Minute}, 10 * time.Minute},
		"Default": {"Without one, Snapshots are polled as the other storage kinds.", Options{PollInterval: 5 * time.Second}, 5 * time.Second},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.o.snapshotPoll()); diff != "" {
				t.Errorf("%s\nsnapshotPoll(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
