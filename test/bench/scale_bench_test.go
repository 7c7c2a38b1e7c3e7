package bench

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/stashplane/stashplane/apis"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/trigger"
)

// Targets of the scale benchmark.
const (
	targetPeakRSS      = 256 << 20
	targetAllReady     = 60 * time.Second
	targetQueueLatency = time.Second
)

// envInt is an integer from the environment, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkScale puts one provider, a process of its own as installed, in
// front of STASHPLANE_BENCH_CONFIGS BackupConfigurations (1,000) with their
// Repositories and STASHPLANE_BENCH_SNAPSHOTS Snapshots (10,000), and
// reports against the targets:
//
//   - the provider's peak resident memory (< 256 MiB);
//   - the time from the last create until every configuration and
//     Repository is Ready (< 60 s);
//   - the p99 of the time a request waits in a reconcile queue while
//     STASHPLANE_BENCH_SESSIONS (20) backups run, the configurations
//     released from pause in one batch of that size (< 1 s).
//
// The configurations are created paused, so that the scheduler's first
// backups do not all start at once; every one of them protects the same
// small Deployment, each into its own Repository.
func BenchmarkScale(b *testing.B) {
	configs := envInt("STASHPLANE_BENCH_CONFIGS", 1000)
	snapshots := envInt("STASHPLANE_BENCH_SNAPSHOTS", 10000)
	sessions := envInt("STASHPLANE_BENCH_SESSIONS", 20)
	loadBefore := loadAverage()
	ctx := context.Background()

	// Made before the cluster, so removed after it stops writing there.
	storageDir, data := b.TempDir(), b.TempDir()
	// The benchmark's own client must not be what is measured.
	c, kube := startCluster(b, rest.Config{QPS: 500, Burst: 1000})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		b.Fatal(err)
	}
	bin, err := devclustertest.BinDir()
	if err != nil {
		b.Fatal(err)
	}
	metricsAddr := freeAddress(b)
	// The provider's own defaults, unless STASHPLANE_BENCH_PROVIDER_FLAGS
	// says otherwise (for example "--workers=1 --kube-api-qps=5").
	extra := strings.Fields(os.Getenv("STASHPLANE_BENCH_PROVIDER_FLAGS"))
	proc, err := c.StartProvider(filepath.Join(bin, "stashplane"), append([]string{"--metrics-address", metricsAddr, "--metrics-secure=false"}, extra...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(proc.Stop)
	fmt.Printf("provider log: %s\n", filepath.Join(c.Dir(), "logs", "provider.log"))

	if err := os.WriteFile(filepath.Join(data, "file"), []byte("scale"), 0o644); err != nil {
		b.Fatal(err)
	}
	createBenchObjects(b, kube, storageDir, workload("app", data, "/data"))
	// What is counted is read from a cache the API server's watches keep:
	// listing ten thousand Snapshots every poll would be the heaviest load
	// on the API server, and slow down what it measures.
	watched := watchCache(b, c.Config())

	// The configurations, paused, and then the Snapshots, eight creates
	// at a time.
	writesAtStart := apiWrites(b, c.Config())
	metricsAtStart := scrape(b, metricsAddr)
	start := time.Now()
	parallel(b, configs, func(i int) error {
		bc := protect(fmt.Sprintf("c-%04d", i), "app", "local", fmt.Sprintf("r-%04d", i), "/data")
		bc.Spec.Paused = true
		return kube.Create(ctx, bc)
	})
	parallel(b, snapshots, func(i int) error {
		repo := fmt.Sprintf("r-%04d", i%configs)
		return kube.Create(ctx, &storagev1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", repo, i), Namespace: benchNamespace,
				Labels: map[string]string{storagev1alpha1.LabelRepository: repo}},
			Spec: storagev1alpha1.SnapshotSpec{Repository: repo, Session: benchSession},
		})
	})
	lastCreate := time.Now()
	fmt.Printf("created %d configurations and %d snapshots in %s\n", configs, snapshots, lastCreate.Sub(start).Round(time.Millisecond))

	left, first := 0, ""
	err = wait.PollUntilContextTimeout(ctx, time.Second, 20*time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		left, first, err = countNotReady(ctx, watched)
		return err == nil && left == 0, nil
	})
	if err != nil {
		b.Fatalf("%d configurations and Repositories are not Ready after 20 minutes, the first: %s", left, first)
	}
	allReady := time.Since(lastCreate)
	fmt.Printf("last create -> all Ready: %.1f s\n", allReady.Seconds())
	writesAtReady := apiWrites(b, c.Config())
	metricsAtReady := scrape(b, metricsAddr)
	eventsAtReady := eventsByReason(ctx, b, kube)
	var synced time.Duration
	waitFor(b, 30*time.Minute, "the Snapshots were not all recorded in the storage", func(ctx context.Context) (bool, error) {
		list := &storagev1alpha1.SnapshotList{}
		if err := watched.List(ctx, list, client.InNamespace(benchNamespace), client.UnsafeDisableDeepCopy); err != nil {
			return false, nil
		}
		for _, sn := range list.Items {
			if sn.GetCondition(storagev1alpha1.TypeSnapshotMetadataUploaded).Status != corev1.ConditionTrue {
				return false, nil
			}
		}
		synced = time.Since(lastCreate)
		return true, nil
	})
	fmt.Printf("last create -> all Snapshots recorded: %.1f s\n", synced.Seconds())
	writesAtRecorded := apiWrites(b, c.Config())

	// The Snapshots recorded, each is observed once more; the batch is
	// released once that is done and the provider's queues are empty, so
	// that the latency measured is that of a running cluster, not of the
	// arrival of ten thousand objects.
	// A scrape is work for the provider too (its state metrics read every
	// Snapshot), so the queues are read every two seconds.
	recorded := time.Now()
	quiet := 0
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, 15*time.Minute, true, func(ctx context.Context) (bool, error) {
		if queued(scrape(b, metricsAddr)) > 0 {
			quiet = 0
		} else {
			quiet++
		}
		return quiet >= 3, nil
	})
	if err != nil {
		b.Fatalf("the provider's queues did not empty in 15 minutes: %v", err)
	}
	settled := time.Since(recorded)
	fmt.Printf("all Snapshots recorded -> the provider's queues empty for 6 s: %.1f s\n", settled.Seconds())

	// A batch of backups released from pause, and the queues meanwhile.
	before := scrape(b, metricsAddr)
	writesAtRelease := apiWrites(b, c.Config())
	released := time.Now()
	var runs []client.ObjectKey
	for i := 0; i < sessions && i < configs; i++ {
		bc := &corev1alpha1.BackupConfiguration{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: fmt.Sprintf("c-%04d", i)}, bc); err != nil {
			b.Fatal(err)
		}
		bc.Spec.Paused = false
		if err := kube.Update(ctx, bc); err != nil {
			b.Fatal(err)
		}
		bs, err := trigger.Create(ctx, kube, bc, benchSession, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		runs = append(runs, client.ObjectKeyFromObject(bs))
	}
	succeeded := 0
	waitFor(b, 15*time.Minute, "the released backups did not all finish", func(ctx context.Context) (bool, error) {
		succeeded = 0
		for _, k := range runs {
			bs := &corev1alpha1.BackupSession{}
			if err := kube.Get(ctx, k, bs); err != nil {
				return false, nil
			}
			switch bs.Status.Phase {
			case corev1alpha1.BackupSessionSucceeded:
				succeeded++
			case corev1alpha1.BackupSessionFailed, corev1alpha1.BackupSessionSkipped:
			default:
				return false, nil
			}
		}
		return true, nil
	})
	batch := time.Since(released)
	after := scrape(b, metricsAddr)
	writesAtDone := apiWrites(b, c.Config())
	p99, worst, worstP99, count, over := queueLatency(before, after)
	peak, err := proc.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	// What the memory costs in processor time: the collector's share
	// grows as the heap is held closer to what is live (--gc-percent).
	cpu, err := proc.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	fileRSS, err := proc.ResidentFile()
	if err != nil {
		b.Fatal(err)
	}

	fmt.Printf("scale: %d configurations, %d snapshots, one provider process, flags %v beyond its defaults (load average before: %s, after: %s)\n", configs, snapshots, extra, loadBefore, loadAverage())
	fmt.Printf("  provider peak RSS:                     %6.1f MiB  (target < %d MiB)  %s\n", float64(peak)/(1<<20), targetPeakRSS>>20, verdict(float64(peak) < targetPeakRSS))
	fmt.Printf("  provider processor time since start:   %6.1f s;  resident now in file pages (its binary): %.1f MiB\n", cpu.Seconds(), float64(fileRSS)/(1<<20))
	fmt.Printf("  last create -> all Ready:              %6.1f s    (target < %.0f s)    %s\n", allReady.Seconds(), targetAllReady.Seconds(), verdict(allReady < targetAllReady))
	fmt.Printf("  last create -> all Snapshots recorded: %6.1f s\n", synced.Seconds())
	fmt.Printf("  then -> the provider's queues empty:   %6.1f s\n", settled.Seconds())
	overShare := 0.0
	if count > 0 {
		overShare = 100 * float64(over) / float64(count)
	}
	fmt.Printf("  queue latency p99, %d backups running: in the %g s bucket; %d of %d requests (%.2f%%) waited over %.0f s  (target p99 < %.0f s: under 1%%)    %s; worst controller %s p99 in the %g s bucket\n",
		len(runs), p99, over, count, overShare, targetQueueLatency.Seconds(), targetQueueLatency.Seconds(), verdict(overShare < 1), worst, worstP99)
	fmt.Printf("  the batch of %d backups: %d succeeded in %s\n", len(runs), succeeded, batch.Round(time.Second))
	fmt.Printf("  while they ran, by queue (priority) and controller:\n%s\n", byQueue(before, after))
	fmt.Printf("  the provider's requests held by its client-side rate limit while they ran:\n%s\n", throttled(before, after))
	fmt.Printf("  the API server's writes (every client, the bench's own creates too), first create -> all Ready:\n%s\n", writesBetween(writesAtStart, writesAtReady, configs))
	fmt.Printf("  and all Ready -> all Snapshots recorded:\n%s\n", writesBetween(writesAtReady, writesAtRecorded, configs))
	fmt.Printf("  and while the batch of backups ran:\n%s\n", writesBetween(writesAtRelease, writesAtDone, configs))
	fmt.Printf("  the events in the bench's namespace at all Ready, by type, kind and reason:\n%s\n", eventsAtReady)
	fmt.Printf("  the provider's requests held by its client-side rate limit (--kube-api-qps, per kind), first create -> all Ready:\n%s\n", throttled(metricsAtStart, metricsAtReady))
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
	b.ReportMetric(cpu.Seconds(), "provider-cpu-s")
	b.ReportMetric(allReady.Seconds(), "ready-s")
	b.ReportMetric(p99, "queue-p99-s")
	b.ReportMetric(overShare, "queue-over-target-%")
	if succeeded != len(runs) {
		b.Errorf("%d of the %d released backups did not succeed:\n%s", len(runs)-succeeded, len(runs), whyNotSucceeded(kube, runs))
	}
}

