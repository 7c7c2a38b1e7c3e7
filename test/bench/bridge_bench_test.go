// Package bench holds Stashplane's benchmarks. They are not part of
// `make test`: `make bench` runs them and prints side-by-side figures.
package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/restic"
	"github.com/stashplane/stashplane/internal/restic/bridge"
	"github.com/stashplane/stashplane/internal/storage"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// The data set: a few large files and many small ones, about 1.1 GiB,
// generated once, deterministically, and reused across runs.
const (
	largeFiles    = 6
	largeFileSize = 160 << 20
	smallFiles    = 10000
	smallMaxSize  = 24 << 10
	dataVersion   = "v1" // bump when the generator changes
	benchPassword = "stashplane bench password"
	runsPerMode   = 5
)

// shape is how many files of which sizes a generated data set holds.
type shape struct {
	large     int
	largeSize int64
	small     int
	smallMax  int
}

// bridgeShape is the bridge benchmark's data set.
var bridgeShape = shape{large: largeFiles, largeSize: largeFileSize, small: smallFiles, smallMax: smallMaxSize}

// dataDir is where the data set lives: $STASHPLANE_BENCH_DATA, else a
// fixed directory under the user's cache, so that runs reuse it.
func dataDir(b *testing.B) string {
	if d := os.Getenv("STASHPLANE_BENCH_DATA"); d != "" {
		return d
	}
	c, err := os.UserCacheDir()
	if err != nil {
		c = os.TempDir()
	}
	return filepath.Join(c, "stashplane-bench", "data-"+dataVersion)
}

// generate writes the data set unless a complete one is there. Large files
// are incompressible; small files are text-like and compress, as a real
// tree of configs and documents does.
func generate(b *testing.B, dir string, sh shape) int64 {
	marker := filepath.Join(dir, ".complete")
	if _, err := os.Stat(marker); err != nil {
		start := time.Now()
		_ = os.RemoveAll(dir)
		for i := range sh.large {
			writeFile(b, filepath.Join(dir, "large", fmt.Sprintf("blob-%d.bin", i)), newRandom(uint64(i)), sh.largeSize)
		}
		words := strings.Fields("backup restore verify snapshot repository storage bucket session addon function kubernetes namespace volume claim")
		for i := range sh.small {
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			var sb strings.Builder
			size := 64 + rng.IntN(sh.smallMax)
			for sb.Len() < size {
				sb.WriteString(words[rng.IntN(len(words))])
				sb.WriteString(fmt.Sprintf(" %d\n", rng.Uint32()))
			}
			p := filepath.Join(dir, "small", fmt.Sprintf("d%03d", i%100), fmt.Sprintf("f%05d.txt", i))
			writeFile(b, p, strings.NewReader(sb.String()), -1)
		}
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("generated the data set in %s (%s)\n", dir, time.Since(start).Round(time.Second))
	}
	var total int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
		return err
	})
	return total
}

type randomReader struct{ rng *rand.ChaCha8 }

func newRandom(seed uint64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), 0x5e
	return randomReader{rand.NewChaCha8(s)}
}

func (r randomReader) Read(p []byte) (int, error) { return r.rng.Read(p) }

func writeFile(b *testing.B, p string, r io.Reader, n int64) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if n >= 0 {
		r = io.LimitReader(r, n)
	}
	if _, err := io.Copy(f, r); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// target is one way of reaching a fresh repository.
type target struct {
	store, mode string
	// setup prepares repository i and returns its location, the extra
	// environment restic needs, and a clean-up.
	setup func(b *testing.B, i int) (repo string, env []string, done func())
}

