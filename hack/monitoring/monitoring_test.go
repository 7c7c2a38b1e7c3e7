// Package monitoring checks docs/monitoring with Prometheus' own parsers:
// the alerts parse as a rule file, every query of the alerts and the
// dashboard parses as PromQL, and every metric they read is one that
// Stashplane serves (docs/monitoring/metrics.txt, which
// internal/metrics holds to the code). It is a module of its own so that
// Prometheus' dependencies stay out of Stashplane's.
package monitoring

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

const dir = "../../docs/monitoring"

// served reads metrics.txt: each metric's name and type.
func served(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			out[f[0]] = f[1]
		}
	}
	if len(out) == 0 {
		t.Fatal("metrics.txt lists no metric")
	}
	return out
}

// known says whether a series name is one a served metric exposes: the
// metric itself, or a histogram's _bucket, _sum and _count.
func known(metrics map[string]string, name string) bool {
	if _, ok := metrics[name]; ok {
		return true
	}
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, s); ok && metrics[base] == "histogram" {
			return true
		}
	}
	return false
}

// selected lists the metric names an expression's selectors read.
func selected(t *testing.T, p parser.Parser, expr string) []string {
	t.Helper()
	e, err := p.ParseExpr(expr)
	if err != nil {
		t.Fatalf("cannot parse %q: %v", expr, err)
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out
}

// dashboardVars stands Grafana's variables in for PromQL the parser reads.
var dashboardVars = strings.NewReplacer("$namespace", ".*", "$__rate_interval", "5m", "$__interval", "1m")

func TestAlerts(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(dir, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Spec       json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &rule); err != nil {
		t.Fatal(err)
	}
	if rule.Kind != "PrometheusRule" || rule.APIVersion != "monitoring.coreos.com/v1" {
		t.Fatalf("alerts.yaml is a %s %s, want a monitoring.coreos.com/v1 PrometheusRule", rule.APIVersion, rule.Kind)
	}
	spec, err := yaml.JSONToYAML(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, p, slog.Default())
	if len(errs) > 0 {
		t.Fatalf("alerts.yaml's spec is not a valid rule file: %v", errs)
	}
	metrics := served(t)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			for _, name := range selected(t, p, r.Expr) {
				if !known(metrics, name) {
					t.Errorf("alert %s reads %q, which Stashplane does not serve", r.Alert, name)
				}
			}
		}
	}
	slices.Sort(alerts)
	want := []string{
		"StashplaneBackupFailing", "StashplaneNoRecentBackup", "StashplaneRepositoryGrowingFast",
		"StashplaneRepositoryNeverBackedUp", "StashplaneRepositoryTooLarge",
		"StashplaneVerificationFailing", "StashplaneVerifiedSnapshotTooOld",
	}
	if diff := cmp.Diff(want, alerts); diff != "" {
		t.Errorf("alerts: -want +got:\n%s", diff)
	}
}

func TestDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(dir, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	p := parser.NewParser(parser.Options{})
	metrics := served(t)
	used := map[string]bool{}
	for _, panel := range d.Panels {
		if len(panel.Targets) == 0 {
			t.Errorf("panel %q has no query", panel.Title)
		}
		for _, target := range panel.Targets {
			for _, name := range selected(t, p, dashboardVars.Replace(target.Expr)) {
				if !known(metrics, name) {
					t.Errorf("panel %q reads %q, which Stashplane does not serve", panel.Title, name)
				}
				used[strings.TrimSuffix(name, "_bucket")] = true
			}
		}
	}
	for m := range metrics {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}