// whyNotSucceeded says, for each run that did not succeed, its phase, its
// conditions that are not True and its Snapshots' errors.
func whyNotSucceeded(kube client.Client, runs []client.ObjectKey) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out strings.Builder
	for _, k := range runs {
		bs := &corev1alpha1.BackupSession{}
		if err := kube.Get(ctx, k, bs); err != nil {
			fmt.Fprintf(&out, "  %s: %v\n", k, err)
			continue
		}
		if bs.Status.Phase == corev1alpha1.BackupSessionSucceeded {
			continue
		}
		fmt.Fprintf(&out, "  %s: %s\n", k, bs.Status.Phase)
		for _, c := range bs.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				fmt.Fprintf(&out, "    %s %s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
			}
		}
		for _, st := range bs.Status.Snapshots {
			snap := &storagev1alpha1.Snapshot{}
			if err := kube.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: st.Name}, snap); err != nil {
				fmt.Fprintf(&out, "    snapshot %s: %v\n", st.Name, err)
				continue
			}
			for name, c := range snap.Status.Components {
				if c.Error != "" {
					fmt.Fprintf(&out, "    snapshot %s component %s: %s\n", st.Name, name, c.Error)
				}
			}
		}
	}
	return out.String()
}

// parallel runs f for 0..n-1, eight at a time, and fails on the first
// error.
func parallel(b *testing.B, n int, f func(i int) error) {
	b.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		b.Fatalf("%d creates failed, the first: %v", len(errs), errs[0])
	}
}

