package naming

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The inputs of the golden names: a short name, one of 65 characters (over
// every limit of 63) and one of 244 (near the limit of 253).
var (
	long  = strings.Repeat("a", 60) + "-tail"
	vlong = strings.Repeat("b", 240) + "-end"
)

// TestNamesStayTheSame pins the names of objects that clusters and backends
// already hold: a rule that moves here must give the very same bytes, or
// an upgraded controller would no longer find what it made before.
func TestNamesStayTheSame(t *testing.T) {
	cases := map[string]struct {
		reason string
		got    string
		want   string
	}{
		"SessionName": {
			reason: "A scheduled BackupSession is the configuration, the session and the Unix time.",
			got:    SessionName("app", "hourly", 1700000000),
			want:   "app-hourly-1700000000",
		},
		"SnapshotName": {
			reason: "A run's Snapshot is the repository and the session.",
			got:    SnapshotName("app", "app-hourly-1700000000"),
			want:   "app-app-hourly-1700000000",
		},
		"ConfigurationServiceAccount": {
			reason: "A short configuration's account is its name and -stashplane.",
			got:    ConfigurationServiceAccount("app"),
			want:   "app-stashplane",
		},
		"ConfigurationServiceAccountLong": {
			reason: "A long configuration's account is cut and ends with a hash.",
			got:    ConfigurationServiceAccount(long),
			want:   strings.Repeat("a", 43) + "-3369780b-stashplane",
		},
		"ConfigurationCronJob": {
			reason: "A session's CronJob is the configuration and the session.",
			got:    ConfigurationCronJob("app", "hourly"),
			want:   "app-hourly",
		},
		"ConfigurationCronJobLong": {
			reason: "A long CronJob name is cut to 52 characters with a hash.",
			got:    ConfigurationCronJob(long, "hourly"),
			want:   strings.Repeat("a", 43) + "-7fade5a4",
		},
		"ConfigurationGrant": {
			reason: "A configuration's Role in another namespace carries its namespace and name.",
			got:    ConfigurationGrant("team", "app"),
			want:   "team.app-backup",
		},
		"ConfigurationGrantLong": {
			reason: "A long one is cut to 253 characters with a hash.",
			got:    ConfigurationGrant("team", vlong),
			want:   "team." + strings.Repeat("b", 232) + "-bf74877e-backup",
		},
		"ConfigurationStorageSecret": {
			reason: "A configuration's copy of a storage Secret names the configuration and the storage.",
			got:    ConfigurationStorageSecret("app", "platform", "shared"),
			want:   "app.platform.shared-storage",
		},
		"ConfigurationStorageSecretLong": {
			reason: "A long one is cut to 253 characters with a hash.",
			got:    ConfigurationStorageSecret(vlong, "platform", "shared"),
			want:   strings.Repeat("b", 236) + "-82d7dbd5-storage",
		},
		"RestoreServiceAccount": {
			reason: "A restore's account is its name and -restore.",
			got:    RestoreServiceAccount("app-restore-1"),
			want:   "app-restore-1-restore",
		},
		"RestoreGrant": {
			reason: "A restore's Role in another namespace carries its namespace and name.",
			got:    RestoreGrant("team", "app-restore-1"),
			want:   "team.app-restore-1-restore",
		},
		"RestoreStorageSecret": {
			reason: "A restore's copy of a storage Secret is its name and -storage.",
			got:    RestoreStorageSecret("app-restore-1"),
			want:   "app-restore-1-storage",
		},
		"VerifierServiceAccount": {
			reason: "A verifier's account is its name and -verifier.",
			got:    VerifierServiceAccount("nightly"),
			want:   "nightly-verifier",
		},
		"VerifierServiceAccountLong": {
			reason: "A long one is cut with a hash.",
			got:    VerifierServiceAccount(long),
			want:   strings.Repeat("a", 45) + "-3369780b-verifier",
		},
		"VerifierCronJob": {
			reason: "A verifier's CronJob is its name and -verify.",
			got:    VerifierCronJob("nightly"),
			want:   "nightly-verify",
		},
		"VerifierCronJobLong": {
			reason: "A long one is cut to 52 characters with a hash.",
			got:    VerifierCronJob(long),
			want:   strings.Repeat("a", 36) + "-3369780b-verify",
		},
		"VerifyLock": {
			reason: "A Snapshot's verification lock is the prefix and the Snapshot's name.",
			got:    VerifyLock("app-app-hourly-1700000000"),
			want:   "stashplane-verify-app-app-hourly-1700000000",
		},
		"VerifyLockLong": {
			reason: "A long one is cut to 253 characters with a hash of the Snapshot's name.",
			got:    VerifyLock(vlong),
			want:   "stashplane-verify-" + strings.Repeat("b", 226) + "-39e4e770",
		},
		"ScratchClaim": {
			reason: "A scratch claim is the target and a hash of the session.",
			got:    ScratchClaim("scratch", "repo-1700000000"),
			want:   "scratch-d456a1a9",
		},
		"ScratchClaimLong": {
			reason: "A long target is cut so that the claim fits 63 characters.",
			got:    ScratchClaim(long, "repo-1700000000"),
			want:   strings.Repeat("a", 54) + "-d456a1a9",
		},
		"VerificationRetry": {
			reason: "A retry is the first session, -retry- and the retries left.",
			got:    VerificationRetry("app-verify-1700000000", 2),
			want:   "app-verify-1700000000-retry-2",
		},
		"PruneJob": {
			reason: "A Repository's prune Job is its name and -prune.",
			got:    PruneJob("app"),
			want:   "app-prune",
		},
		"PruneJobLong": {
			reason: "A long Repository name is cut so that the Job's name fits a label value.",
			got:    PruneJob(long),
			want:   strings.Repeat("a", 48) + "-3369780b-prune",
		},
		"HookJob": {
			reason: "A Function hook's Job is the session, the side, the hook and the attempt.",
			got:    HookJob("run-1", "pre", "dump", 2),
			want:   "run-1-pre-dump-2",
		},
		"HookJobLong": {
			reason: "A long session and hook are cut so that the Job's name fits 63 characters.",
			got:    HookJob("a-very-long-configuration-name-nightly-1764676800", "post", "release-the-database-writes", 3),
			want:   "a-very-long-configuration-name-nightly-1764676800-po-991d3296-3",
		},
		"Bound": {
			reason: "A name that fits is left alone.",
			got:    Bound("dump-ip-10-0-0-1.eu-west-1.compute.internal.pool", "", MaxLabelValue),
			want:   "dump-ip-10-0-0-1.eu-west-1.compute.internal.pool",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.got); diff != "" {
				t.Errorf("\n%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestNamesThatCouldCollide covers the names whose rule changed because two
// inputs could get one name.
func TestNamesThatCouldCollide(t *testing.T) {
	cases := map[string]struct {
		reason string
		a, b   string
	}{
		"RestoreServiceAccount": {
			reason: "Two long RestoreSessions (a verification's, say) that differ after the cut get their own ServiceAccounts; the name was cut without a hash.",
			a:      RestoreServiceAccount(long),
			b:      RestoreServiceAccount(long + "x"),
		},
		"VerificationRetry": {
			reason: "A retry of a long session still fits an object name, and two long chains keep their own names.",
			a:      VerificationRetry(vlong+"-xxxxxx", 3),
			b:      VerificationRetry(vlong+"-yyyyyy", 3),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.a == tc.b {
				t.Errorf("\n%s\nboth are %q", tc.reason, tc.a)
			}
			for _, n := range []string{tc.a, tc.b} {
				if len(n) > MaxObjectName {
					t.Errorf("\n%s\n%q is %d characters long", tc.reason, n, len(n))
				}
			}
		})
	}
	if got := RestoreServiceAccount(long); len(got) > MaxLabelValue {
		t.Errorf("RestoreServiceAccount(%q) = %q, longer than %d", long, got, MaxLabelValue)
	}

}

func TestBound(t *testing.T) {
	long := "a-very-long-backup-configuration-name-that-goes-on-and-on"
	cases := map[string]struct {
		reason string
		base   string
		suffix string
		max    int
		want   int
	}{
		"Short":      {reason: "A name that fits is kept whole.", base: "app", suffix: "-nightly", max: 52, want: len("app-nightly")},
		"Long":       {reason: "A name that does not fit is cut to the limit.", base: long + "-nightly", max: 52, want: 52},
		"LongSuffix": {reason: "The suffix survives the cut.", base: long, suffix: "-stashplane", max: 63, want: 63},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Bound(tc.base, tc.suffix, tc.max)
			if diff := cmp.Diff(tc.want, len(got)); diff != "" {
				t.Errorf("%s\nlen(Bound(...)) = %q: -want +got:\n%s", tc.reason, got, diff)
			}
		})
	}
	if Bound(long+"-nightly", "", 52) == Bound(long+"-weekly", "", 52) {
		t.Errorf("Bound gives two different bases the same name")
	}
}
