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

package crossplane

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/stashplane/stashplane/internal/image"
)

// functionRefs lists the functionRef names of the Compositions in the YAML
// files matched by glob.
func functionRefs(t *testing.T, glob string) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("cannot find %s: %v", glob, err)
	}
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range decodeAll(t, string(b)) {
			if u.GetKind() != "Composition" {
				continue
			}
			steps, _, _ := unstructured.NestedSlice(u.Object, "spec", "pipeline")
			for i, s := range steps {
				name, _, _ := unstructured.NestedString(s.(map[string]any), "functionRef", "name")
				out[filepath.Base(f)] = append(out[filepath.Base(f)], name)
				if name == "" {
					t.Errorf("%s: pipeline step %d names no function", f, i)
				}
			}
		}
	}
	return out
}

// TestCompositionsNameDependencies checks every Composition the
// Configuration ships references its Functions by the name Crossplane
// installs a dependency under (ghcr.io/stashplane/function-stashplane
// becomes stashplane-function-stashplane), and that the render example's
// Function object carries that name too, so what `crossplane render`
// shows is what an installed Configuration runs.
func TestCompositionsNameDependencies(t *testing.T) {
	meta, err := os.ReadFile(filepath.Join(root, "crossplane.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	deps, err := image.Dependencies(meta)
	if err != nil {
		t.Fatal(err)
	}
	installed := map[string]bool{}
	for _, d := range deps {
		if d.Kind != "Function" {
			continue
		}
		n, err := image.DependencyName(d.Package)
		if err != nil {
			t.Fatal(err)
		}
		installed[n] = true
	}
	if len(installed) == 0 {
		t.Fatal("the Configuration depends on no Function")
	}
	for file, refs := range functionRefs(t, filepath.Join(root, "compositions", "*.yaml")) {
		for _, r := range refs {
			if !installed[r] {
				t.Errorf("compositions/%s: functionRef %q is no Function the Configuration's dependencies install (installed as: %s)", file, r, strings.Join(keys(installed), ", "))
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", "crossplane", "functions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range decodeAll(t, string(b)) {
		if u.GetKind() == "Function" {
			got = append(got, u.GetName())
		}
	}
	if diff := cmp.Diff(keys(installed), got); diff != "" {
		t.Errorf("examples/crossplane/functions.yaml: Function names -want +got:\n%s", diff)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// decodeAll splits a YAML stream into its objects, in order.
func decodeAll(t *testing.T, s string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	d := k8syaml.NewYAMLOrJSONDecoder(strings.NewReader(s), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := d.Decode(&u.Object); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("cannot decode YAML: %v", err)
			}
			return out
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}
