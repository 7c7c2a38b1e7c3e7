package backupverificationsession

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of verification, served on the provider's metrics endpoint with
// controller-runtime's own.
var (
	restoreDuration = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stashplane_verification_restore_duration_seconds",
		Help: "How long the last verification of a repository's snapshot took to restore it.",
	}, []string{"namespace", "repository"})

	restoredBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stashplane_verification_restored_bytes",
		Help: "How many bytes the last verification of a repository's snapshot restored.",
	}, []string{"namespace", "repository"})

	verdicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stashplane_verification_verdicts_total",
		Help: "Verdicts given on snapshots, by result: Verified or VerificationFailed.",
	}, []string{"namespace", "repository", "result"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(restoreDuration, restoredBytes, verdicts)
}

// observe records one verdict and what its restore measured.
func observe(namespace, repository, result string, restore time.Duration, bytes int64) {
	restoreDuration.WithLabelValues(namespace, repository).Set(restore.Seconds())
	restoredBytes.WithLabelValues(namespace, repository).Set(float64(bytes))
	verdicts.WithLabelValues(namespace, repository, result).Inc()
}
