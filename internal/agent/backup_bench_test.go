package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// discardStatus takes a run's progress and reports nothing.
type discardStatus struct{}

func (discardStatus) writeComponent(context.Context, storagev1alpha1.Component) error { return nil }

// BenchmarkUnchangedBackup times the agent's side of a backup of 20,000
// small files that did not change since the last one (the content
// manifest's hashes taken over, the ledger standing): what the agent adds
// to restic's own run. With -cpuprofile it shows where the agent's
// processor time goes, setup included; STASHPLANE_BENCH_CPUPROFILE=FILE
// profiles the unchanged runs alone. restic's own time is a child
// process's and is not in a profile: agent-cpu-s/op and restic-cpu-s/op
// are the two sides' processor time per run. STASHPLANE_BENCH_LOG=1 prints
// the agent's log.
func BenchmarkUnchangedBackup(b *testing.B) {
	ctx := context.Background()
	src := smallFiles(b)
	log := logr.Discard()
	if os.Getenv("STASHPLANE_BENCH_LOG") != "" {
		log = funcr.New(func(prefix, args string) { fmt.Println(prefix, args) }, funcr.Options{})
	}
	lb := newLocalBackup(b, src, log)
	// As in BenchmarkFirstBackup: STASHPLANE_BENCH_BRIDGE=1 takes the
	// Job through the bridge.
	lb.direct = os.Getenv("STASHPLANE_BENCH_BRIDGE") != "1"
	run := func(i int) *phases {
		p, err := lb.run(ctx, i)
		if err != nil {
			b.Fatalf("backup %d: %v", i, err)
		}
		return p
	}
	// The first backup creates the repository, the second checks it and
	// writes the ledger, the third is the first unchanged one.
	for i := range 3 {
		run(i)
	}
	// Plain restic backs the same files up into the same repository with
	// its own cache kept between runs, as restic run by hand would; its
	// first run, not timed, gives it a parent of its own host.
	repoDir := filepath.Join(lb.storeDir, filepath.FromSlash(layout.ResticPrefix(lb.repo.Spec.Path, "nightly", "dump")))
	cache := b.TempDir()
	plain := func() error {
		cmd := exec.Command(lb.r.Options.Restic, "-r", repoDir, "--password-file", lb.r.Options.PasswordFile, "--cache-dir", cache, "-q", "backup", src)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("plain restic backup: %v: %s", err, out)
		}
		return nil
	}
	if err := plain(); err != nil {
		b.Fatal(err)
	}
	load := loadAverage()
	defer profileCPU(b)()
	b.ResetTimer()
	var agentCPU, resticCPU time.Duration
	var jobWall, plainWall []float64
	for i := range b.N {
		timed := func(f func()) float64 {
			start := time.Now()
			f()
			return time.Since(start).Seconds()
		}
		job := func() {
			self0, children0 := cpuSpent()
			p := run(3 + i)
			self1, children1 := cpuSpent()
			agentCPU += self1 - self0
			resticCPU += children1 - children0
			if i == b.N-1 {
				b.Logf("last run's steps: %v", p.keysAndValues())
			}
		}
		bare := func() {
			if err := plain(); err != nil {
				b.Fatal(err)
			}
		}
		// Each goes first in turn.
		if i%2 == 0 {
			jobWall = append(jobWall, timed(job))
			plainWall = append(plainWall, timed(bare))
		} else {
			plainWall = append(plainWall, timed(bare))
			jobWall = append(jobWall, timed(job))
		}
	}
	b.StopTimer()
	b.ReportMetric((agentCPU / time.Duration(b.N)).Seconds(), "agent-cpu-s/op")
	b.ReportMetric((resticCPU / time.Duration(b.N)).Seconds(), "restic-cpu-s/op")
	b.ReportMetric(median(jobWall), "job-s")
	b.ReportMetric(median(plainWall), "plain-s")
	b.ReportMetric(median(jobWall)/median(plainWall), "job/plain-time")
	b.Logf("unchanged backup of 20,000 files, Job / plain restic time: %.2fx (target <= 1.2x); medians of %d runs each; machine load (1, 5, 15 min) before: %s, after: %s",
		median(jobWall)/median(plainWall), b.N, load, loadAverage())
}

