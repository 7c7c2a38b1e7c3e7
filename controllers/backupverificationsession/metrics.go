package backupverificationsession

import (
	"time"

	"github.com/stashplane/stashplane/internal/metrics"
)

// observe records one verdict and what its restore measured on the
// provider's metrics endpoint (internal/metrics).
func observe(namespace, repository, result string, restore time.Duration, bytes int64) {
	metrics.ObserveVerdict(namespace, repository, result, restore, bytes)
}
