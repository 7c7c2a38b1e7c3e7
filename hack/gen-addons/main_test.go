package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"cuelang.org/go/cue/format"
	"github.com/google/go-cmp/cmp"
)

// TestTemplatesFormatted: every Function template, and the package the
// renderer provides them, is formatted as cue fmt formats it.
func TestTemplatesFormatted(t *testing.T) {
	files, err := filepath.Glob("../../functions/templates/*.cue")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../functions/render/cue/agent/agent.cue")
	if len(files) < 2 {
		t.Fatalf("no templates found: %v", files)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := format.Source(src, format.Simplify())
		if err != nil {
			t.Errorf("%s: cannot format: %v", f, err)
			continue
		}
		if diff := cmp.Diff(string(src), string(got)); diff != "" {
			t.Errorf("%s is not formatted as cue fmt would: -file +formatted:\n%s", f, diff)
		}
	}
}

// TestGenerated: the built-in addons in package/addons are what the
// sources give, and a template no source names is an error.
func TestGenerated(t *testing.T) {
	out := t.TempDir()
	if err := generate("../../functions/templates", out); err != nil {
		t.Fatal(err)
	}
	got, _ := filepath.Glob(filepath.Join(out, "*.yaml"))
	want, _ := filepath.Glob("../../package/addons/*.yaml")
	if diff := cmp.Diff(len(want), len(got)); diff != "" {
		t.Errorf("generated files: -package/addons +generated:\n%s", diff)
	}
	for _, g := range got {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.ReadFile(filepath.Join("../../package/addons", filepath.Base(g)))
		if err != nil {
			t.Errorf("%s is generated but not in package/addons: run make generate", filepath.Base(g))
			continue
		}
		if !bytes.Equal(b, w) {
			t.Errorf("package/addons/%s is not what its sources give: run make generate", filepath.Base(g))
		}
	}

	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a.yaml"), []byte("kind: Function\nspec:\n  templateFile: used.cue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"used.cue", "orphan.cue"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte("objects: []\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := generate(src, t.TempDir()); err == nil {
		t.Error("a template no source names was not refused")
	}
}
