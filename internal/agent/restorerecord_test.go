package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// TestRestoreFromRecord restores with real restic from a local storage,
// read by restic directly, the restic snapshot the Snapshot's status
// records while the content manifest is read beside it: a record that
// agrees with the manifest restores and compares every file; one that
// names another restic snapshot of the repository fails the restore with
// RecordMismatch.
func TestRestoreFromRecord(t *testing.T) {
	ctx := context.Background()
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
			snap := &storagev1alpha1.Snapshot{}
			snap.Name = "app-0"
			snap.Status.Components = map[string]storagev1alpha1.Component{"dump": {Phase: storagev1alpha1.ComponentSucceeded,
				ResticStats: []storagev1alpha1.ResticStats{{Summary: &storagev1alpha1.ResticSummary{ID: tc.recorded, HostPath: src}}}}}
			if recordedRestic(snap, "dump") == nil {
				t.Fatal("the record is not one a restore takes")
			}
			res, err := lb.restoreWith(ctx, filepath.Join(t.TempDir(), "out"), snap)
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
