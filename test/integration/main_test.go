/*
Copyright 2026 The Stashplane Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/stashplane/stashplane/apis"
)

// testNamespace holds the namespaced objects the tests create.
const testNamespace = "default"

var (
	// kube talks to the test control plane; nil if it did not start.
	kube client.Client

	// restConfig reaches the test control plane, for controllers a test
	// runs against it.
	restConfig *rest.Config

	// startErr says why the test control plane did not start.
	startErr error
)

func TestMain(m *testing.M) {
	env, err := start()
	if err != nil {
		// Every test fails with this error rather than being skipped, so a
		// missing control plane is never mistaken for a passing run.
		startErr = err
	}
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "cannot stop test control plane: %v\n", err)
		}
	}
	os.Exit(code)
}

// assetsDir returns the directory holding kube-apiserver and etcd.
func assetsDir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	return filepath.Abs(filepath.Join("..", "..", "bin"))
}

func start() (*envtest.Environment, error) {
	dir, err := assetsDir()
	if err != nil {
		return nil, fmt.Errorf("cannot resolve control-plane binary directory: %w", err)
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return nil, fmt.Errorf("cannot find %s in %q: run `make tools` to build the control-plane binaries, or point KUBEBUILDER_ASSETS at them: %w", bin, dir, err)
		}
	}

	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("cannot add Kubernetes types to scheme: %w", err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("cannot add CustomResourceDefinition types to scheme: %w", err)
	}
	if err := apis.AddToScheme(s); err != nil {
		return nil, err
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory: dir,
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "package", "crds")},
		ErrorIfCRDPathMissing: true,
		Scheme:                s,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("cannot start test control plane from %q: %w", dir, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return env, fmt.Errorf("cannot create client: %w", err)
	}
	kube, restConfig = c, cfg
	return env, nil
}

// requireControlPlane fails the test if the control plane did not start.
func requireControlPlane(t *testing.T) {
	t.Helper()
	if startErr != nil {
		t.Fatal(startErr)
	}
	if kube == nil {
		t.Fatal(errors.New("test control plane is not running"))
	}
}

// testContext returns a context that ends with the test or after a minute.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var notNameChars = regexp.MustCompile(`[^a-z0-9]+`)

// objectName turns a test case name into a valid, unique object name.
func objectName(caseName string) string {
	n := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(caseName), "-"), "-")
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-")
	}
	return n
}

// clusterScoped lists the kinds that have no namespace.
var clusterScoped = map[string]bool{"Addon": true, "Function": true}

// object parses a manifest and names it after the test case.
func object(t *testing.T, caseName, manifest string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatalf("cannot parse manifest: %v", err)
	}
	u.SetName(objectName(caseName))
	if !clusterScoped[u.GetKind()] {
		u.SetNamespace(testNamespace)
	}
	return u
}
