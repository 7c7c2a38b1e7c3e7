package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/restic/bridge"
	"github.com/stashplane/stashplane/internal/storage"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// BenchmarkBridgeRestore backs the data set up once into a local
// repository, then restores it alternately with restic reading the
// directory itself and with restic reading it through the bridge (the
// bucket a restore Job opens on a mounted volume), and prints MB/s and
// the ratio. The bridge runs in the test process, so -cpuprofile and
// -blockprofile show its side.
func BenchmarkBridgeRestore(b *testing.B) {
	loadBefore := loadAverage()
	data := dataDir(b)
	size := generate(b, data, bridgeShape)
	bin := servers.Binary(b, "restic")
	work := b.TempDir()
	root := filepath.Join(work, "storage")
	const sub = "repo"
	repoDir := filepath.Join(root, sub)
	if err := os.MkdirAll(root, 0o755); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	native, err := restic.New(restic.Options{Binary: bin, Repository: repoDir, Password: benchPassword})
	if err != nil {
		b.Fatal(err)
	}
	if err := native.Init(ctx); err != nil {
		b.Fatal(err)
	}
	sum, err := native.Backup(ctx, restic.BackupOptions{Paths: []string{data}, Host: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	results := map[string][]float64{}
	run := func(mode string, i int) {
		repo := repoDir
		if mode == "bridge" {
			spec := storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{MountPath: "/bench", SubPath: sub}}
			bucket, err := storage.Open(ctx, spec, nil, storage.OpenOptions{LocalRoot: root})
			if err != nil {
				b.Fatal(err)
			}
			srv, err := bridge.Start(bucket, bridge.Options{Log: logr.Discard()})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = srv.Close(ctx); _ = bucket.Close() }()
			repo = srv.Repository()
		}
		opts := restic.Options{Binary: bin, Repository: repo, Password: benchPassword, CacheDir: filepath.Join(work, fmt.Sprintf("cache-%s-%d", mode, i))}
		r, err := restic.New(opts)
		if err != nil {
			b.Fatal(err)
		}
		dir := filepath.Join(work, fmt.Sprintf("restored-%s-%d", mode, i))
		defer func() { _ = os.RemoveAll(dir); _ = os.RemoveAll(opts.CacheDir) }()
		start := time.Now()
		rs, err := r.Restore(ctx, sum.SnapshotID, dir, nil)
		elapsed := time.Since(start)
		if err != nil {
			b.Fatalf("%s: %v", mode, err)
		}
		if int64(rs.BytesRestored) != size {
			b.Fatalf("%s: restored %d bytes of %d", mode, rs.BytesRestored, size)
		}
		mbps := float64(size) / 1e6 / elapsed.Seconds()
		results[mode] = append(results[mode], mbps)
		fmt.Printf("  %-7s run %d: %7.1f MB/s (%s)\n", mode, i+1, mbps, elapsed.Round(10*time.Millisecond))
	}
	b.ResetTimer()
	for range b.N {
		fmt.Printf("restic restore of %.2f GiB from a local repository, alternating\n", float64(size)/(1<<30))
		for i := range runsPerMode {
			modes := []string{"native", "bridge"}
			if i%2 == 1 {
				modes = []string{"bridge", "native"}
			}
			for _, m := range modes {
				run(m, i)
			}
		}
	}
	b.StopTimer()
	n, br := results["native"], results["bridge"]
	b.ReportMetric(median(br)/median(n), "bridge/native")
	fmt.Printf("native %.1f MB/s ±%.0f%%, bridge %.1f MB/s ±%.0f%%, bridge/native %.2f× (medians of %d alternating runs)\n",
		median(n), spread(n)/2, median(br), spread(br)/2, median(br)/median(n), runsPerMode)
	fmt.Printf("machine load average (1, 5, 15 min) before: %s, after: %s\n", loadBefore, loadAverage())
}
