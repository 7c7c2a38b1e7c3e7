package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
)

// TestBackupWalksBeforeResticLocks: restic starts while the agent walks
// the source, but takes its lock, and so reads the source, only once the
// walk is over; after a failed walk it never takes it, and the backup
// fails with the walk's error. The walk here is slowed down well beyond
// the second restic needs to reach its lock.
func TestBackupWalksBeforeResticLocks(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "alpha", "d/b.txt": "bee"})
	lb := newLocalBackup(t, src, logr.Discard())
	if _, err := lb.run(ctx, 0); err != nil {
		t.Fatal(err)
	}
	locks := filepath.Join(lb.storeDir, "default/app/repository/v1/nightly/dump/locks")
	const slow = 2 * time.Second
	cases := map[string]struct {
		reason  string
		walkErr error
	}{
		"Walked": {
			reason: "restic's lock comes after the walk has ended.",
		},
		"WalkFailed": {
			reason:  "After a failed walk restic takes no lock, and the backup fails with the walk's error.",
			walkErr: errors.New("the walk failed"),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var walkEnd time.Time
			lb.r.walk = func(paths, exclude []string) ([]sourceFile, []sourceFile, error) {
				time.Sleep(slow)
				files, dirs, err := walkTree(paths, exclude)
				walkEnd = time.Now()
				if tc.walkErr != nil {
					return nil, nil, tc.walkErr
				}
				return files, dirs, err
			}
			defer func() { lb.r.walk = nil }()
			// The first lock file seen, looked for every 10 ms.
			var firstLock time.Time
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if entries, _ := os.ReadDir(locks); len(entries) > 0 && firstLock.IsZero() {
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
			_, err := lb.run(ctx, 1)
			close(stop)
			wg.Wait()
			if diff := cmp.Diff(tc.walkErr, err, cmpErrorIs); diff != "" {
				t.Errorf("%s\nerror: -want +got:\n%s", tc.reason, diff)
			}
			if !firstLock.IsZero() && firstLock.Before(walkEnd) {
				t.Errorf("%s\nrestic locked the repository %s after the backup began, before the walk ended (%s)", tc.reason, firstLock.Sub(start), walkEnd.Sub(start))
			}
			if tc.walkErr == nil && firstLock.IsZero() {
				t.Errorf("%s\nno lock of restic's was seen: the test did not look at the right place", tc.reason)
			}
			if tc.walkErr != nil && !firstLock.IsZero() {
				t.Errorf("%s\nrestic locked the repository after the walk failed", tc.reason)
			}
		})
	}
}

// cmpErrorIs compares errors by errors.Is.
var cmpErrorIs = cmp.Comparer(func(a, b error) bool {
	return errors.Is(a, b) || errors.Is(b, a)
})
