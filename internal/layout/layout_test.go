package layout

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeys(t *testing.T) {
	cases := map[string]struct {
		reason string
		got    string
		want   string
	}{
		"Repository":      {reason: "A repository's record is under its path.", got: RepositoryKey("demo/app"), want: "demo/app/repository.yaml"},
		"Snapshot":        {reason: "A snapshot's record is under the repository's snapshots/.", got: SnapshotKey("demo/app", "app-s1"), want: "demo/app/snapshots/app-s1.yaml"},
		"Restic":          {reason: "A component's restic repository is a directory per session and component.", got: ResticPrefix("demo/app", "hourly", "dump"), want: "demo/app/repository/v1/hourly/dump/"},
		"Manifest":        {reason: "A component's manifest sits beside the restic data, per snapshot.", got: ManifestKey("demo/app", "app-s1", "dump-pod-0"), want: "demo/app/manifests/app-s1/dump-pod-0.json.gz"},
		"Manifests":       {reason: "A repository's manifests share one prefix.", got: ManifestsPrefix("demo/app"), want: "demo/app/manifests/"},
		"ResticSessions":  {reason: "The restic repositories of every session lie under one prefix.", got: ResticSessionsPrefix("demo/app/"), want: "demo/app/repository/v1/"},
		"ResticConfig":    {reason: "restic's config is at the root of its repository.", got: ResticConfigKey("demo/app/repository/v1/hourly/dump/"), want: "demo/app/repository/v1/hourly/dump/config"},
		"ResticLocks":     {reason: "restic's locks, with or without the prefix's slash.", got: ResticLocksPrefix("demo/app/repository/v1/hourly/dump"), want: "demo/app/repository/v1/hourly/dump/locks/"},
		"ResticSnapshots": {reason: "restic's snapshot files.", got: ResticSnapshotsPrefix("demo/app/repository/v1/hourly/dump/"), want: "demo/app/repository/v1/hourly/dump/snapshots/"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.got); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestWithin(t *testing.T) {
	cases := map[string]struct {
		reason string
		a, b   string
		want   bool
	}{
		"Same":        {reason: "A path is within itself.", a: "app", b: "app", want: true},
		"Child":       {reason: "A subdirectory is within its parent.", a: "app/inner", b: "app", want: true},
		"SharePrefix": {reason: "A sibling whose name starts the same is not within.", a: "app-2", b: "app", want: false},
		"Parent":      {reason: "A parent is not within its child.", a: "app", b: "app/inner", want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Within(CleanPath(tc.a), CleanPath(tc.b))); diff != "" {
				t.Errorf("%s\nWithin(%q, %q): -want +got:\n%s", tc.reason, tc.a, tc.b, diff)
			}
		})
	}
}
