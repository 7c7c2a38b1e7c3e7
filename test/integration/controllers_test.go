package integration

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/stashplane/stashplane/apis"
)

// runController runs the controllers setup adds in a manager against the
// test control plane until the test ends.
func runController(t *testing.T, setup func(ctrl.Manager) error) ctrl.Manager {
	t.Helper()
	requireControlPlane(t)
	return runControllerOn(t, restConfig, setup)
}

// runControllerOn is runController with the manager's own REST config.
func runControllerOn(t *testing.T, cfg *rest.Config, setup func(ctrl.Manager) error) ctrl.Manager {
	t.Helper()
	requireControlPlane(t)
	s, err := apis.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: s, Logger: logr.Discard(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the manager stopped with an error: %v", err)
		}
	})
	return mgr
}

// eventually polls cond every 200 ms until it holds, failing the test with
// msg and cond's last note after timeout.
func eventually(t *testing.T, timeout time.Duration, msg string, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, note := cond(ctx)
		last = note
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: %s", msg, last)
	}
}