// countNotReady counts the configurations and Repositories that are not
// Ready, and names the first.
func countNotReady(ctx context.Context, kube client.Reader) (int, string, error) {
	n, first := 0, ""
	configs := &corev1alpha1.BackupConfigurationList{}
	if err := kube.List(ctx, configs, client.InNamespace(benchNamespace)); err != nil {
		return 0, "", err
	}
	for _, bc := range configs.Items {
		if bc.Status.Phase != corev1alpha1.BackupInvokerReady {
			if n++; first == "" {
				first = "backupconfiguration " + bc.Name + " " + string(bc.Status.Phase)
			}
		}
	}
	repos := &storagev1alpha1.RepositoryList{}
	if err := kube.List(ctx, repos, client.InNamespace(benchNamespace)); err != nil {
		return 0, "", err
	}
	if len(repos.Items) < len(configs.Items) {
		n += len(configs.Items) - len(repos.Items)
	}
	for _, r := range repos.Items {
		if r.GetCondition("Ready").Status != corev1.ConditionTrue {
			if n++; first == "" {
				first = "repository " + r.Name
			}
		}
	}
	return n, first, nil
}

// watchCache is a cache of the bench namespace's configurations,
// Repositories and Snapshots, kept by watches.
func watchCache(b *testing.B, cfg *rest.Config) cache.Cache {
	b.Helper()
	s, err := apis.Scheme()
	if err != nil {
		b.Fatal(err)
	}
	// Its watches' notes go nowhere: the provider's log is what is read.
	ctrllog.SetLogger(logr.Discard())
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 50, 100
	ch, err := cache.New(cfg, cache.Options{Scheme: s, DefaultNamespaces: map[string]cache.Config{benchNamespace: {}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go func() { _ = ch.Start(ctx) }()
	for _, o := range []client.Object{&corev1alpha1.BackupConfiguration{}, &storagev1alpha1.Repository{}, &storagev1alpha1.Snapshot{}} {
		if _, err := ch.GetInformer(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	if !ch.WaitForCacheSync(ctx) {
		b.Fatal("the bench's cache did not sync")
	}
	return ch
}

// freeAddress is a free loopback address for the provider's metrics.
func freeAddress(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrape reads the provider's metrics.
func scrape(b *testing.B, addr string) map[string]*dto.MetricFamily {
	b.Helper()
	var families map[string]*dto.MetricFamily
	waitFor(b, time.Minute, "the provider's metrics endpoint did not answer", func(context.Context) (bool, error) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err = parser.TextToMetricFamilies(resp.Body)
		return err == nil, nil
	})
	return families
}

// queued is the number of requests waiting in the provider's reconcile
// queues, ready to be worked on.
func queued(fams map[string]*dto.MetricFamily) float64 {
	n := 0.0
	if f := fams["workqueue_depth"]; f != nil {
		for _, m := range f.Metric {
			n += m.GetGauge().GetValue()
		}
	}
	return n
}

// histograms are the buckets of a histogram family's series between two
// scrapes, by series: the values of the labels named, joined with "/".
func histograms(before, after map[string]*dto.MetricFamily, name string, labels ...string) map[string]map[float64]uint64 {
	buckets := func(fams map[string]*dto.MetricFamily) map[string]map[float64]uint64 {
		out := map[string]map[float64]uint64{}
		f := fams[name]
		if f == nil {
			return out
		}
		for _, m := range f.Metric {
			var key []string
			for _, want := range labels {
				for _, l := range m.Label {
					if l.GetName() == want && l.GetValue() != "" {
						key = append(key, l.GetValue())
					}
				}
			}
			k := strings.Join(key, "/")
			if out[k] == nil {
				out[k] = map[float64]uint64{}
			}
			for _, bk := range m.GetHistogram().GetBucket() {
				// The text format lists the +Inf bucket too: the
				// sample count below is that bucket, counted once.
				if !math.IsInf(bk.GetUpperBound(), 1) {
					out[k][bk.GetUpperBound()] += bk.GetCumulativeCount()
				}
			}
			out[k][math.Inf(1)] += m.GetHistogram().GetSampleCount()
		}
		return out
	}
	b0, b1 := buckets(before), buckets(after)
	out := map[string]map[float64]uint64{}
	for k, cum := range b1 {
		out[k] = map[float64]uint64{}
		for ub, v := range cum {
			out[k][ub] = v - b0[k][ub]
		}
	}
	return out
}

// throttled says, by verb, how many of the provider's requests passed its
// client-side rate limiter between two scrapes, the time they waited in it
// all told, and the bucket of its p99.
func throttled(before, after map[string]*dto.MetricFamily) string {
	const name = "rest_client_rate_limiter_duration_seconds"
	sums := func(fams map[string]*dto.MetricFamily) map[string]float64 {
		out := map[string]float64{}
		if f := fams[name]; f != nil {
			for _, m := range f.Metric {
				for _, l := range m.Label {
					if l.GetName() == "verb" {
						out[l.GetValue()] += m.GetHistogram().GetSampleSum()
					}
				}
			}
		}
		return out
	}
	s0, s1 := sums(before), sums(after)
	var lines []string
	for verb, cum := range histograms(before, after, name, "verb") {
		p99, n := quantile(cum, 0.99)
		if n == 0 {
			continue
		}
		lines = append(lines, fmt.Sprintf("    %-7s %7d requests, %8.1f s waited in all, p99 in the %g s bucket", verb, n, s1[verb]-s0[verb], p99))
	}
	if len(lines) == 0 {
		return "    (the provider serves no " + name + ")"
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// quantile is the upper bound of the bucket the q-quantile of a
// histogram's cumulative buckets falls in, and how many samples it holds.
func quantile(cum map[float64]uint64, q float64) (float64, uint64) {
	bounds := make([]float64, 0, len(cum))
	for ub := range cum {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	n := cum[math.Inf(1)]
	if n == 0 {
		return 0, 0
	}
	for _, ub := range bounds {
		if float64(cum[ub]) >= q*float64(n) {
			return ub, n
		}
	}
	return math.Inf(1), n
}

// queueLatency is the p99 of workqueue_queue_duration_seconds between two
// scrapes, over every controller's queue and for the worst one, and how
// many requests it counts. A p99 is the upper bound of the bucket it
// falls in. Each queue counts all its priorities.
func queueLatency(before, after map[string]*dto.MetricFamily) (p99 float64, worst string, worstP99 float64, count, over uint64) {
	total := map[float64]uint64{}
	for q, delta := range histograms(before, after, "workqueue_queue_duration_seconds", "name") {
		for ub, v := range delta {
			total[ub] += v
		}
		if p, n := quantile(delta, 0.99); n > 0 && p > worstP99 {
			worst, worstP99 = q, p
		}
	}
	p99, count = quantile(total, 0.99)
	// The target is a bucket's bound, so the requests that waited longer
	// are counted exactly: the p99 is under the target when fewer than
	// one in a hundred did.
	// Bounds made by multiplying may be off in the last digit.
	over = count
	for ub, n := range total {
		if math.Abs(ub-targetQueueLatency.Seconds()) < 1e-6 {
			over = count - n
		}
	}
	return p99, worst, worstP99, count, over
}

// byQueue says, for each queue (and priority) and each controller that
// had work between two scrapes, the p99 of its wait in the queue and of
// its reconciles, the buckets they fall in: a wait is bounded below by
// the reconcile the key waits behind.
func byQueue(before, after map[string]*dto.MetricFamily) string {
	var lines []string
	waits := histograms(before, after, "workqueue_queue_duration_seconds", "name", "priority")
	keys := make([]string, 0, len(waits))
	for k := range waits {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if p, n := quantile(waits[k], 0.99); n > 0 {
			lines = append(lines, fmt.Sprintf("    wait in queue %-40s p99 %6.3f s  (%d, %d over 1 s)", k, p, n, n-waits[k][1]))
		}
	}
	runs := histograms(before, after, "controller_runtime_reconcile_time_seconds", "controller")
	keys = keys[:0]
	for k := range runs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if p, n := quantile(runs[k], 0.99); n > 0 {
			p50, _ := quantile(runs[k], 0.5)
			lines = append(lines, fmt.Sprintf("    reconcile %-44s p50 %6.3f s  p99 %6.3f s  (%d)", k, p50, p, n))
		}
	}
	return strings.Join(lines, "\n")
}

// apiWrites reads the API server's own count of the requests that change
// something (apiserver_request_total), by verb and resource.
func apiWrites(b *testing.B, cfg *rest.Config) map[string]float64 {
	b.Helper()
	rc, err := rest.RESTClientFor(restConfigForMetrics(cfg))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := rc.Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatalf("cannot read the API server's metrics: %v", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		b.Fatalf("cannot parse the API server's metrics: %v", err)
	}
	out := map[string]float64{}
	f := fams["apiserver_request_total"]
	if f == nil {
		return out
	}
	for _, m := range f.Metric {
		l := map[string]string{}
		for _, p := range m.Label {
			l[p.GetName()] = p.GetValue()
		}
		switch l["verb"] {
		case "POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION":
		default:
			continue
		}
		r := l["resource"]
		if l["subresource"] != "" {
			r += "/" + l["subresource"]
		}
		out[l["verb"]+" "+r] += m.GetCounter().GetValue()
	}
	return out
}

// restConfigForMetrics is cfg able to read a path outside the API groups.
func restConfigForMetrics(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &schema.GroupVersion{}
	c.APIPath = "/"
	c.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	return c
}

// eventsByReason counts the events of the bench's namespace by type, the
// kind of the object they are about and reason, with their counts (an
// event repeated is one object whose count grows), the most first.
func eventsByReason(ctx context.Context, b *testing.B, kube client.Client) string {
	list := &corev1.EventList{}
	if err := kube.List(ctx, list, client.InNamespace(benchNamespace)); err != nil {
		b.Fatal(err)
	}
	type tally struct{ objects, count int }
	by := map[string]*tally{}
	for _, e := range list.Items {
		k := e.Type + " " + e.InvolvedObject.Kind + " " + e.Reason
		if by[k] == nil {
			by[k] = &tally{}
		}
		by[k].objects++
		by[k].count += int(max(e.Count, 1))
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return by[keys[i]].objects > by[keys[j]].objects || by[keys[i]].objects == by[keys[j]].objects && keys[i] < keys[j]
	})
	lines := []string{}
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("    %-70s %6d events, %6d times", k, by[k].objects, by[k].count))
	}
	return strings.Join(lines, "\n")
}

// writesBetween says how many writes of each verb and resource the API
// server took between two reads, the largest first, per configuration.
func writesBetween(before, after map[string]float64, configs int) string {
	type row struct {
		k string
		n float64
	}
	var rows []row
	total := 0.0
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			rows = append(rows, row{k, d})
			total += d
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].n > rows[j].n || rows[i].n == rows[j].n && rows[i].k < rows[j].k })
	lines := []string{fmt.Sprintf("    %-60s %7.0f  (%.1f per configuration)", "all writes", total, total/float64(configs))}
	for _, r := range rows {
		lines = append(lines, fmt.Sprintf("    %-60s %7.0f  (%.2f per configuration)", r.k, r.n, r.n/float64(configs)))
	}
	return strings.Join(lines, "\n")
}
