package bench

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// A queue's wait counts every priority's series, between two scrapes.
func TestHistogramsByQueue(t *testing.T) {
	series := func(name, priority string, le1, le10, total uint64) *dto.Metric {
		return &dto.Metric{
			Label: []*dto.LabelPair{{Name: proto.String("name"), Value: proto.String(name)}, {Name: proto.String("priority"), Value: proto.String(priority)}},
			Histogram: &dto.Histogram{SampleCount: proto.Uint64(total), Bucket: []*dto.Bucket{
				{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(le1)},
				{UpperBound: proto.Float64(10), CumulativeCount: proto.Uint64(le10)},
				// As the text format gives it.
				{UpperBound: proto.Float64(math.Inf(1)), CumulativeCount: proto.Uint64(total)},
			}},
		}
	}
	fam := func(ms ...*dto.Metric) map[string]*dto.MetricFamily {
		return map[string]*dto.MetricFamily{"workqueue_queue_duration_seconds": {Metric: ms}}
	}
	before := fam(series("repository", "0", 10, 10, 10), series("repository", "-100", 5, 5, 5))
	after := fam(series("repository", "0", 110, 110, 110), series("repository", "-100", 5, 15, 15))

	got := histograms(before, after, "workqueue_queue_duration_seconds", "name")
	want := map[string]map[float64]uint64{"repository": {1: 100, 10: 110, math.Inf(1): 110}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("by queue: -want +got:\n%s", diff)
	}
	if p, n := quantile(got["repository"], 0.99); p != 10 || n != 110 {
		t.Errorf("p99 %v of %d, want the 10 s bucket of 110: the low-priority waits count", p, n)
	}
	byPriority := histograms(before, after, "workqueue_queue_duration_seconds", "name", "priority")
	if p, _ := quantile(byPriority["repository/0"], 0.99); p != 1 {
		t.Errorf("priority 0 p99 %v, want 1", p)
	}
}
