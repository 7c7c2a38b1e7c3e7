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

// Command crossplane-chart renders Crossplane core's Helm chart, from the
// Crossplane module hack/tools/crossplane pins, with the dev cluster's
// values into the manifest `stashplane dev up --crossplane` applies
// (internal/devcluster/crossplane/core.yaml). It runs only when the pin or
// the values change (`make crossplane-manifest`); the manifest is checked
// in, and a test holds its header to the pin and the values.
//
//	go run . -chart DIR -version v2.2.1 -values values.yaml -out FILE
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"sigs.k8s.io/yaml"
)

func main() {
	var chartDir, version, valuesFile, out string
	flag.StringVar(&chartDir, "chart", "", "the chart's directory (cluster/charts/crossplane in the Crossplane module)")
	flag.StringVar(&version, "version", "", "the pinned Crossplane version, the image tag")
	flag.StringVar(&valuesFile, "values", "values.yaml", "the dev cluster's values")
	flag.StringVar(&out, "out", "", "the manifest to write")
	flag.Parse()
	if err := render(chartDir, version, valuesFile, out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func render(chartDir, version, valuesFile, out string) error {
	raw, err := os.ReadFile(valuesFile)
	if err != nil {
		return fmt.Errorf("cannot read values: %w", err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal(raw, &vals); err != nil {
		return fmt.Errorf("cannot parse values: %w", err)
	}
	img, _ := vals["image"].(map[string]any)
	if img == nil {
		img = map[string]any{}
	}
	img["tag"] = version
	vals["image"] = img

	chrt, err := loader.Load(chartDir)
	if err != nil {
		return fmt.Errorf("cannot load chart: %w", err)
	}
	rv, err := util.ToRenderValues(chrt, vals, common.ReleaseOptions{Name: "crossplane", Namespace: Namespace, IsInstall: true, Revision: 1}, nil)
	if err != nil {
		return fmt.Errorf("cannot compose values: %w", err)
	}
	files, err := engine.Render(chrt, rv)
	if err != nil {
		return fmt.Errorf("cannot render chart: %w", err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		if path.Ext(n) == ".yaml" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "# Crossplane core's chart at %s, rendered by hack/crossplane-chart with its\n", version)
	fmt.Fprintf(&b, "# values.yaml (sha256 %x). Do not edit: run `make crossplane-manifest`.\n", sha256.Sum256(raw))
	for _, n := range names {
		doc := strings.TrimSpace(files[n])
		if doc == "" {
			continue
		}
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", n, doc)
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

// Namespace is where the dev cluster installs core, as the chart's
// documentation does.
const Namespace = "crossplane-system"
