package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob/memblob"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
)

func TestSnapshotToRestore(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	other := strings.Repeat("f", 64)
	recorded := func(phase storagev1alpha1.ComponentPhase, sums ...storagev1alpha1.ResticSummary) map[string]storagev1alpha1.Component {
		c := storagev1alpha1.Component{Phase: phase}
		for i := range sums {
			c.ResticStats = append(c.ResticStats, storagev1alpha1.ResticStats{Summary: &sums[i]})
		}
		return map[string]storagev1alpha1.Component{"dump": c}
	}
	cases := map[string]struct {
		reason   string
		manifest *Manifest
		record   map[string]storagev1alpha1.Component
		want     *restic.Snapshot
		wantErr  bool
	}{
		"FromRecord": {
			reason:   "A component that recorded one restic snapshot and its paths is restored from the record; the manifest is read beside restic, not first.",
			manifest: newManifest("app-s1", "dump", id, []string{"/var/lib/app/"}, time.Unix(0, 0), nil),
			record:   recorded(storagev1alpha1.ComponentSucceeded, storagev1alpha1.ResticSummary{ID: id, HostPath: "/var/lib/app/,/etc/app"}),
			want:     &restic.Snapshot{ID: id, ShortID: id[:8], Paths: []string{"/etc/app", "/var/lib/app"}},
		},
		"FromRecordWithoutManifest": {
			reason: "The record alone finds the restic snapshot: restic's snapshots are not listed.",
			record: recorded(storagev1alpha1.ComponentSucceeded, storagev1alpha1.ResticSummary{ID: id, HostPath: "/var/lib/app"}),
			want:   &restic.Snapshot{ID: id, ShortID: id[:8], Paths: []string{"/var/lib/app"}},
		},
		"RecordOfTwoSnapshots": {
			reason:   "A record of two restic snapshots does not say which: the manifest does.",
			manifest: newManifest("app-s1", "dump", id, []string{"/var/lib/app"}, time.Unix(0, 0), nil),
			record:   recorded(storagev1alpha1.ComponentSucceeded, storagev1alpha1.ResticSummary{ID: id, HostPath: "/var/lib/app"}, storagev1alpha1.ResticSummary{ID: other, HostPath: "/var/lib/app"}),
			want:     &restic.Snapshot{ID: id, ShortID: id[:8], Paths: []string{"/var/lib/app"}},
		},
		"RecordOfAFailedBackup": {
			reason:   "A component that did not succeed is not restored from its record.",
			manifest: newManifest("app-s1", "dump", id, []string{"/var/lib/app"}, time.Unix(0, 0), nil),
			record:   recorded(storagev1alpha1.ComponentFailed, storagev1alpha1.ResticSummary{ID: other, HostPath: "/var/lib/app"}),
			wantErr:  true,
		},
		"RecordWithoutPaths": {
			reason:   "A record that names no absolute path is not enough to restore from.",
			manifest: newManifest("app-s1", "dump", id, []string{"/var/lib/app"}, time.Unix(0, 0), nil),
			record:   recorded(storagev1alpha1.ComponentSucceeded, storagev1alpha1.ResticSummary{ID: id, HostPath: "app"}),
			want:     &restic.Snapshot{ID: id, ShortID: id[:8], Paths: []string{"/var/lib/app"}},
		},
		"FromManifest": {
			reason:   "The manifest names the restic snapshot and its paths: restic's snapshot list is not needed.",
			manifest: newManifest("app-s1", "dump", id, []string{"/var/lib/app/"}, time.Unix(0, 0), nil),
			want:     &restic.Snapshot{ID: id, ShortID: id[:8], Paths: []string{"/var/lib/app"}},
		},
		"NoManifest": {
			reason:  "Without a manifest restic's snapshots are listed (here a restic that always fails).",
			wantErr: true,
		},
		"ManifestWithoutSnapshot": {
			reason:   "A manifest that names no restic snapshot is not trusted to find one.",
			manifest: newManifest("app-s1", "dump", "", []string{"/var/lib/app"}, time.Unix(0, 0), nil),
			wantErr:  true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := memblob.OpenBucket(nil)
			defer b.Close()
			snapshot := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-s1"}}
			snapshot.Status.Components = tc.record
			tgt := &target{bucket: b, password: testPassword, snapshot: snapshot, repo: &storagev1alpha1.Repository{Spec: storagev1alpha1.RepositorySpec{Path: "default/app"}}}
			if tc.manifest != nil {
				data, err := tc.manifest.Encode(testPassword)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.WriteAll(ctx, layout.ManifestKey("default/app", "app-s1", "dump"), data, nil); err != nil {
					t.Fatal(err)
				}
			}
			failing, err := restic.New(restic.Options{Binary: "/bin/false", Repository: t.TempDir(), Password: "x"})
			if err != nil {
				t.Fatal(err)
			}
			r := &Runner{Log: logr.Discard(), Options: Options{Snapshot: "app-s1", Component: "dump"}}
			found, err := r.snapshotToRestore(ctx, tgt, failing)
			got, m := found.snap, found.manifest()
			found.hashes.wait()
			// The manifest read for the lookup goes on to the comparison,
			// which then need not read it again.
			if diff := cmp.Diff(tc.manifest, m); diff != "" {
				t.Errorf("%s\nmanifest: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantErr, err != nil); diff != "" {
				t.Errorf("%s\nerror %v: -want +got:\n%s", tc.reason, err, diff)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nsnapshotToRestore(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRecordedSnapshot(t *testing.T) {
	full := "0123abcd" + strings.Repeat("e", 56)
	snap := func(ids ...string) *storagev1alpha1.Snapshot {
		s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-s1"}}
		var stats []storagev1alpha1.ResticStats
		for _, id := range ids {
			stats = append(stats, storagev1alpha1.ResticStats{Summary: &storagev1alpha1.ResticSummary{ID: id}})
		}
		s.Status.Components = map[string]storagev1alpha1.Component{"dump": {ResticStats: stats}}
		return s
	}
	cases := map[string]struct {
		reason string
		snap   *storagev1alpha1.Snapshot
		id     string
		want   string
	}{
		"Recorded":      {"the restic snapshot the backup recorded is restored", snap(full), full, ""},
		"ShortRecorded": {"a short id names the recorded one", snap(full), "0123abcd", ""},
		"NoneRecorded":  {"a component that recorded no id is not checked", snap(), "ffffffff", ""},
		"Swapped":       {"another restic snapshot than the recorded one is refused", snap(full), "ffffffff" + strings.Repeat("0", 56), ReasonRecordMismatch},
		"TooShort":      {"an id too short to tell is refused", snap(full), "0123", ReasonRecordMismatch},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := recordedSnapshot(tc.snap, "dump", tc.id)
			got := ""
			var re *reasonError
			if errors.As(err, &re) {
				got = re.reason
			} else if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
