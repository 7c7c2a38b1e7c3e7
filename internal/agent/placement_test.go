package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlacement(t *testing.T) {
	type landing struct{ BackedUp, At, Back string }
	cases := map[string]struct {
		reason string
		opts   Options
		roots  []string
		paths  []string
		want   []landing
	}{
		"InPlace": {
			reason: "Without --target or --into each path is restored where it was backed up.",
			roots:  []string{"/var/lib/app"},
			paths:  []string{"/var/lib/app/a.db"},
			want:   []landing{{"/var/lib/app/a.db", "/var/lib/app/a.db", "/var/lib/app/a.db"}},
		},
		"Target": {
			reason: "With --target each path keeps its whole path under the target.",
			opts:   Options{Target: "/restore"},
			roots:  []string{"/var/lib/app"},
			paths:  []string{"/var/lib/app/a.db"},
			want:   []landing{{"/var/lib/app/a.db", "/restore/var/lib/app/a.db", "/var/lib/app/a.db"}},
		},
		"IntoOneRoot": {
			reason: "With --into, a workload's one backed-up path lands at the claim's mount, whatever the path was.",
			opts:   Options{Into: "/stashplane/data"},
			roots:  []string{"/source/data/"},
			paths:  []string{"/source/data/a.db", "/source/data/sub/b", "/source/data"},
			want: []landing{
				{"/source/data/a.db", "/stashplane/data/a.db", "/source/data/a.db"},
				{"/source/data/sub/b", "/stashplane/data/sub/b", "/source/data/sub/b"},
				{"/source/data", "/stashplane/data", "/source/data"},
			},
		},
		"IntoSameRoot": {
			reason: "A claim backed up at the mount path it is restored at lands where it was, as before --into existed.",
			opts:   Options{Into: "/stashplane/data"},
			roots:  []string{"/stashplane/data"},
			paths:  []string{"/stashplane/data/x"},
			want:   []landing{{"/stashplane/data/x", "/stashplane/data/x", "/stashplane/data/x"}},
		},
		"IntoSeveralRoots": {
			reason: "With --into and several backed-up paths, each keeps its path under the directory, so none overwrites another.",
			opts:   Options{Into: "/stashplane/data"},
			roots:  []string{"/var/lib/app", "/etc/app"},
			paths:  []string{"/var/lib/app/a.db", "/etc/app/conf"},
			want: []landing{
				{"/var/lib/app/a.db", "/stashplane/data/var/lib/app/a.db", "/var/lib/app/a.db"},
				{"/etc/app/conf", "/stashplane/data/etc/app/conf", "/etc/app/conf"},
			},
		},
		"IntoSiblingPrefix": {
			reason: "A path that only shares a prefix with the root is not under it.",
			opts:   Options{Into: "/stashplane/data"},
			roots:  []string{"/data"},
			paths:  []string{"/data2/x"},
			want:   []landing{{"/data2/x", "/data2/x", "/data2/x"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pl := placementFor(tc.opts, tc.roots)
			var got []landing
			for _, p := range tc.paths {
				at := pl.at(p)
				got = append(got, landing{p, at, pl.backedUp(at)})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nplacement: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
