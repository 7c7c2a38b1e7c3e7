package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gocloud.dev/blob/fileblob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// ledgerTarget is a component's restic repository in a directory, as the
// agent sees it through its storage.
func ledgerTarget(t *testing.T) (*target, string) {
	t.Helper()
	dir := t.TempDir()
	b, err := fileblob.OpenBucket(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	repo := &storagev1alpha1.Repository{}
	repo.Spec.Path = "default/app"
	tgt := &target{bucket: b, repo: repo, session: "nightly", resticPath: layout.ResticPrefix("default/app", "nightly", "dump")}
	return tgt, filepath.Join(dir, filepath.FromSlash(tgt.resticPath))
}

// TestStartCheck: restic's structural check runs beside a backup unless
// the repository was just created or its ledger still stands. The restic
// of these cases is /bin/false, so a check that runs fails.
func TestStartCheck(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	files := map[string]int64{"data/ab/ab01": 5, "data/cd/cd02": 7, "index/ef03": 3}
	type want struct {
		ran  bool
		base *ledger
	}
	cases := map[string]struct {
		reason  string
		created bool
		// ledger is written before the check; nil writes none.
		ledger *ledger
		// change alters the repository after the ledger was taken.
		change func(t *testing.T, dir string)
		want   want
	}{
		"Created": {
			reason:  "A repository this run created holds nothing to build on: no check, and an empty ledger to start from.",
			created: true,
			want:    want{base: &ledger{Files: map[string]int64{}}},
		},
		"NoLedger": {
			reason: "Without a ledger restic's check runs.",
			want:   want{ran: true},
		},
		"LedgerHolds": {
			reason: "Every file the ledger names is there with its size: the check's verdict stands and restic is not run.",
			ledger: &ledger{Checked: now.Add(-time.Hour), Files: files},
			want:   want{base: &ledger{Checked: now.Add(-time.Hour), Files: files}},
		},
		"Added": {
			reason: "Files added since (a later backup's packs) and snapshots forgotten leave the verdict standing.",
			ledger: &ledger{Checked: now.Add(-time.Hour), Files: files},
			change: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "data/12/1234"), "fresh")
				if err := os.Remove(filepath.Join(dir, "snapshots/s1")); err != nil {
					t.Fatal(err)
				}
			},
			want: want{base: &ledger{Checked: now.Add(-time.Hour), Files: files}},
		},
		"PackLost": {
			reason: "A pack the check vouched for is gone: restic's check runs (and heal repairs).",
			ledger: &ledger{Checked: now.Add(-time.Hour), Files: files},
			change: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "data/cd/cd02")); err != nil {
					t.Fatal(err)
				}
			},
			want: want{ran: true},
		},
		"IndexChanged": {
			reason: "An index file whose size changed: restic's check runs.",
			ledger: &ledger{Checked: now.Add(-time.Hour), Files: files},
			change: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "index/ef03"), "longer") },
			want:   want{ran: true},
		},
		"Old": {
			reason: "A verdict older than a day does not stand, whatever the files say.",
			ledger: &ledger{Checked: now.Add(-ledgerMaxAge - time.Minute), Files: files},
			want:   want{ran: true},
		},
		"Future": {
			reason: "Nor does one dated more than a day ahead (a clock set wrong).",
			ledger: &ledger{Checked: now.Add(ledgerMaxAge + time.Hour), Files: files},
			want:   want{ran: true},
		},
		"Garbage": {
			reason: "A ledger that does not parse is no ledger.",
			ledger: &ledger{},
			want:   want{ran: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tgt, dir := ledgerTarget(t)
			writeFile(t, filepath.Join(dir, "config"), "c")
			writeFile(t, filepath.Join(dir, "snapshots/s1"), "s")
			writeFile(t, filepath.Join(dir, "data/ab/ab01"), "01234")
			writeFile(t, filepath.Join(dir, "data/cd/cd02"), "0123456")
			writeFile(t, filepath.Join(dir, "index/ef03"), "idx")
			if tc.ledger != nil {
				b, _ := json.Marshal(tc.ledger)
				if err := tgt.bucket.WriteAll(ctx, layout.LedgerKey("default/app", "nightly", "dump"), b, nil); err != nil {
					t.Fatal(err)
				}
			}
			if tc.change != nil {
				tc.change(t, dir)
			}
			failing, err := restic.New(restic.Options{Binary: "/bin/false", Repository: dir, Password: "x"})
			if err != nil {
				t.Fatal(err)
			}
			r := &Runner{Log: logr.Discard(), Options: Options{Component: "dump"}}
			res := startCheckOf(ctx, r, tgt, failing, tc.created).wait()
			got := want{ran: res.err != nil, base: res.base}
			if got.base != nil && tc.ledger == nil {
				got.base.Checked = time.Time{}
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestLedgerAfterCheck: a check that passes vouches for what it saw, the
// backup's ledger adds what the backup stored, and the next backup of the
// same repository runs no check. A pack lost after that runs it again, and
// restic's check finds the loss.
func TestLedgerAfterCheck(t *testing.T) {
	ctx := context.Background()
	tgt, dir := ledgerTarget(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), "the data a backup builds on")
	rc, err := restic.New(restic.Options{Binary: servers.Binary(t, "restic"), Repository: dir, Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Backup(ctx, restic.BackupOptions{Paths: []string{src}, Host: "h"}, nil); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Log: logr.Discard(), Options: Options{Component: "dump"}}
	res := startCheckOf(ctx, r, tgt, rc, false).wait()
	if res.err != nil || res.sum == nil || res.base == nil {
		t.Fatalf("the first check: err %v, summary %v, ledger %v; want a passing check and a ledger", res.err, res.sum, res.base)
	}
	seen, err := listLedger(ctx, tgt.bucket, tgt.resticPath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seen, res.base.Files); diff != "" || len(seen) < 2 {
		t.Errorf("the check's ledger is not what storage held (%d files): -storage +ledger:\n%s", len(seen), diff)
	}

	// The backup adds a pack; its ledger holds it too.
	writeFile(t, filepath.Join(src, "b.txt"), "more data, in a pack of its own")
	if _, err := rc.Backup(ctx, restic.BackupOptions{Paths: []string{src}, Host: "h"}, nil); err != nil {
		t.Fatal(err)
	}
	r.writeLedger(ctx, tgt, res.base, "app-s2", "", true, "d1")
	written, err := readLedger(ctx, tgt.bucket, layout.LedgerKey("default/app", "nightly", "dump"))
	if err != nil || written == nil {
		t.Fatalf("the ledger was not written: %v", err)
	}
	after, err := listLedger(ctx, tgt.bucket, tgt.resticPath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(after, written.Files); diff != "" || len(after) <= len(seen) {
		t.Errorf("the ledger after the backup is not what storage holds: -storage +ledger:\n%s", diff)
	}
	if written.Manifest != "app-s2" || !written.QuietNext || written.Source != "d1" {
		t.Errorf("the ledger names manifest %q (quietNext %v, source %q), want app-s2's, quietNext, d1", written.Manifest, written.QuietNext, written.Source)
	}
	if !written.Checked.Equal(res.base.Checked) {
		t.Errorf("the ledger's check time moved from %s to %s without a check", res.base.Checked, written.Checked)
	}

	failing, err := restic.New(restic.Options{Binary: "/bin/false", Repository: dir, Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if res := startCheckOf(ctx, r, tgt, failing, false).wait(); res.err != nil || res.base == nil {
		t.Errorf("the next backup ran restic's check (%v) though its ledger stands", res.err)
	}

	// Storage loses a pack: the ledger no longer stands, and restic's
	// check, run again, reports the pack missing.
	var lost string
	for k := range after {
		if filepath.Dir(filepath.Dir(k)) == "data" {
			lost = k
			break
		}
	}
	if err := os.Remove(filepath.Join(dir, lost)); err != nil {
		t.Fatal(err)
	}
	res = startCheckOf(ctx, r, tgt, rc, false).wait()
	if res.err == nil || res.sum == nil || len(res.sum.MissingPacks) == 0 || res.base != nil {
		t.Errorf("after pack %s was lost: check err %v, summary %+v, ledger %v; want restic's check to run and name the pack", lost, res.err, res.sum, res.base)
	}
}

// writeFile writes a file, making its directory.
func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, p, data)
}

// startCheckOf starts the check as a backup does, with the component's
// ledger read first.
func startCheckOf(ctx context.Context, r *Runner, tgt *target, rc *restic.Restic, created bool) *pendingCheck {
	var l *ledger
	var lerr error
	if !created {
		l, lerr = readLedger(ctx, tgt.bucket, layout.LedgerKey(tgt.repo.Spec.Path, tgt.session, r.Options.Component))
	}
	return r.startCheck(ctx, tgt, rc, created, l, lerr)
}

func TestUnchangedSincePrevious(t *testing.T) {
	const parent = "1111111111111111111111111111111111111111111111111111111111111111"
	a := ManifestFile{Path: "/src/a", Size: 1, BLAKE3: "aa"}
	b := ManifestFile{Path: "/src/b", Size: 2, BLAKE3: "bb"}
	prev := &previousManifest{files: map[string]ManifestFile{a.Path: a, b.Path: b}, resticSnapshot: parent}
	cases := map[string]struct {
		reason    string
		prev      *previousManifest
		parent    string
		unchanged []string
		want      map[string]ManifestFile
	}{
		"Unchanged": {
			reason:    "The files restic found unchanged against the manifest's own snapshot keep their entries.",
			prev:      prev,
			parent:    parent,
			unchanged: []string{"/src/a", "/src/new"},
			want:      map[string]ManifestFile{a.Path: a},
		},
		"NoParent": {
			reason:    "Without a parent named, restic's own choice may be another snapshot: nothing is taken.",
			prev:      prev,
			unchanged: []string{"/src/a"},
		},
		"OtherSnapshot": {
			reason:    "A manifest that describes another restic snapshot than the parent (a ledger pointing elsewhere) gives nothing.",
			prev:      &previousManifest{files: prev.files, resticSnapshot: "2222222222222222222222222222222222222222222222222222222222222222"},
			parent:    parent,
			unchanged: []string{"/src/a"},
		},
		"NoManifest": {
			reason:    "Without a readable previous manifest, nothing is taken.",
			parent:    parent,
			unchanged: []string{"/src/a"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := unchangedSincePrevious(tc.prev, tc.parent, tc.unchanged)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestResticParent(t *testing.T) {
	const id = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
	cases := map[string]struct {
		reason string
		ledger *ledger
		// stored writes the snapshot file of id.
		stored bool
		want   string
	}{
		"Named": {
			reason: "The ledger's restic snapshot, still in the repository, is the parent.",
			ledger: &ledger{Manifest: "app-1", ResticSnapshot: id},
			stored: true,
			want:   id,
		},
		"Forgotten": {
			reason: "A restic snapshot no longer in the repository is no parent.",
			ledger: &ledger{Manifest: "app-1", ResticSnapshot: id},
		},
		"OldLedger": {
			reason: "A ledger written before it named the snapshot names no parent.",
			ledger: &ledger{Manifest: "app-1"},
			stored: true,
		},
		"NotAnID": {
			reason: "What is not a whole restic ID is not passed to restic.",
			ledger: &ledger{Manifest: "app-1", ResticSnapshot: "--no-scan"},
			stored: true,
		},
		"NoLedger": {
			reason: "Without a ledger, restic chooses.",
			stored: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tgt, dir := ledgerTarget(t)
			if tc.stored {
				writeFile(t, filepath.Join(dir, "snapshots", id), "s")
			}
			if diff := cmp.Diff(tc.want, resticParent(context.Background(), tgt, tc.ledger)); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
