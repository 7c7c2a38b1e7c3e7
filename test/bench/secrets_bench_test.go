package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/stashplane/stashplane/apis"
	"github.com/stashplane/stashplane/internal/devcluster"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
)

// BenchmarkForeignSecrets measures what the Secrets of a cluster that
// Stashplane does not use cost the provider's memory: STASHPLANE_BENCH_SECRETS
// (2,000) Secrets of STASHPLANE_BENCH_SECRET_BYTES (32 KiB) each, as Helm
// releases and certificates fill a real cluster, are created beside a
// running provider. It prints, side by side in one run:
//   - how much the provider's resident memory grew (the provider holds
//     Secrets as metadata, internal/secretcache);
//   - how much a cache of whole Secrets, as a controller that watches them
//     holds, grows this process's live heap;
//
// and the provider's growth as a share of the Secrets' data (target: below
// 10%).
func BenchmarkForeignSecrets(b *testing.B) {
	n := envInt("STASHPLANE_BENCH_SECRETS", 2000)
	size := envInt("STASHPLANE_BENCH_SECRET_BYTES", 32<<10)
	loadBefore := loadAverage()
	ctx := context.Background()
	c, kube := startCluster(b, rest.Config{QPS: 500, Burst: 1000})
	bin, err := devclustertest.BinDir()
	if err != nil {
		b.Fatal(err)
	}
	proc, err := c.StartProvider(filepath.Join(bin, "stashplane"), "--metrics-address", "0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(proc.Stop)
	before := settledRSS(b, proc)

	if err := kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "releases"}}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	parallel(b, n, func(i int) error {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		return kube.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("release-%05d", i), Namespace: "releases", Labels: map[string]string{"owner": "helm"}},
			Type:       "helm.sh/release.v1",
			Data:       map[string][]byte{"release": data},
		})
	})
	fmt.Printf("created %d Secrets of %d KiB in %s\n", n, size>>10, time.Since(start).Round(time.Millisecond))
	after := settledRSS(b, proc)
	peak, err := proc.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}

	whole := wholeSecretsHeap(b, c.Config(), n)
	dataMiB := float64(n) * float64(size) / (1 << 20)
	grew := float64(after-before) / (1 << 20)
	fmt.Printf("load before %s, after %s\n", loadBefore, loadAverage())
	fmt.Printf("the Secrets' data: %.1f MiB\n", dataMiB)
	fmt.Printf("provider resident memory: %.1f MiB before, %.1f MiB after (peak %.1f MiB): grew %.1f MiB, %.1f%% of the data (target < 10%%)\n",
		float64(before)/(1<<20), float64(after)/(1<<20), float64(peak)/(1<<20), grew, 100*grew/dataMiB)
	fmt.Printf("a cache of whole Secrets, side by side: %.1f MiB of live heap, %.0f%% of the data\n", whole, 100*whole/dataMiB)
	b.ReportMetric(grew, "provider-grew-MiB")
	b.ReportMetric(whole, "whole-cache-MiB")
	if grew > dataMiB/10 {
		b.Errorf("the provider grew by %.1f MiB for %.1f MiB of Secrets it does not use", grew, dataMiB)
	}
}

// settledRSS waits until the provider's resident memory has moved by less
// than 1 MiB over five seconds (at most two minutes) and returns it.
func settledRSS(b *testing.B, proc *devcluster.ProviderProcess) int64 {
	b.Helper()
	var last []int64
	var rss int64
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, 2*time.Minute, true, func(context.Context) (bool, error) {
		r, err := proc.RSS()
		if err != nil {
			return false, err
		}
		rss = r
		last = append(last, r)
		if len(last) < 6 {
			return false, nil
		}
		window := last[len(last)-6:]
		lo, hi := window[0], window[0]
		for _, v := range window {
			lo, hi = min(lo, v), max(hi, v)
		}
		return hi-lo < 1<<20, nil
	})
	if err != nil {
		b.Fatalf("the provider's memory did not settle: %v", err)
	}
	return rss
}

// wholeSecretsHeap is how much live heap, in MiB, a cache of the cluster's
// whole Secrets (managed fields stripped, as the provider's cache does) adds
// to this process.
func wholeSecretsHeap(b *testing.B, cfg *rest.Config, want int) float64 {
	b.Helper()
	s, err := apis.Scheme()
	if err != nil {
		b.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	ctrllog.SetLogger(logr.Discard())
	ch, err := cache.New(cfg, cache.Options{Scheme: s, DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := heap()
	go func() { _ = ch.Start(ctx) }()
	if _, err := ch.GetInformer(ctx, &corev1.Secret{}); err != nil {
		b.Fatal(err)
	}
	if !ch.WaitForCacheSync(ctx) {
		b.Fatal("the cache of whole Secrets did not sync")
	}
	after := heap()
	// Counted without copies, after the heap was read.
	list := &corev1.SecretList{}
	if err := ch.List(ctx, list, client.InNamespace("releases"), client.UnsafeDisableDeepCopy); err != nil {
		b.Fatal(err)
	}
	if len(list.Items) != want {
		b.Fatalf("the cache of whole Secrets holds %d of the %d", len(list.Items), want)
	}
	return float64(after-before) / (1 << 20)
}