// BenchmarkBridge backs the data set up with restic through the bridge and
// through restic's own backend on the same store, alternating, and prints
// MB/s and the ratio of each store.
func BenchmarkBridge(b *testing.B) {
	loadBefore := loadAverage()
	data := dataDir(b)
	size := generate(b, data, bridgeShape)
	bin := servers.Binary(b, "restic")
	work := b.TempDir()
	s3 := servers.StartS3(b)
	s3.CreateBucket(b, "bench")
	s3Keys := map[string][]byte{
		storagev1alpha1.SecretKeyAWSAccessKeyID:     []byte(s3.AccessKey),
		storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(s3.SecretKey),
	}
	// The bridge as backup Jobs run it, unless told to verify uploads too.
	verify := os.Getenv("STASHPLANE_BENCH_VERIFY") == "1"
	viaBridge := func(spec func(i int) storagev1alpha1.Backend, secret map[string][]byte, opts storage.OpenOptions) func(*testing.B, int) (string, []string, func()) {
		return func(b *testing.B, i int) (string, []string, func()) {
			bucket, err := storage.Open(context.Background(), spec(i), secret, opts)
			if err != nil {
				b.Fatal(err)
			}
			srv, err := bridge.Start(bucket, bridge.Options{Log: logr.Discard(), VerifyUploads: verify})
			if err != nil {
				b.Fatal(err)
			}
			return srv.Repository(), nil, func() {
				_ = srv.Close(context.Background())
				_ = bucket.Close()
				if opts.LocalRoot != "" {
					_ = os.RemoveAll(filepath.Join(opts.LocalRoot, spec(i).Local.SubPath))
				}
			}
		}
	}
	local := filepath.Join(work, "local")
	if err := os.MkdirAll(local, 0o755); err != nil {
		b.Fatal(err)
	}
	targets := []target{
		{store: "local files", mode: "native", setup: func(_ *testing.B, i int) (string, []string, func()) {
			dir := filepath.Join(local, fmt.Sprintf("native-%d", i))
			return dir, nil, func() { _ = os.RemoveAll(dir) }
		}},
		{store: "local files", mode: "bridge", setup: viaBridge(func(i int) storagev1alpha1.Backend {
			return storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{
				MountPath: "/bench", SubPath: fmt.Sprintf("bridge-%d", i)}}
		}, nil, storage.OpenOptions{LocalRoot: local})},
		{store: "s3 (versitygw)", mode: "native", setup: func(_ *testing.B, i int) (string, []string, func()) {
			prefix := fmt.Sprintf("native-%d", i)
			return "s3:" + s3.Endpoint + "/bench/" + prefix,
				[]string{"AWS_ACCESS_KEY_ID=" + s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3.SecretKey},
				func() { _ = os.RemoveAll(filepath.Join(s3.Dir, "bench", prefix)) }
		}},
		{store: "s3 (versitygw)", mode: "bridge", setup: viaBridge(func(i int) storagev1alpha1.Backend {
			return storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{
				Endpoint: s3.Endpoint, Bucket: "bench", Prefix: fmt.Sprintf("bridge-%d", i), SecretName: "bench"}}
		}, s3Keys, storage.OpenOptions{})},
	}
	// Each run's repository is removed after it, so that the disk holds
	// one repository at a time; on the S3 server that is its directory.
	for i, tg := range targets {
		if tg.store == "s3 (versitygw)" && tg.mode == "bridge" {
			setup := tg.setup
			targets[i].setup = func(b *testing.B, i int) (string, []string, func()) {
				repo, env, done := setup(b, i)
				return repo, env, func() {
					done()
					_ = os.RemoveAll(filepath.Join(s3.Dir, "bench", fmt.Sprintf("bridge-%d", i)))
				}
			}
		}
	}

	results := map[string][]float64{} // store/mode -> MB/s per run
	run := func(tg target, i int) {
		repo, env, done := tg.setup(b, i)
		defer done()
		r, err := restic.New(restic.Options{Binary: bin, Repository: repo, Password: benchPassword, Env: env})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := r.Init(ctx); err != nil {
			b.Fatalf("%s %s: %v", tg.store, tg.mode, err)
		}
		start := time.Now()
		sum, err := r.Backup(ctx, restic.BackupOptions{Paths: []string{data}, Host: "bench"}, nil)
		elapsed := time.Since(start)
		if err != nil {
			b.Fatalf("%s %s: %v", tg.store, tg.mode, err)
		}
		if int64(sum.TotalBytesProcessed) != size {
			b.Fatalf("%s %s: backed up %d bytes of %d", tg.store, tg.mode, sum.TotalBytesProcessed, size)
		}
		mbps := float64(size) / 1e6 / elapsed.Seconds()
		key := tg.store + "/" + tg.mode
		results[key] = append(results[key], mbps)
		fmt.Printf("  %-16s %-7s run %d: %7.1f MB/s (%s)\n", tg.store, tg.mode, i+1, mbps, elapsed.Round(10*time.Millisecond))
	}
	b.ResetTimer()
	for range b.N {
		fmt.Printf("restic first backup of %.2f GiB (%d large + %d small files), fresh repository each run, bridge upload verification %v\n",
			float64(size)/(1<<30), largeFiles, smallFiles, verify)
		for i := range runsPerMode {
			// Alternate which mode goes first, so that drift of a shared
			// machine does not favour one side.
			for _, store := range []string{"local files", "s3 (versitygw)"} {
				if only := os.Getenv("STASHPLANE_BENCH_ONLY"); only != "" && !strings.HasPrefix(store, only) {
					continue
				}
				pair := []target{}
				for _, tg := range targets {
					if tg.store == store {
						pair = append(pair, tg)
					}
				}
				if i%2 == 1 {
					slices.Reverse(pair)
				}
				for _, tg := range pair {
					run(tg, i)
				}
			}
		}
	}
	b.StopTimer()
	report(results)
	fmt.Printf("machine load average (1, 5, 15 min) before: %s, after: %s\n", loadBefore, loadAverage())
}

// loadAverage reads the load average: figures taken while other work
// shared the two cores are noisy, and the table says so.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is the range of runs relative to their median, in percent.
func spread(xs []float64) float64 {
	return (slices.Max(xs) - slices.Min(xs)) / median(xs) * 100
}

func report(results map[string][]float64) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Println()
	fmt.Fprintln(w, "store\tnative MB/s\t(spread)\tbridge MB/s\t(spread)\tbridge/native\ttarget\t")
	for _, store := range []string{"local files", "s3 (versitygw)"} {
		n, br := results[store+"/native"], results[store+"/bridge"]
		if len(n) == 0 || len(br) == 0 {
			continue
		}
		ratio := median(br) / median(n)
		verdict := "met"
		if ratio < 0.95 {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "%s\t%.1f\t±%.0f%%\t%.1f\t±%.0f%%\t%.2f×\t≥0.95× %s\t\n",
			store, median(n), spread(n)/2, median(br), spread(br)/2, ratio, verdict)
	}
	_ = w.Flush()
	fmt.Printf("(medians of %d alternating runs; spread is half the range of the runs)\n", runsPerMode)
}
