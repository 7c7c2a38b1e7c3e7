package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// A restore's targets are synced once per filesystem, each through a
// directory that exists before restic writes (a target not made yet
// through its nearest parent); a failed sync names the target.
func TestTargetSync(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(root, "file.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	eio := func(int) error { return unix.EIO }
	for name, tc := range map[string]struct {
		dirs       []string
		syncfs     func(int) error
		wantSynced []string
		wantErr    string
	}{
		"one filesystem, a target not made yet": {
			dirs:       []string{filepath.Join(a, "not", "yet"), a, b},
			wantSynced: []string{a},
		},
		"two filesystems": {
			dirs:       []string{a, "/proc/self"},
			wantSynced: []string{a, "/proc/self"},
		},
		"a file in the way": {
			dirs:    []string{a, filepath.Join(file, "sub")},
			wantErr: "cannot open the restore target " + filepath.Join(file, "sub") + ": not a directory",
		},
		"the disk refuses": {
			dirs:       []string{b},
			syncfs:     eio,
			wantSynced: []string{b},
			wantErr:    "cannot write the restored files under " + b + " to their disk: input/output error",
		},
	} {
		t.Run(name, func(t *testing.T) {
			var synced []string
			var dirs []string
			record := func(fd int) error {
				p, err := fdPath(fd)
				if err != nil {
					return err
				}
				synced = append(synced, p)
				if tc.syncfs != nil {
					return tc.syncfs(fd)
				}
				return unix.Syncfs(fd)
			}
			ts, err := openTargetSync(tc.dirs, record)
			if err == nil {
				dirs = ts.dirs
				err = ts.sync()
			}
			var got string
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff([]any{tc.wantErr, tc.wantSynced}, []any{got, resolved(dirs, synced)}); diff != "" {
				t.Errorf("error and filesystems synced, -want +got:\n%s", diff)
			}
		})
	}
}

// A filesystem mounted below a restore's destination receives restored
// files too, through its mount point: it is synced as well.
func TestTargetSyncMountsBelow(t *testing.T) {
	root := t.TempDir()
	vol := filepath.Join(root, "data", "vol")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", vol, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs below the target (mounting needs CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(vol, unix.MNT_DETACH) })
	var synced []string
	ts, err := openTargetSync([]string{filepath.Join(root, "data")}, func(fd int) error {
		p, err := fdPath(fd)
		synced = append(synced, p)
		return err
	})
	if err == nil {
		err = ts.sync()
	}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{filepath.Join(root, "data"), vol}, synced); diff != "" {
		t.Errorf("filesystems synced, -want +got:\n%s", diff)
	}
}

// fdPath is the directory the descriptor fd is open on: the synced
// filesystem's.
func fdPath(fd int) (string, error) { return os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)) }

// resolved maps each synced descriptor's path back to the directory it
// was opened as (/proc/self reads as /proc/<pid>).
func resolved(dirs, synced []string) []string {
	if synced == nil {
		return nil
	}
	out := make([]string, len(synced))
	for i, p := range synced {
		out[i] = p
		for _, d := range dirs {
			if r, err := filepath.EvalSymlinks(d); err == nil && r == p {
				out[i] = d
			}
		}
	}
	return out
}

// A restore with real restic reports done only once its files are on the
// target's disk: the target's filesystem is synced after restic wrote the
// files, and a sync the disk refuses fails the restore with
// TargetWriteFailed, the files still compared.
func TestRestoreIsDurable(t *testing.T) {
	ctx := context.Background()
	src, lb, m := backedUpTwoFiles(t)
	snap := recordOf(m.ResticSnapshot, src)
	srcRel := strings.TrimPrefix(filepath.ToSlash(src), "/")
	both := []string{srcRel + "/a.txt", srcRel + "/sub/b.txt"}
	for name, tc := range map[string]struct {
		fail bool
		// underFile puts the target below a regular file: it cannot be
		// opened, and nothing is restored.
		underFile   bool
		wantReason  string
		wantChecked int
		wantAtSync  []string
	}{
		"synced":                    {wantChecked: 2, wantAtSync: both},
		"the disk refuses it":       {fail: true, wantReason: ReasonTargetWriteFailed, wantChecked: 2, wantAtSync: both},
		"the target cannot be open": {underFile: true, wantReason: ReasonTargetWriteFailed},
	} {
		t.Run(name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "out")
			if tc.underFile {
				if err := os.WriteFile(dest, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
				dest = filepath.Join(dest, "out")
			}
			var mu sync.Mutex
			var restoredAtSync []string
			lb.r.syncfs = func(fd int) error {
				mu.Lock()
				defer mu.Unlock()
				// What restic had written when the sync began.
				_ = filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						rel, _ := filepath.Rel(dest, p)
						restoredAtSync = append(restoredAtSync, filepath.ToSlash(rel))
					}
					return nil
				})
				if tc.fail {
					return unix.EIO
				}
				return unix.Syncfs(fd)
			}
			defer func() { lb.r.syncfs = nil }()
			res, err := lb.restoreWith(ctx, dest, snap, nil)
			var reason string
			var re *reasonError
			if errors.As(err, &re) {
				reason = re.reason
			} else if err != nil {
				t.Fatal(err)
			}
			want := []any{tc.wantReason, tc.wantChecked, tc.wantAtSync}
			if diff := cmp.Diff(want, []any{reason, int(res.filesChecked), restoredAtSync}); diff != "" {
				t.Errorf("reason, files compared and files on the target when it was synced, -want +got:\n%s (error: %v)", diff, err)
			}
		})
	}
}
