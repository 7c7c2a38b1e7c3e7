package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/stashplane/stashplane/apis"
)

// The commands' cluster side runs against a real kube-apiserver and etcd
// (KUBEBUILDER_ASSETS, else bin/), started once for the tests that ask,
// with the package's CRDs. Missing binaries fail those tests.
var (
	apiOnce sync.Once
	apiKube client.Client
	apiErr  error
)

func apiServer(t *testing.T) client.Client {
	t.Helper()
	apiOnce.Do(func() {
		assets := os.Getenv("KUBEBUILDER_ASSETS")
		if assets == "" {
			assets, _ = filepath.Abs(filepath.Join("..", "..", "bin"))
		}
		if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
			apiErr = fmt.Errorf("cannot find kube-apiserver in %q: run `make tools`: %w", assets, err)
			return
		}
		s, err := apis.Scheme()
		if err != nil {
			apiErr = err
			return
		}
		env := &envtest.Environment{
			BinaryAssetsDirectory: assets,
			CRDDirectoryPaths:     []string{filepath.Join("..", "..", "package", "crds")},
			ErrorIfCRDPathMissing: true,
			Scheme:                s,
		}
		cfg, err := env.Start()
		if err != nil {
			apiErr = fmt.Errorf("cannot start test control plane: %w", err)
			return
		}
		apiStop = func() { _ = env.Stop() }
		apiKube, apiErr = client.New(cfg, client.Options{Scheme: s})
	})
	if apiErr != nil {
		t.Fatal(apiErr)
	}
	return apiKube
}

var apiStop = func() {}

func TestMain(m *testing.M) {
	code := m.Run()
	apiStop()
	os.Exit(code)
}