// BenchmarkFirstBackup backs the 20,000 small files of
// BenchmarkUnchangedBackup up into a fresh repository, the Job's way
// (restic init and backup, the walk, the hasher, the manifest) and plain
// restic's (init and backup), alternating, and prints the speed ratio
// beside its target with the machine's load. With many small files
// restic's work is per file, as the agent's hashing is: this is where the
// two compete most for the cores. agent-cpu-s/op and restic-cpu-s/op are
// the Job's two sides; STASHPLANE_BENCH_CPUPROFILE=FILE profiles the agent.
//
// The Job reaches the storage as one that mounts a local storage does, on
// restic's own local backend; STASHPLANE_BENCH_BRIDGE=1 takes it through
// the bridge, as for any other storage. STASHPLANE_BENCH_SET=large backs
// up 1.1 GiB in 9 large files instead, where restic's work is per byte.
// STASHPLANE_BENCH_EXCLUDE=PATTERN gives both sides an exclude pattern:
// the Job's restic then names the files it stores.
func BenchmarkFirstBackup(b *testing.B) {
	ctx := context.Background()
	src, what := smallFiles(b), "20,000 files"
	if os.Getenv("STASHPLANE_BENCH_SET") == "large" {
		src, what = largeFiles(b), "1.1 GiB in 9 files"
	}
	direct := os.Getenv("STASHPLANE_BENCH_BRIDGE") != "1"
	var exclude []string
	if p := os.Getenv("STASHPLANE_BENCH_EXCLUDE"); p != "" {
		exclude = []string{p}
		what += ", excluding " + p
	}
	restic := servers.Binary(b, "restic")
	var jobWall, plainWall []float64
	var agentCPU, jobResticCPU, plainCPU time.Duration
	job := func() {
		lb := newLocalBackup(b, src, logr.Discard())
		lb.direct = direct
		lb.r.Options.Exclude = exclude
		self0, children0 := cpuSpent()
		start := time.Now()
		ph, err := lb.run(ctx, 0)
		if err != nil {
			b.Fatal(err)
		}
		jobWall = append(jobWall, time.Since(start).Seconds())
		if testing.Verbose() {
			b.Logf("Job: %.2f s, the agent's steps %v", jobWall[len(jobWall)-1], ph.keysAndValues())
		}
		self1, children1 := cpuSpent()
		agentCPU += self1 - self0
		jobResticCPU += children1 - children0
	}
	plain := func() {
		dir := b.TempDir()
		pw := filepath.Join(dir, "password")
		if err := os.WriteFile(pw, []byte("local"), 0o600); err != nil {
			b.Fatal(err)
		}
		_, children0 := cpuSpent()
		start := time.Now()
		for _, args := range [][]string{{"init"}, append(append([]string{"backup"}, excludeArgs(exclude)...), src)} {
			cmd := exec.Command(restic, append([]string{"-r", filepath.Join(dir, "repo"), "--password-file", pw, "--cache-dir", filepath.Join(dir, "cache"), "-q"}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("plain restic %s: %v: %s", args[0], err, out)
			}
		}
		plainWall = append(plainWall, time.Since(start).Seconds())
		_, children1 := cpuSpent()
		plainCPU += children1 - children0
		_ = os.RemoveAll(dir)
	}
	load := loadAverage()
	defer profileCPU(b)()
	b.ResetTimer()
	for i := range b.N {
		// Each goes first in turn.
		if i%2 == 0 {
			job()
			plain()
		} else {
			plain()
			job()
		}
	}
	b.StopTimer()
	n := time.Duration(b.N)
	b.ReportMetric((agentCPU / n).Seconds(), "agent-cpu-s/op")
	b.ReportMetric((jobResticCPU / n).Seconds(), "restic-cpu-s/op")
	b.ReportMetric((plainCPU / n).Seconds(), "plain-cpu-s/op")
	b.ReportMetric(median(jobWall), "job-s")
	b.ReportMetric(median(plainWall), "plain-s")
	b.ReportMetric(median(plainWall)/median(jobWall), "job/plain-speed")
	b.Logf("first backup of %s, Job (direct: %t) / plain restic speed: %.2fx (target >= 0.95x); medians of %d runs each (Job %.2f s, %.2f–%.2f; plain %.2f s, %.2f–%.2f); machine load (1, 5, 15 min) before: %s, after: %s",
		what, direct, median(plainWall)/median(jobWall), b.N, median(jobWall), slices.Min(jobWall), slices.Max(jobWall),
		median(plainWall), slices.Min(plainWall), slices.Max(plainWall), load, loadAverage())
}

// smallFiles writes 20,000 text files of 64 B to 4 KiB (40 MiB) in 100
// directories, the same each time.
func smallFiles(b *testing.B) string {
	src := b.TempDir()
	words := strings.Fields("backup restore verify snapshot repository storage bucket session")
	for i := range 20000 {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		var sb strings.Builder
		for size := 64 + rng.IntN(4<<10); sb.Len() < size; {
			fmt.Fprintf(&sb, "%s %d\n", words[rng.IntN(len(words))], rng.Uint32())
		}
		p := filepath.Join(src, fmt.Sprintf("d%03d", i%100), fmt.Sprintf("f%05d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return src
}

// largeFiles writes 1.1 GiB of incompressible data: 8 files of 128 MiB
// and one of 100 MiB, the same each time.
func largeFiles(b *testing.B) string {
	src := b.TempDir()
	for i := range 9 {
		size := 128 << 20
		if i == 8 {
			size = 100 << 20
		}
		rng := rand.NewChaCha8([32]byte{byte(i)})
		buf := make([]byte, size)
		_, _ = rng.Read(buf)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("large-%d.bin", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return src
}

// median is the middle of v.
func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// localBackup runs the agent's backup of a directory into a storage in a
// directory, as a Job does, without a cluster: its statuses go nowhere.
type localBackup struct {
	r        *Runner
	bucket   *blob.Bucket
	open     func(context.Context) (*blob.Bucket, error)
	repo     *storagev1alpha1.Repository
	storeDir string
	// direct runs restic on the storage's directory, as a Job that
	// mounts a local storage does (localRestic), rather than through the
	// bridge, as a Job does for any other storage.
	direct bool
}

func newLocalBackup(tb testing.TB, src string, log logr.Logger) *localBackup {
	tb.Helper()
	storeDir, scratch := tb.TempDir(), tb.TempDir()
	passwordFile := filepath.Join(scratch, "password")
	if err := os.WriteFile(passwordFile, []byte("local"), 0o600); err != nil {
		tb.Fatal(err)
	}
	lb := &localBackup{storeDir: storeDir, repo: &storagev1alpha1.Repository{}}
	lb.repo.Spec.Path = "default/app"
	lb.open = func(context.Context) (*blob.Bucket, error) { return fileblob.OpenBucket(storeDir, nil) }
	var err error
	if lb.bucket, err = lb.open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = lb.bucket.Close() })
	lb.r = &Runner{Log: log, Options: Options{
		Component: "dump", Repository: "app", Paths: []string{src},
		PasswordFile: passwordFile, ScratchDir: filepath.Join(scratch, "run"), Restic: servers.Binary(tb, "restic"),
	}}
	return lb
}

// run backs the directory up as Snapshot app-<i>.
func (lb *localBackup) run(ctx context.Context, i int) (*phases, error) {
	lb.r.Options.Snapshot = fmt.Sprintf("app-%d", i)
	// Each Job starts with an empty scratch directory: no restic cache.
	_ = os.RemoveAll(lb.r.Options.ScratchDir)
	t := &target{bucket: lb.bucket, open: lb.open, repo: lb.repo, session: "nightly", password: "local",
		resticPath: layout.ResticPrefix(lb.repo.Spec.Path, "nightly", "dump"), phases: &phases{last: time.Now()}}
	if lb.direct {
		t.localRoot = lb.storeDir
	}
	_, _, err := lb.r.backup(ctx, t, discardStatus{}, componentState{}, &bridgeErrors{log: logr.Discard()})
	return t.phases, err
}

// profileCPU profiles the process into $STASHPLANE_BENCH_CPUPROFILE, when
// set, until the function it returns is called.
func profileCPU(b *testing.B) func() {
	f := os.Getenv("STASHPLANE_BENCH_CPUPROFILE")
	if f == "" {
		return func() {}
	}
	out, err := os.Create(f)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = out.Close()
	}
}
