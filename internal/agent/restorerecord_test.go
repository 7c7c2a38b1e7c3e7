package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/restic"
)

// TestRestoreFromRecord restores with real restic from a local storage,
// read by restic directly, the restic snapshot the Snapshot's status
// records while the content manifest is read beside it: a record that
// agrees with the manifest restores and compares every file; one that
// names another restic snapshot of the repository fails the restore with
// RecordMismatch.
func TestRestoreFromRecord(t *testing.T) {
	ctx := context.Background()
	src := twoFiles(t)
	lb := newLocalBackup(t, src, logr.Discard())
	var ids []string
	for i := range 2 {
		if _, err := lb.run(ctx, i); err != nil {
			t.Fatal(err)
		}
		m, err := lb.manifest(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ResticSnapshot)
	}
	cases := map[string]struct {
		reason   string
		recorded string
		want     string
		checked  int
	}{
		"Agrees":    {reason: "The recorded restic snapshot is the manifest's: every file is restored and compared.", recorded: ids[0], checked: 2},
		"Disagrees": {reason: "The record names another restic snapshot than the manifest: the restore fails.", recorded: ids[1], want: ReasonRecordMismatch},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			snap := recordOf(tc.recorded, src)
			if recordedRestic(snap, "dump") == nil {
				t.Fatal("the record is not one a restore takes")
			}
			res, err := lb.restoreWith(ctx, filepath.Join(t.TempDir(), "out"), snap, nil)
			var got string
			var re *reasonError
			if errors.As(err, &re) {
				got = re.reason
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]any{tc.want, tc.checked}, []any{got, int(res.filesChecked)}); diff != "" {
				t.Errorf("\n%s\nreason and files compared: -want +got:\n%s (error: %v)", tc.reason, diff, err)
			}
		})
	}
}

// TestVerifyRestoreAgainstRecord: a restore that took its restic snapshot
// from the Snapshot's record compares files only with a manifest of that
// same snapshot and paths, however late the manifest was read; one that
// did not (no record) leaves a manifest of another snapshot uncompared, as
// before.
func TestVerifyRestoreAgainstRecord(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	m := newManifest("app-0", "dump", id, []string{"/data/"}, time.Unix(0, 0), []ManifestFile{{Path: "/data/a", Size: 5, BLAKE3: sum("alpha")}})
	other := strings.Repeat("f", 64)
	cases := map[string]struct {
		reason string
		record *restic.Snapshot
		want   string
	}{
		"SameRecord":   {reason: "The manifest names the recorded snapshot and paths: files are compared.", record: &restic.Snapshot{ID: id, ShortID: id[:8], Paths: []string{"/data"}}},
		"OtherPaths":   {reason: "The manifest names other paths than the record: the restore fails.", record: &restic.Snapshot{ID: id, ShortID: id[:8], Paths: []string{"/srv"}}, want: ReasonRecordMismatch},
		"OtherRestic":  {reason: "The manifest names another restic snapshot than the record: the restore fails.", record: &restic.Snapshot{ID: other, ShortID: other[:8], Paths: []string{"/data"}}, want: ReasonRecordMismatch},
		"NoRecordUsed": {reason: "Without a record the restore took the manifest's own snapshot: nothing to disagree with."},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			target := t.TempDir()
			writeTree(t, target, map[string]string{"data/a": "alpha"})
			r := &Runner{Log: logr.Discard(), Options: Options{Snapshot: "app-0", Component: "dump", Target: target}}
			hashes := newPendingHasher(placement{target: target})
			defer hashes.wait()
			hashes.abandon()
			restored := id
			if tc.record != nil {
				restored = tc.record.ID
			}
			res := &restoreResult{}
			err := r.verifyRestore(context.Background(), nil, m, []string{"/data"}, restored, tc.record, true, res, hashes, &phases{})
			got := ""
			var re *reasonError
			if errors.As(err, &re) {
				got = re.reason
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("\n%s\nreason: -want +got:\n%s (error: %v)", tc.reason, diff, err)
			}
		})
	}
}

// twoFiles writes a.txt and sub/b.txt into a new directory and returns it.
func twoFiles(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	for name, body := range map[string]string{"a.txt": "first", "sub/b.txt": "second"} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// recordOf is Snapshot app-0 as its backup's Job records it: restic
// snapshot id of src.
func recordOf(id, src string) *storagev1alpha1.Snapshot {
	snap := &storagev1alpha1.Snapshot{}
	snap.Name = "app-0"
	// A size, as the backup records one: the restore hashes its files
	// after restic (hashAfterRestic) on any machine.
	snap.Status.Components = map[string]storagev1alpha1.Component{"dump": {Phase: storagev1alpha1.ComponentSucceeded, Size: "1 KiB",
		ResticStats: []storagev1alpha1.ResticStats{{Summary: &storagev1alpha1.ResticSummary{ID: id, HostPath: src}}}}}
	return snap
}
