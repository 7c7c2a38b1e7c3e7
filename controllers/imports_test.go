package controllers

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// module is the import path of the repository's root.
const module = "github.com/stashplane/stashplane"

// importRule says why a file may not import a package, or "" when it may.
// file is the file's path from the repository's root, with slashes.
type importRule func(file, imported string) string

// importRules keep the controllers apart and the layers in one direction:
// a controller shares names with another only through leaf packages (the
// API, apis/naming, internal/agentapi, render, plan), never by importing
// it, and reaches the agent only through its contract; internal/ serves
// functions/, never the other way round. register.go, which sets every
// controller up, and tests are exempt from the first two.
var importRules = []importRule{
	func(file, imported string) string {
		kind, ok := controllerKind(file)
		if !ok || strings.HasSuffix(file, "_test.go") {
			return ""
		}
		if other, ok := strings.CutPrefix(imported, module+"/controllers/"); ok && strings.Split(other, "/")[0] != kind {
			return "a controller imports another controller"
		}
		if imported == module+"/controllers" {
			return "a controller imports the controllers' list"
		}
		return ""
	},
	func(file, imported string) string {
		if _, ok := controllerKind(file); !ok || strings.HasSuffix(file, "_test.go") {
			return ""
		}
		if imported == module+"/internal/agent" || strings.HasPrefix(imported, module+"/internal/agent/") {
			return "a controller imports the agent; use internal/agentapi"
		}
		return ""
	},
	func(file, imported string) string {
		if strings.HasPrefix(file, "internal/") && strings.HasPrefix(imported, module+"/functions/") {
			return "internal/ imports functions/"
		}
		return ""
	},
}

// controllerKind is the kind whose controller package holds file, if any.
func controllerKind(file string) (string, bool) {
	rest, ok := strings.CutPrefix(file, "controllers/")
	if !ok {
		return "", false
	}
	kind, _, inKind := strings.Cut(rest, "/")
	return kind, inKind
}

// violations lists the imports of files (path to import paths) that break
// a rule, as "file: import: why".
func violations(files map[string][]string) []string {
	var out []string
	for file, imports := range files {
		for _, imp := range imports {
			for _, rule := range importRules {
				if why := rule(file, imp); why != "" {
					out = append(out, file+": "+imp+": "+why)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func TestImportRules(t *testing.T) {
	cases := map[string]struct {
		reason string
		files  map[string][]string
		want   []string
	}{
		"LeafPackages": {
			reason: "Controllers may import the API, the leaf packages, the renderer and the planner.",
			files: map[string][]string{"controllers/backupsession/compose.go": {
				module + "/apis/naming", module + "/apis/core/v1alpha1", module + "/internal/agentapi",
				module + "/functions/render", module + "/functions/plan", module + "/controllers/backupsession/inner",
			}},
		},
		"OtherController": {
			reason: "A controller that imports another breaks the rule.",
			files:  map[string][]string{"controllers/restoresession/compose.go": {module + "/controllers/backupsession"}},
			want:   []string{"controllers/restoresession/compose.go: " + module + "/controllers/backupsession: a controller imports another controller"},
		},
		"Agent": {
			reason: "A controller that imports the agent breaks the rule.",
			files:  map[string][]string{"controllers/backupconfiguration/compose.go": {module + "/internal/agent"}},
			want:   []string{"controllers/backupconfiguration/compose.go: " + module + "/internal/agent: a controller imports the agent; use internal/agentapi"},
		},
		"RegisterAndTests": {
			reason: "register.go and tests may import every controller and the agent.",
			files: map[string][]string{
				"controllers/register.go":                    {module + "/controllers/backupsession"},
				"controllers/restoresession/plan_test.go":    {module + "/controllers/backupsession", module + "/internal/agent"},
				"controllers/restoresession/restore_test.go": {module + "/internal/agent"},
			},
		},
		"InternalImportsFunctions": {
			reason: "internal/ never imports functions/, in tests neither.",
			files:  map[string][]string{"internal/trigger/trigger_test.go": {module + "/functions/plan"}},
			want:   []string{"internal/trigger/trigger_test.go: " + module + "/functions/plan: internal/ imports functions/"},
		},
		"FunctionsImportInternal": {
			reason: "functions/ may import internal/.",
			files:  map[string][]string{"functions/plan/plan.go": {module + "/internal/usage"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, violations(tc.files)); diff != "" {
				t.Errorf("\n%s\nviolations(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestImports holds the repository's own files to the import rules.
func TestImports(t *testing.T) {
	files := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, ".."+string(filepath.Separator)))
		if d.IsDir() {
			if name := d.Name(); rel != ".." && (strings.HasPrefix(name, ".") || name == "bin" || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			files[rel] = append(files[rel], p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("cannot read the repository's imports: %v", err)
	}
	if len(files) == 0 || len(files["controllers/register.go"]) == 0 {
		t.Fatalf("found no imports: the walk missed the repository")
	}
	for _, v := range violations(files) {
		t.Error(v)
	}
}
