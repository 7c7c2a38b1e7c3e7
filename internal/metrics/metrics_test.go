package metrics

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func snap(name, repo, session string, phase storagev1alpha1.SnapshotPhase, verdict storagev1alpha1.VerificationStatus, at time.Time, comps map[string]storagev1alpha1.Component) storagev1alpha1.Snapshot {
	return storagev1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{corev1alpha1.LabelInvokerName: "app"},
			CreationTimestamp: metav1.NewTime(at.Add(-time.Minute))},
		Spec: storagev1alpha1.SnapshotSpec{Repository: repo, Session: session},
		Status: storagev1alpha1.SnapshotStatus{Phase: phase, VerificationStatus: verdict, SnapshotTime: &metav1.Time{Time: at},
			Components: comps},
	}
}

func summary(size, uploaded string, files int64) map[string]storagev1alpha1.Component {
	return map[string]storagev1alpha1.Component{"dump": {ResticStats: []storagev1alpha1.ResticStats{
		{Summary: &storagev1alpha1.ResticSummary{Size: size, Uploaded: uploaded, Files: files}}}}}
}

// collectState serves stateMetrics from a collector of its own, so the
// test reads them as Prometheus' text format.
type fixedCollector []prometheus.Metric

func (f fixedCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(f, ch) }
func (f fixedCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range f {
		ch <- m
	}
}

func TestStateMetrics(t *testing.T) {
	repo := storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "ns"},
		Status: storagev1alpha1.RepositoryStatus{Size: "2 MiB"}}
	empty := storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "empty", Namespace: "ns"}}
	cases := map[string]struct {
		reason string
		repos  []storagev1alpha1.Repository
		snaps  []storagev1alpha1.Snapshot
		want   string
	}{
		"NewestWins": {
			reason: "The last success and byte counts are the newest Succeeded Snapshot's; the newest Verified one may be older; a Failed one counts only by phase.",
			repos:  []storagev1alpha1.Repository{repo, empty},
			snaps: []storagev1alpha1.Snapshot{
				snap("old", "data", "daily", storagev1alpha1.SnapshotSucceeded, storagev1alpha1.SnapshotVerified, t0, summary("1 MiB", "1 MiB", 10)),
				snap("new", "data", "daily", storagev1alpha1.SnapshotSucceeded, "", t0.Add(time.Hour), summary("1.5 MiB", "512 KiB", 12)),
				snap("failed", "data", "daily", storagev1alpha1.SnapshotFailed, "", t0.Add(2*time.Hour), nil),
				snap("running", "data", "hourly", storagev1alpha1.SnapshotRunning, "", t0.Add(3*time.Hour), nil),
			},
			want: `
# HELP stashplane_backup_last_bytes_added Bytes restic added to storage for the newest Succeeded Snapshot of a repository, summed over its components.
# TYPE stashplane_backup_last_bytes_added gauge
stashplane_backup_last_bytes_added{namespace="ns",repository="data"} 524288
# HELP stashplane_backup_last_bytes_processed Bytes restic read for the newest Succeeded Snapshot of a repository, summed over its components.
# TYPE stashplane_backup_last_bytes_processed gauge
stashplane_backup_last_bytes_processed{namespace="ns",repository="data"} 1.572864e+06
# HELP stashplane_backup_last_files Files restic read for the newest Succeeded Snapshot of a repository, summed over its components.
# TYPE stashplane_backup_last_files gauge
stashplane_backup_last_files{namespace="ns",repository="data"} 12
# HELP stashplane_backup_last_success_timestamp_seconds When the newest Succeeded Snapshot of a configuration's session was taken (Unix time).
# TYPE stashplane_backup_last_success_timestamp_seconds gauge
stashplane_backup_last_success_timestamp_seconds{configuration="app",namespace="ns",session="daily"} 1.7961228e+09
# HELP stashplane_repository_size_bytes Size of a repository's data in its storage, as its status records it.
# TYPE stashplane_repository_size_bytes gauge
stashplane_repository_size_bytes{namespace="ns",repository="data"} 2.097152e+06
# HELP stashplane_snapshot_newest_verified_timestamp_seconds When the newest Verified Snapshot of a repository was taken (Unix time); absent while none is Verified.
# TYPE stashplane_snapshot_newest_verified_timestamp_seconds gauge
stashplane_snapshot_newest_verified_timestamp_seconds{namespace="ns",repository="data"} 1.7961192e+09
# HELP stashplane_snapshots Snapshots of a repository by phase: Pending, Running, Succeeded or Failed.
# TYPE stashplane_snapshots gauge
stashplane_snapshots{namespace="ns",phase="Failed",repository="data"} 1
stashplane_snapshots{namespace="ns",phase="Pending",repository="data"} 0
stashplane_snapshots{namespace="ns",phase="Running",repository="data"} 1
stashplane_snapshots{namespace="ns",phase="Succeeded",repository="data"} 2
stashplane_snapshots{namespace="ns",phase="Failed",repository="empty"} 0
stashplane_snapshots{namespace="ns",phase="Pending",repository="empty"} 0
stashplane_snapshots{namespace="ns",phase="Running",repository="empty"} 0
stashplane_snapshots{namespace="ns",phase="Succeeded",repository="empty"} 0
`,
		},
		"NothingSucceeded": {
			reason: "With no Succeeded Snapshot there is no last success, so an alert on its absence fires.",
			snaps:  []storagev1alpha1.Snapshot{snap("failed", "data", "daily", storagev1alpha1.SnapshotFailed, "", t0, nil)},
			want: `
# HELP stashplane_snapshots Snapshots of a repository by phase: Pending, Running, Succeeded or Failed.
# TYPE stashplane_snapshots gauge
stashplane_snapshots{namespace="ns",phase="Failed",repository="data"} 1
stashplane_snapshots{namespace="ns",phase="Pending",repository="data"} 0
stashplane_snapshots{namespace="ns",phase="Running",repository="data"} 0
stashplane_snapshots{namespace="ns",phase="Succeeded",repository="data"} 0
`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := fixedCollector(stateMetrics(pointers(tc.repos), pointers(tc.snaps)))
			if err := testutil.CollectAndCompare(c, strings.NewReader(tc.want)); err != nil {
				t.Errorf("\n%s\nstateMetrics(...): %v", tc.reason, err)
			}
		})
	}
}

