package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/verify"
	stashpkg "github.com/stashplane/stashplane/package"
)

// The provider, run as its own process with its metrics endpoint served
// over HTTPS to authorized clients (what the package deploys), is scraped
// after a backup and a RestoreOnly verification: an anonymous client gets
// 401, a ServiceAccount not bound to stashplane-metrics-reader 403, and
// one bound to it reads the backup's and verification's values.
func TestMetricsAfterBackup(t *testing.T) {
	t.Parallel()
	kube, c := clusterWithCRDs(t)
	bin, err := devclustertest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	proc, err := c.StartProvider(filepath.Join(bin, "stashplane"), "--poll-interval", "5s", "--metrics-address", addr, "--metrics-secure")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proc.Stop)
	ctx := context.Background()
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupSessionList{})
	defer dumpOnFailure(t, kube, &storagev1alpha1.SnapshotList{})
	defer dumpOnFailure(t, kube, &corev1alpha1.BackupVerificationSessionList{})
	if err := provider.InstallBuiltins(ctx, kube); err != nil {
		t.Fatal(err)
	}
	reader, err := stashpkg.MetricsReaderRules()
	if err != nil {
		t.Fatal(err)
	}
	storageDir, data := storageDir(t), t.TempDir()
	generate(t, data, 80, 17)
	bc := configuration(`{"paths": ["/var/lib/app"]}`)
	bc.Spec.Sessions[0].Repositories[0].BackupVerifier = &storagev1alpha1.ObjectReference{Name: "app-verifier"}
	for _, o := range []client.Object{
		localStorage("shared", "default", storageDir, nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "restic-password", Namespace: "default"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(agentPassword)}},
		appWithHostDir("app", data),
		restoreOnlyVerifier(),
		bc,
		// What docs/metrics.md tells a Prometheus's ServiceAccount to be
		// bound to, as package/rbac/provider.yaml holds it.
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: stashpkg.MetricsReaderClusterRoleName}, Rules: reader},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "prometheus", Namespace: "default"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "stranger", Namespace: "default"}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-stashplane"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: stashpkg.MetricsReaderClusterRoleName},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: "default"}}},
	} {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var session string
	poll(t, 3*time.Minute, "the first backup did not succeed", func(ctx context.Context) (bool, error) {
		list := &corev1alpha1.BackupSessionList{}
		if err := kube.List(ctx, list, client.InNamespace("default")); err != nil || len(list.Items) == 0 {
			return false, nil
		}
		session = list.Items[0].Name
		return list.Items[0].Status.Phase == corev1alpha1.BackupSessionSucceeded, nil
	})
	started, err := verify.Now(ctx, kube, "default", "", "app", time.Now())
	if err != nil || len(started) != 1 {
		t.Fatalf("verify.Now: %d sessions, %v", len(started), err)
	}
	vt := &verificationTest{t: t, kube: kube}
	if s := vt.finished(started[0].Name); s.Status.Phase != corev1alpha1.VerificationSessionSucceeded {
		t.Fatalf("verification %s is %s, want Succeeded", s.Name, s.Status.Phase)
	}
	snap := vt.snapshot("app-" + session)
	taken := float64(snap.Status.SnapshotTime.Unix())

	url := "https://" + addr + "/metrics"
	if code, _ := scrape(t, url, ""); code != http.StatusUnauthorized {
		t.Errorf("an anonymous scrape got %d, want 401", code)
	}
	if code, _ := scrape(t, url, token(t, kube, "stranger")); code != http.StatusForbidden {
		t.Errorf("a scrape by a ServiceAccount without stashplane-metrics-reader got %d, want 403", code)
	}
	scraper := token(t, kube, "prometheus")
	type series struct {
		name   string
		labels map[string]string
	}
	cfg := map[string]string{"namespace": "default", "configuration": "app-backup", "session": "nightly"}
	repo := map[string]string{"namespace": "default", "repository": "app"}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range m {
			out[a] = b
		}
		return out
	}
	exact := []struct {
		s    series
		want float64
	}{
		{series{"stashplane_backup_last_success_timestamp_seconds", cfg}, taken},
		{series{"stashplane_backup_sessions_total", with(cfg, "phase", "Succeeded")}, 1},
		{series{"stashplane_backup_session_duration_seconds", with(cfg, "phase", "Succeeded")}, 1}, // one observation
		{series{"stashplane_snapshots", with(repo, "phase", "Succeeded")}, 1},
		{series{"stashplane_snapshots", with(repo, "phase", "Failed")}, 0},
		{series{"stashplane_backup_last_files", repo}, 80},
		{series{"stashplane_snapshot_newest_verified_timestamp_seconds", repo}, taken},
		{series{"stashplane_verification_verdicts_total", with(repo, "result", "Verified")}, 1},
	}
	positive := []series{
		{"stashplane_backup_last_bytes_processed", repo},
		{"stashplane_backup_last_bytes_added", repo},
		{"stashplane_repository_size_bytes", repo},
	}
	var families map[string]*dto.MetricFamily
	// The Repository's size is recorded by its next observation.
	poll(t, time.Minute, "the metrics did not show the backup", func(ctx context.Context) (bool, error) {
		code, f := scrape(t, url, scraper)
		if code != http.StatusOK {
			return false, nil
		}
		families = f
		for _, s := range positive {
			if v, ok := value(families, s.name, s.labels); !ok || v <= 0 {
				return false, nil
			}
		}
		return true, nil
	})
	var got, want []string
	for _, e := range exact {
		v, ok := value(families, e.s.name, e.s.labels)
		got = append(got, fmt.Sprintf("%s%v = %v (%v)", e.s.name, e.s.labels, v, ok))
		want = append(want, fmt.Sprintf("%s%v = %v (%v)", e.s.name, e.s.labels, e.want, true))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics after one backup and one verification: -want +got:\n%s", diff)
	}
	for _, s := range positive {
		v, _ := value(families, s.name, s.labels)
		t.Logf("%s%v = %v", s.name, s.labels, v)
	}
	// The provider's own requests held by its client-side rate limit:
	// every request passes the limiter, so a provider that has worked
	// has observations.
	held := uint64(0)
	if f := families["rest_client_rate_limiter_duration_seconds"]; f != nil {
		for _, m := range f.Metric {
			held += m.GetHistogram().GetSampleCount()
		}
	}
	if held == 0 {
		t.Errorf("the provider serves no observation of rest_client_rate_limiter_duration_seconds")
	}
}

// token is a token of the ServiceAccount sa of the default namespace.
func token(t *testing.T, kube client.Client, sa string) string {
	t.Helper()
	tr := &authenticationv1.TokenRequest{}
	acct := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: "default"}}
	if err := kube.SubResource("token").Create(context.Background(), acct, tr); err != nil {
		t.Fatalf("cannot request a token of %s: %v", sa, err)
	}
	return tr.Status.Token
}

// scrape gets the metrics endpoint with the bearer token, if any, and
// parses a 200's body.
func scrape(t *testing.T, url, bearer string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// The provider serves a self-signed certificate.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a test of the provider's own endpoint
	}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	var resp *http.Response
	poll(t, time.Minute, "the metrics endpoint did not answer", func(context.Context) (bool, error) {
		resp, err = hc.Do(req)
		return err == nil, nil
	})
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	f, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("cannot parse the metrics: %v", err)
	}
	return resp.StatusCode, f
}

// value is the value of the series of name with exactly labels: a gauge's
// or counter's value, a histogram's count.
func value(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := families[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if !cmp.Equal(got, labels) {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}
