package metrics

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/cachestore"
)

// Metrics of what the cluster holds, read at each scrape.
var (
	descLastSuccess = prometheus.NewDesc("stashplane_backup_last_success_timestamp_seconds",
		"When the newest Succeeded Snapshot of a configuration's session was taken (Unix time).",
		[]string{"namespace", "configuration", "session"}, nil)
	descSnapshots = prometheus.NewDesc("stashplane_snapshots",
		"Snapshots of a repository by phase: Pending, Running, Succeeded or Failed.",
		[]string{"namespace", "repository", "phase"}, nil)
	descNewestVerified = prometheus.NewDesc("stashplane_snapshot_newest_verified_timestamp_seconds",
		"When the newest Verified Snapshot of a repository was taken (Unix time); absent while none is Verified.",
		[]string{"namespace", "repository"}, nil)
	descRepositorySize = prometheus.NewDesc("stashplane_repository_size_bytes",
		"Size of a repository's data in its storage, as its status records it.",
		[]string{"namespace", "repository"}, nil)
	descLastProcessed = prometheus.NewDesc("stashplane_backup_last_bytes_processed",
		"Bytes restic read for the newest Succeeded Snapshot of a repository, summed over its components.",
		[]string{"namespace", "repository"}, nil)
	descLastAdded = prometheus.NewDesc("stashplane_backup_last_bytes_added",
		"Bytes restic added to storage for the newest Succeeded Snapshot of a repository, summed over its components.",
		[]string{"namespace", "repository"}, nil)
	descLastFiles = prometheus.NewDesc("stashplane_backup_last_files",
		"Files restic read for the newest Succeeded Snapshot of a repository, summed over its components.",
		[]string{"namespace", "repository"}, nil)
)

var snapshotPhases = []storagev1alpha1.SnapshotPhase{
	storagev1alpha1.SnapshotPending, storagev1alpha1.SnapshotRunning,
	storagev1alpha1.SnapshotSucceeded, storagev1alpha1.SnapshotFailed,
}

// scrapeTimeout bounds the cache reads of one scrape.
const scrapeTimeout = 10 * time.Second

// stateCollector reads Repositories and Snapshots at each scrape from the
// reader Setup gave it: the manager's cache. One provider runs per
// process; a process that runs several (tests) serves the last one's.
type stateCollector struct {
	source atomic.Pointer[source]
}

type source struct {
	cache cache.Informers
	log   logr.Logger
}

var state = &stateCollector{}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLastSuccess, descSnapshots, descNewestVerified, descRepositorySize, descLastProcessed, descLastAdded, descLastFiles} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.source.Load()
	if src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	repos, err := cachestore.Objects[storagev1alpha1.Repository](ctx, src.cache)
	if err != nil {
		src.log.Error(err, "cannot list repositories for metrics")
		return
	}
	snaps, err := cachestore.Objects[storagev1alpha1.Snapshot](ctx, src.cache)
	if err != nil {
		src.log.Error(err, "cannot list snapshots for metrics")
		return
	}
	for _, m := range stateMetrics(repos, snaps) {
		ch <- m
	}
}

type repoKey struct{ namespace, repository string }

type sessionKey struct{ namespace, configuration, session string }

// snapshotTime is when a Snapshot was taken: its status's time, else its
// creation.
func snapshotTime(s *storagev1alpha1.Snapshot) time.Time {
	if s.Status.SnapshotTime != nil {
		return s.Status.SnapshotTime.Time
	}
	return s.CreationTimestamp.Time
}

// stateMetrics derives the metrics of what the cluster holds from its
// Repositories and Snapshots.
func stateMetrics(repos []*storagev1alpha1.Repository, snaps []*storagev1alpha1.Snapshot) []prometheus.Metric {
	var out []prometheus.Metric
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	phases := map[repoKey]map[storagev1alpha1.SnapshotPhase]int{}
	for _, r := range repos {
		k := repoKey{r.Namespace, r.Name}
		phases[k] = map[storagev1alpha1.SnapshotPhase]int{}
		if size, err := storagev1alpha1.ParseSize(r.Status.Size); err == nil && r.Status.Size != "" {
			gauge(descRepositorySize, float64(size), r.Namespace, r.Name)
		}
	}
	lastSuccess := map[sessionKey]time.Time{}
	newestSucceeded := map[repoKey]*storagev1alpha1.Snapshot{}
	newestVerified := map[repoKey]time.Time{}
	for _, s := range snaps {
		k := repoKey{s.Namespace, s.Spec.Repository}
		if phases[k] == nil {
			phases[k] = map[storagev1alpha1.SnapshotPhase]int{}
		}
		phases[k][s.Status.Phase]++
		at := snapshotTime(s)
		if s.Status.VerificationStatus == storagev1alpha1.SnapshotVerified && at.After(newestVerified[k]) {
			newestVerified[k] = at
		}
		if s.Status.Phase != storagev1alpha1.SnapshotSucceeded {
			continue
		}
		if n := newestSucceeded[k]; n == nil || at.After(snapshotTime(n)) {
			newestSucceeded[k] = s
		}
		if config := s.Labels[corev1alpha1.LabelInvokerName]; config != "" && s.Spec.Session != "" {
			sk := sessionKey{s.Namespace, config, s.Spec.Session}
			if at.After(lastSuccess[sk]) {
				lastSuccess[sk] = at
			}
		}
	}
	for k, byPhase := range phases {
		for _, p := range snapshotPhases {
			gauge(descSnapshots, float64(byPhase[p]), k.namespace, k.repository, string(p))
		}
	}
	for k, at := range newestVerified {
		gauge(descNewestVerified, unix(at), k.namespace, k.repository)
	}
	for k, at := range lastSuccess {
		gauge(descLastSuccess, unix(at), k.namespace, k.configuration, k.session)
	}
	for k, s := range newestSucceeded {
		processed, added, files := snapshotStats(s)
		gauge(descLastProcessed, float64(processed), k.namespace, k.repository)
		gauge(descLastAdded, float64(added), k.namespace, k.repository)
		gauge(descLastFiles, float64(files), k.namespace, k.repository)
	}
	return out
}

// snapshotStats sums restic's summaries over a Snapshot's components:
// bytes read, bytes added to storage, files read. Sizes are read back from
// the people's units the agent wrote them in.
func snapshotStats(s *storagev1alpha1.Snapshot) (processed, added, files int64) {
	for _, c := range s.Status.Components {
		for _, st := range c.ResticStats {
			if st.Summary == nil {
				continue
			}
			if n, err := storagev1alpha1.ParseSize(st.Summary.Size); err == nil {
				processed += n
			}
			if n, err := storagev1alpha1.ParseSize(st.Summary.Uploaded); err == nil {
				added += n
			}
			files += st.Summary.Files
		}
	}
	return processed, added, files
}

func unix(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
