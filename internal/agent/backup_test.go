package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// TestBackupWalksBeforeResticReads: restic starts while the agent walks
// the source, but reads the source only once the walk is over; after a
// failed walk it never reads it, leaves no lock and stores no snapshot,
// and the backup fails with the walk's error. Through the bridge restic's
// lock waits for the walk; on restic's own local backend (a mounted local
// storage) restic takes its lock during the walk and waits at its gate.
// The walk here is slowed down well beyond the second restic needs to
// reach its lock, and changes a file as it ends: restic must store the
// file as the walk found it.
func TestBackupWalksBeforeResticReads(t *testing.T) {
	const slow = 2 * time.Second
	cases := map[string]struct {
		reason  string
		direct  bool
		walkErr error
	}{
		"Bridge": {
			reason: "Through the bridge, restic's lock comes after the walk has ended.",
		},
		"BridgeWalkFailed": {
			reason:  "Through the bridge, after a failed walk restic takes no lock, and the backup fails with the walk's error.",
			walkErr: errors.New("the walk failed"),
		},
		"Direct": {
			reason: "On the local backend, restic takes its lock during the walk, and reads only after it.",
			direct: true,
		},
		"DirectWalkFailed": {
			reason:  "On the local backend, after a failed walk restic is stopped at its gate: no lock left, no snapshot.",
			direct:  true,
			walkErr: errors.New("the walk failed"),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			src := t.TempDir()
			writeTree(t, src, map[string]string{"a.txt": "alpha", "d/b.txt": "bee"})
			lb := newLocalBackup(t, src, logr.Discard())
			lb.direct = tc.direct
			if _, err := lb.run(ctx, 0); err != nil {
				t.Fatal(err)
			}
			repo := filepath.Join(lb.storeDir, "default/app/repository/v1/nightly/dump")
			rc, err := restic.New(restic.Options{Binary: servers.Binary(t, "restic"), Repository: repo, Password: "local"})
			if err != nil {
				t.Fatal(err)
			}
			before, err := rc.Snapshots(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var walkEnd time.Time
			lb.r.walk = func(paths, exclude []string) ([]sourceFile, []sourceFile, error) {
				time.Sleep(slow)
				if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha, as walked"), 0o644); err != nil {
					return nil, nil, err
				}
				files, dirs, err := walkTree(paths, exclude)
				walkEnd = time.Now()
				if tc.walkErr != nil {
					return nil, nil, tc.walkErr
				}
				return files, dirs, err
			}
			// The first lock file seen, looked for every 10 ms.
			var firstLock time.Time
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if entries, _ := os.ReadDir(filepath.Join(repo, "locks")); len(entries) > 0 && firstLock.IsZero() {
						firstLock = time.Now()
					}
					select {
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			}()
			start := time.Now()
			_, err = lb.run(ctx, 1)
			close(stop)
			wg.Wait()
			if diff := cmp.Diff(tc.walkErr, err, cmpErrorIs); diff != "" {
				t.Errorf("%s\nerror: -want +got:\n%s", tc.reason, diff)
			}
			switch {
			case firstLock.IsZero() && (tc.walkErr == nil || tc.direct):
				t.Errorf("%s\nno lock of restic's was seen: the test did not look at the right place", tc.reason)
			case !tc.direct && !firstLock.IsZero() && firstLock.Before(walkEnd):
				t.Errorf("%s\nrestic locked the repository %s after the backup began, before the walk ended (%s)", tc.reason, firstLock.Sub(start), walkEnd.Sub(start))
			case !tc.direct && tc.walkErr != nil && !firstLock.IsZero():
				t.Errorf("%s\nrestic locked the repository after the walk failed", tc.reason)
			case tc.direct && !firstLock.Before(walkEnd):
				t.Errorf("%s\nrestic locked the repository only after the walk ended (%s, %s): it was not started during the walk", tc.reason, firstLock.Sub(start), walkEnd.Sub(start))
			}
			if locks, _ := os.ReadDir(filepath.Join(repo, "locks")); len(locks) != 0 {
				t.Errorf("%s\n%d locks left in the repository", tc.reason, len(locks))
			}
			after, err := rc.Snapshots(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(len(before)+btoi(tc.walkErr == nil), len(after)); diff != "" {
				t.Errorf("%s\nsnapshots in the repository: -want +got:\n%s", tc.reason, diff)
			}
			if tc.walkErr != nil || len(after) == 0 {
				return
			}
			newest := after[0]
			for _, s := range after {
				if s.Time.After(newest.Time) {
					newest = s
				}
			}
			var stored bytes.Buffer
			if err := rc.Dump(ctx, newest.ID, filepath.Join(src, "a.txt"), &stored); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff("alpha, as walked", stored.String()); diff != "" {
				t.Errorf("%s\nrestic stored the file other than the walk found it: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// btoi is 1 for true.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cmpErrorIs compares errors by errors.Is.
var cmpErrorIs = cmp.Comparer(func(a, b error) bool {
	return errors.Is(a, b) || errors.Is(b, a)
})

// TestDirectBackupKeepsModes: a backup on restic's local backend leaves
// the repository's directories and files with the access the bridge's
// storage gives them (the umask's), not restic's owner-only modes, on a
// fresh repository and on one the bridge wrote before.
func TestDirectBackupKeepsModes(t *testing.T) {
	for name, tc := range map[string]struct {
		reason string
		// bridgeFirst: the first backup goes through the bridge.
		bridgeFirst bool
	}{
		"Fresh":       {reason: "A first backup on the local backend makes the repository's directories itself."},
		"AfterBridge": {reason: "A backup on the local backend after one through the bridge.", bridgeFirst: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := t.TempDir()
			writeTree(t, src, map[string]string{"a.txt": "alpha", "d/b.txt": "bee"})
			lb := newLocalBackup(t, src, logr.Discard())
			lb.direct = !tc.bridgeFirst
			for i := range 2 {
				if _, err := lb.run(context.Background(), i); err != nil {
					t.Fatal(err)
				}
				lb.direct = true
				writeTree(t, src, map[string]string{fmt.Sprintf("new-%d.txt", i): fmt.Sprintf("new %d", i)})
			}
			repo := filepath.Join(lb.storeDir, "default/app/repository/v1/nightly/dump")
			// What the bridge's storage gives (fileblob: 0777 and 0666
			// less the umask), seen on what it wrote at the init.
			keys, err := os.Stat(filepath.Join(repo, "keys"))
			if err != nil {
				t.Fatal(err)
			}
			config, err := os.Stat(filepath.Join(repo, "config"))
			if err != nil {
				t.Fatal(err)
			}
			var wrong []string
			err = filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				mode := info.Mode().Perm()
				switch {
				case d.IsDir() && mode != keys.Mode().Perm():
					wrong = append(wrong, fmt.Sprintf("%s: %v, want %v", p, mode, keys.Mode().Perm()))
				case !d.IsDir() && mode&0o444 != config.Mode().Perm()&0o444:
					wrong = append(wrong, fmt.Sprintf("%s: %v, want read access %v", p, mode, config.Mode().Perm()&0o444))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string(nil), wrong); diff != "" {
				t.Errorf("%s\nentries of the repository with other modes than the bridge's: -want +got:\n%s", tc.reason, diff)
			}
			if len(resticDirs(repo)) != 260 {
				t.Errorf("resticDirs names %d directories, want 260", len(resticDirs(repo)))
			}
		})
	}
}
