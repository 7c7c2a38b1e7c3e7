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

package image

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPinsMatchTools checks the images carry the PostgreSQL the dev
// cluster runs: every package hack/tools/postgres/packages pins is pinned
// at the same version in hack/images/postgres.pins, and every pin file
// parses.
func TestPinsMatchTools(t *testing.T) {
	hack := filepath.Join("..", "..", "hack")
	f, err := os.Open(filepath.Join(hack, "tools", "postgres", "packages"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	want := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, version, _ := strings.Cut(line, "=")
		want[name] = version
	}
	got := map[string]string{}
	for _, file := range []string{"base.pins", "postgres.pins"} {
		pf, err := os.Open(filepath.Join(hack, "images", file))
		if err != nil {
			t.Fatal(err)
		}
		pins, err := ParsePins(pf)
		_ = pf.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, p := range pins {
			if _, ok := want[p.Package]; ok {
				got[p.Package] = p.Version
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PostgreSQL pinned for the images vs for the dev cluster: -tools +images:\n%s", diff)
	}
}
