// Package metrics defines every Prometheus metric Stashplane serves on the
// provider's metrics endpoint, beside controller-runtime's own. Metrics of
// what a run did are observed when it ends (ObserveVerdict, and the
// session observer Setup adds); metrics of what the cluster holds now
// (last success, Snapshots by phase, repository size, newest Verified
// Snapshot) are read from the manager's cache at each scrape, so they
// survive a provider restart and never disagree with the objects.
//
// Label sets are bounded by what users write, never by what runs make:
// namespace, configuration and the configuration's session name (an entry
// of spec.sessions), or namespace and repository. No label holds a
// BackupSession's or Snapshot's name, which grow with every run.
// docs/metrics.md lists every metric; Names lists them for tests.
package metrics

import (
	"regexp"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of what runs did, observed when they end.
var (
	verificationRestoreDuration = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stashplane_verification_restore_duration_seconds",
		Help: "How long the last verification of a repository's snapshot took to restore it.",
	}, []string{"namespace", "repository"})

	verificationRestoredBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stashplane_verification_restored_bytes",
		Help: "How many bytes the last verification of a repository's snapshot restored.",
	}, []string{"namespace", "repository"})

	verificationVerdicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stashplane_verification_verdicts_total",
		Help: "Verdicts given on snapshots, by result: Verified or VerificationFailed.",
	}, []string{"namespace", "repository", "result"})

	backupSessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stashplane_backup_sessions_total",
		Help: "Backup sessions that ended while this provider ran, by phase: Succeeded, Failed or Skipped.",
	}, []string{"namespace", "configuration", "session", "phase"})

	backupSessionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "stashplane_backup_session_duration_seconds",
		Help: "How long backup sessions that Succeeded or Failed ran, from creation to their outcome.",
		// 5 s to about 6 h.
		Buckets: prometheus.ExponentialBuckets(5, 2.5, 9),
	}, []string{"namespace", "configuration", "session", "phase"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(collectors()...)
}

func collectors() []prometheus.Collector {
	return []prometheus.Collector{
		verificationRestoreDuration, verificationRestoredBytes, verificationVerdicts,
		backupSessions, backupSessionDuration, state,
	}
}

// ObserveVerdict records one verification verdict and what its restore
// measured.
func ObserveVerdict(namespace, repository, result string, restore time.Duration, bytes int64) {
	verificationRestoreDuration.WithLabelValues(namespace, repository).Set(restore.Seconds())
	verificationRestoredBytes.WithLabelValues(namespace, repository).Set(float64(bytes))
	verificationVerdicts.WithLabelValues(namespace, repository, result).Inc()
}

var descName = regexp.MustCompile(`fqName: "([a-z_:0-9]+)"`)

// Names are the names of every metric Stashplane defines, sorted.
func Names() []string {
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range collectors() {
			c.Describe(ch)
		}
		close(ch)
	}()
	var out []string
	for d := range ch {
		if m := descName.FindStringSubmatch(d.String()); m != nil {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
