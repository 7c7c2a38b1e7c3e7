package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
	"github.com/stashplane/stashplane/internal/trigger"
)

// verificationTest gathers what the verification tests look at in the
// "default" namespace.
type verificationTest struct {
	t    *testing.T
	kube client.Client
	// wait bounds how long finished waits for a session; 3 minutes when
	// zero.
	wait time.Duration
}

// finished waits for a session's outcome.
func (v *verificationTest) finished(name string) *corev1alpha1.BackupVerificationSession {
	v.t.Helper()
	s := &corev1alpha1.BackupVerificationSession{}
	wait := v.wait
	if wait == 0 {
		wait = 3 * time.Minute
	}
	poll(v.t, wait, "backupverificationsession "+name+" did not finish", func(ctx context.Context) (bool, error) {
		if err := v.kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, s); err != nil {
			return false, nil
		}
		p := s.Status.Phase
		return p == corev1alpha1.VerificationSessionSucceeded || p == corev1alpha1.VerificationSessionFailed || p == corev1alpha1.VerificationSessionSkipped, nil
	})
	return s
}

func (v *verificationTest) snapshot(name string) *storagev1alpha1.Snapshot {
	v.t.Helper()
	s := &storagev1alpha1.Snapshot{}
	if err := v.kube.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: name}, s); err != nil {
		v.t.Fatal(err)
	}
	return s
}

// scratchGone waits for a session's scratch claim to be removed.
func (v *verificationTest) scratchGone(session string) {
	v.t.Helper()
	v.gone(naming.ScratchClaim("scratch", session), &corev1.PersistentVolumeClaim{})
}

// gone waits until no object of the given kinds is named name.
func (v *verificationTest) gone(name string, objs ...client.Object) {
	v.t.Helper()
	for _, o := range objs {
		poll(v.t, 2*time.Minute, name+" was not removed", func(ctx context.Context) (bool, error) {
			err := v.kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, o)
			return err != nil && client.IgnoreNotFound(err) == nil, nil
		})
	}
}

// backup triggers a run of the configuration's "nightly" session.
func (v *verificationTest) backup(bc *corev1alpha1.BackupConfiguration) *corev1alpha1.BackupSession {
	v.t.Helper()
	live := &corev1alpha1.BackupConfiguration{}
	if err := v.kube.Get(context.Background(), client.ObjectKeyFromObject(bc), live); err != nil {
		v.t.Fatal(err)
	}
	s, err := trigger.Create(context.Background(), v.kube, live, "nightly", time.Now().Add(time.Second))
	if err != nil {
		v.t.Fatal(err)
	}
	return s
}

// metrics scrapes controller-runtime's registry, which the provider in
// this process serves on its metrics endpoint, over HTTP in Prometheus'
// text format, and checks the verification metrics of a repository.
func (v *verificationTest) metrics(namespace, repository string) {
	v.t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	labels := `namespace="` + namespace + `",repository="` + repository + `"`
	got := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(name, "stashplane_verification_") || !strings.Contains(name, labels) {
			continue
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			v.t.Fatalf("metric %s: %v", name, err)
		}
		got[name] = f
	}
	v.t.Logf("verification metrics of %s/%s: %v", namespace, repository, got)
	for name, min := range map[string]float64{
		"stashplane_verification_restored_bytes{" + labels + "}":                             1,
		"stashplane_verification_restore_duration_seconds{" + labels + "}":                   0.001,
		"stashplane_verification_verdicts_total{" + labels + `,result="Verified"}`:           2,
		"stashplane_verification_verdicts_total{" + labels + `,result="VerificationFailed"}`: 2,
	} {
		if got[name] < min {
			v.t.Errorf("metric %s = %v, want at least %v", name, got[name], min)
		}
	}
}

// snapshotsTable runs `stashplane snapshots app` against the cluster and
// checks each named Snapshot's row shows its verdict.
func (v *verificationTest) snapshotsTable(kubeconfig string, want map[string]string) {
	v.t.Helper()
	bin, err := devclustertest.BinDir()
	if err != nil {
		v.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "stashplane"), "snapshots", "app", "-n", "default")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		v.t.Fatalf("stashplane snapshots: %v\n%s", err, out)
	}
	v.t.Logf("stashplane snapshots app:\n%s", out)
	rows := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	if h := rows["NAME"]; len(h) != 7 || h[2] != "VERIFICATION" || h[4] != "RESTORE-TIME" {
		v.t.Errorf("header %q", h)
	}
	for name, verdict := range want {
		if r := rows[name]; len(r) < 3 || r[1] != "Succeeded" || r[2] != verdict {
			v.t.Errorf("row of %s: %q, want Succeeded %s", name, r, verdict)
		}
	}
}

// verificationStory is what a failed verification test prints: every
// condition of the session and the components of its RestoreSession, so a
// failure seen once in CI says where it came from.
func verificationStory(kube client.Client, vs *corev1alpha1.BackupVerificationSession) string {
	var b strings.Builder
	for _, c := range vs.Status.Conditions {
		fmt.Fprintf(&b, "  %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	if vs.Status.RestoreSession == "" {
		return b.String()
	}
	rs := &corev1alpha1.RestoreSession{}
	if err := kube.Get(context.Background(), client.ObjectKey{Namespace: vs.Status.RestoreSessionNamespace, Name: vs.Status.RestoreSession}, rs); err != nil {
		fmt.Fprintf(&b, "  restoresession %s: %v\n", vs.Status.RestoreSession, err)
		return b.String()
	}
	fmt.Fprintf(&b, "  restoresession %s: %s\n", rs.Name, rs.Status.Phase)
	for _, c := range rs.Status.Conditions {
		fmt.Fprintf(&b, "    %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	for name, c := range rs.Status.Components {
		fmt.Fprintf(&b, "    component %s: %s %s\n", name, c.Phase, c.Error)
	}
	return b.String()
}
