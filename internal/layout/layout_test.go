package layout

import (
	"strings"
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

func TestIsResticLockKey(t *testing.T) {
	lock := strings.Repeat("ab12", 16)
	cases := map[string]struct {
		reason string
		key    string
		want   bool
	}{
		"Lock":         {reason: "A lock file of one of the repository's restic repositories.", key: "team/app/repository/v1/s/c/locks/" + lock, want: true},
		"Snapshot":     {reason: "A restic snapshot file is not a lock.", key: "team/app/repository/v1/s/c/snapshots/" + lock},
		"Config":       {reason: "A restic repository's config is not a lock.", key: "team/app/repository/v1/s/c/config"},
		"ShortID":      {reason: "A lock's name is a 64-digit hex ID.", key: "team/app/repository/v1/s/c/locks/abc"},
		"UpperHex":     {reason: "restic names its files in lower-case hex.", key: "team/app/repository/v1/s/c/locks/" + strings.ToUpper(lock)},
		"Deeper":       {reason: "A lock directory nested deeper is not restic's.", key: "team/app/repository/v1/s/c/d/locks/" + lock},
		"OutsideV1":    {reason: "A locks directory outside the restic repositories is not one.", key: "team/app/manifests/s/locks/" + lock},
		"OtherRepo":    {reason: "A lock of another repository directory is not this one's.", key: "team/app-2/repository/v1/s/c/locks/" + lock},
		"EmptySession": {reason: "An empty path element is no restic repository.", key: "team/app/repository/v1//c/locks/" + lock},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, IsResticLockKey("team/app", tc.key)); diff != "" {
				t.Errorf("%s\nIsResticLockKey(%q): -want +got:\n%s", tc.reason, tc.key, diff)
			}
		})
	}
}