func session(phase corev1alpha1.BackupSessionPhase, duration string) *corev1alpha1.BackupSession {
	return &corev1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Name: "app-daily-1", Namespace: "ns-observe"},
		Spec:       corev1alpha1.BackupSessionSpec{Invoker: storagev1alpha1.TypedObjectReference{Name: "app"}, Session: "daily"},
		Status:     corev1alpha1.BackupSessionStatus{Phase: phase, Duration: duration},
	}
}

func TestObserveSession(t *testing.T) {
	running := session(corev1alpha1.BackupSessionRunning, "")
	steps := []struct{ old, new *corev1alpha1.BackupSession }{
		{running, session(corev1alpha1.BackupSessionSucceeded, "")},                                                // phase without duration yet: not counted
		{session(corev1alpha1.BackupSessionSucceeded, ""), session(corev1alpha1.BackupSessionSucceeded, "40s")},    // ends: counted
		{session(corev1alpha1.BackupSessionSucceeded, "40s"), session(corev1alpha1.BackupSessionSucceeded, "40s")}, // resync: not again
		{running, session(corev1alpha1.BackupSessionFailed, "2m0s")},
		{session(corev1alpha1.BackupSessionPending, ""), session(corev1alpha1.BackupSessionSkipped, "")},
	}
	for _, s := range steps {
		observeSession(s.old, s.new)
	}
	want := `
# HELP stashplane_backup_sessions_total Backup sessions that ended while this provider ran, by phase: Succeeded, Failed or Skipped.
# TYPE stashplane_backup_sessions_total counter
stashplane_backup_sessions_total{configuration="app",namespace="ns-observe",phase="Failed",session="daily"} 1
stashplane_backup_sessions_total{configuration="app",namespace="ns-observe",phase="Skipped",session="daily"} 1
stashplane_backup_sessions_total{configuration="app",namespace="ns-observe",phase="Succeeded",session="daily"} 1
`
	if err := testutil.CollectAndCompare(backupSessions, strings.NewReader(want)); err != nil {
		t.Errorf("sessions counted: %v", err)
	}
	if got := testutil.CollectAndCount(backupSessionDuration); got != 2 {
		t.Errorf("duration series: want 2 (Succeeded, Failed), got %d", got)
	}
	h := &dtoHistogram{}
	h.read(t, "Succeeded")
	if diff := cmp.Diff(dtoHistogram{count: 1, sum: 40}, *h, cmp.AllowUnexported(dtoHistogram{})); diff != "" {
		t.Errorf("Succeeded duration histogram: -want +got:\n%s", diff)
	}
}

type dtoHistogram struct {
	count uint64
	sum   float64
}

func (h *dtoHistogram) read(t *testing.T, phase string) {
	t.Helper()
	o, err := backupSessionDuration.GetMetricWithLabelValues("ns-observe", "app", "daily", phase)
	if err != nil {
		t.Fatal(err)
	}
	m := &dto.Metric{}
	if err := o.(prometheus.Metric).Write(m); err != nil {
		t.Fatal(err)
	}
	h.count, h.sum = m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// TestNamesAreDocumented holds docs/monitoring/metrics.txt, which the
// monitoring check (hack/monitoring) holds the alerts and the dashboard
// to, and docs/metrics.md to the metrics this package defines.
func TestNamesAreDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/monitoring/metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			listed = append(listed, f[0])
		}
	}
	if diff := cmp.Diff(Names(), listed); diff != "" {
		t.Errorf("docs/monitoring/metrics.txt: -defined +listed:\n%s", diff)
	}
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range Names() {
		if !strings.Contains(string(doc), "`"+n+"`") {
			t.Errorf("docs/metrics.md has no row for %s", n)
		}
	}
}

func pointers[T any](in []T) []*T {
	out := make([]*T, len(in))
	for i := range in {
		out[i] = &in[i]
	}
	return out
}
