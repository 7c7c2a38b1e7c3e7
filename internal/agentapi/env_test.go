package agentapi

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResticTuning(t *testing.T) {
	cases := map[string]struct {
		reason  string
		environ []string
		want    []string
	}{
		"None": {reason: "An environment without tuning variables gives none.", environ: []string{"PATH=/bin", "HOME=/root"}},
		"Tuning": {
			reason:  "Tuning variables reach restic, in the allow-list's order.",
			environ: []string{"RESTIC_READ_CONCURRENCY=4", "PATH=/bin", "RESTIC_COMPRESSION=max", "RESTIC_PACK_SIZE=64"},
			want:    []string{"RESTIC_COMPRESSION=max", "RESTIC_PACK_SIZE=64", "RESTIC_READ_CONCURRENCY=4"},
		},
		"Redirecting": {
			reason: "Variables that would redirect restic never reach it, whatever put them in the agent's environment.",
			environ: []string{"RESTIC_REPOSITORY=s3:elsewhere", "RESTIC_PASSWORD_COMMAND=cat /x", "RESTIC_CACHE_DIR=/tmp/c",
				"RESTIC_PASSWORD=x", "HTTPS_PROXY=http://proxy", "RESTIC_COMPRESSION=off"},
			want: []string{"RESTIC_COMPRESSION=off"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ResticTuning(tc.environ)); diff != "" {
				t.Errorf("%s\nResticTuning(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
