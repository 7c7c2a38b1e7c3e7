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
	"bytes"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the repository's root, seen from this package's directory.
const repoRoot = "../.."

// architectureDoc is the page whose package map TestArchitecture holds to
// the tree, from the repository's root.
const architectureDoc = "docs/architecture.md"

// packageMapHeading opens the package map; the next "## " heading ends it.
const packageMapHeading = "## Package map"

// goPackage is one Go package of the tree. Import lists hold only the
// tree's own packages, as paths from the repository's root, never the
// package itself.
type goPackage struct {
	name        string   // the package clause: main for a command
	imports     []string // what its non-test files import
	testImports []string // what its test files import
}

// listPackages lists the packages of every module in the tree (the root
// module and the modules nested in it, such as hack/monitoring), keyed by
// their path from the repository's root.
func listPackages(root string) (map[string]goPackage, error) {
	var modules []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
			name == "testdata" || name == "bin" || name == "node_modules") {
			// The directories `go list ./...` skips, and the build outputs.
			return filepath.SkipDir
		}
		if !d.IsDir() && name == "go.mod" {
			modules = append(modules, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot find the tree's modules: %w", err)
	}

	type listed struct {
		name                 string
		imports, testImports []string
	}
	byImportPath := map[string]string{} // import path to path from the root
	raw := map[string]listed{}          // path from the root to what go list says
	const format = `{{.ImportPath}}	{{with .Module}}{{.Path}}{{end}}	{{.Name}}	{{join .Imports " "}}	{{join .TestImports " "}} {{join .XTestImports " "}}`
	for _, dir := range modules {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			return nil, fmt.Errorf("cannot place module %s: %w", dir, err)
		}
		cmd := exec.Command("go", "list", "-e", "-f", format, "./...")
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("cannot list the packages of module %s: %w: %s", filepath.ToSlash(rel), err, stderr.String())
		}
		for line := range strings.Lines(string(out)) {
			f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
			if len(f) != 5 {
				return nil, fmt.Errorf("cannot parse go list's line %q", line)
			}
			importPath, module := f[0], f[1]
			sub, ok := strings.CutPrefix(importPath, module)
			if module == "" || !ok {
				return nil, fmt.Errorf("cannot place package %s in module %q", importPath, module)
			}
			p := path.Join(filepath.ToSlash(rel), strings.TrimPrefix(sub, "/"))
			byImportPath[importPath] = p
			raw[p] = listed{name: f[2], imports: strings.Fields(f[3]), testImports: strings.Fields(f[4])}
		}
	}

	// own keeps the tree's packages among imports, once each.
	own := func(self string, imports []string) []string {
		var out []string
		for _, imp := range imports {
			if p, ok := byImportPath[imp]; ok && p != self && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		slices.Sort(out)
		return out
	}
	pkgs := map[string]goPackage{}
	for p, l := range raw {
		pkgs[p] = goPackage{name: l.name, imports: own(p, l.imports), testImports: own(p, l.testImports)}
	}
	return pkgs, nil
}

// mapRow is one row of the package map.
type mapRow struct {
	line  int      // in the page, from 1
	cells []string // trimmed, the package's backticks kept
}

// readPackageMap returns the text of the package map section and its
// table's rows: the lines that start with "| `".
func readPackageMap(root string) (string, []mapRow, error) {
	b, err := os.ReadFile(filepath.Join(root, architectureDoc))
	if err != nil {
		return "", nil, fmt.Errorf("cannot read %s: %w", architectureDoc, err)
	}
	var (
		section strings.Builder
		rows    []mapRow
		in      bool
		found   bool
	)
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case line == packageMapHeading:
			in, found = true, true
			continue
		case in && strings.HasPrefix(line, "## "):
			in = false
		}
		if !in {
			continue
		}
		section.WriteString(line + "\n")
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, mapRow{line: i + 1, cells: cells})
	}
	if !found {
		return "", nil, fmt.Errorf("cannot find %q in %s", packageMapHeading, architectureDoc)
	}
	if len(rows) == 0 {
		return "", nil, fmt.Errorf("cannot find a row in the package map of %s", architectureDoc)
	}
	return section.String(), rows, nil
}

// pkgUnder says whether a package is prefix or lies below it.
func pkgUnder(prefix string) func(string) bool {
	return func(p string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }
}

// pkgAnyOf says whether a package satisfies one of the predicates.
func pkgAnyOf(preds ...func(string) bool) func(string) bool {
	return func(p string) bool {
		for _, pred := range preds {
			if pred(p) {
				return true
			}
		}
		return false
	}
}

// pkgIs says whether a package is one of names.
func pkgIs(names ...string) func(string) bool {
	return func(p string) bool { return slices.Contains(names, p) }
}

// kindOf is the controller kind a package under controllers/ belongs to,
// "" for the list itself.
func kindOf(p string) string {
	rest, _ := strings.CutPrefix(p, "controllers/")
	if rest == p {
		return ""
	}
	return strings.Split(rest, "/")[0]
}

var (
	isAgent       = pkgUnder("internal/agent")
	isManager     = pkgUnder("internal/provider")
	isDevCluster  = pkgUnder("internal/devcluster")
	isTestHelpers = pkgAnyOf(pkgUnder("internal/storage/storagetest"), pkgUnder("internal/devcluster/devclustertest"))
	isPackage     = pkgUnder("package")
	// notLeaf is what the map's "internal leaves" leave out, and package.
	notLeaf = pkgAnyOf(isAgent, isManager, isDevCluster, isTestHelpers, isPackage)
)

// importRule is one of the package map's import rules: a package from
// binds may import only what may allows.
type importRule struct {
	binds func(pkg string) bool
	may   func(pkg, imported string) bool
	tests bool // whether test files are bound too
}

// importRules are the package map's rules on direct imports, by the name
// the page gives them in bold.
var importRules = map[string]importRule{
	"apis import only apis": {
		binds: pkgUnder("apis"),
		may:   func(_, imp string) bool { return pkgUnder("apis")(imp) },
		tests: true,
	},
	"No controller imports another": {
		binds: func(p string) bool { return kindOf(p) != "" },
		may: func(p, imp string) bool {
			return !pkgUnder("controllers")(imp) || (kindOf(imp) != "" && kindOf(imp) == kindOf(p))
		},
		tests: true,
	},
	"Controllers import only leaves": {
		binds: pkgUnder("controllers"),
		may:   func(_, imp string) bool { return !notLeaf(imp) },
	},
	"Only the manager imports controllers": {
		binds: func(p string) bool { return !pkgUnder("controllers")(p) },
		may: func(p, imp string) bool {
			return !pkgUnder("controllers")(imp) || (isManager(p) && imp == "controllers")
		},
	},
	"functions import no controller": {
		binds: pkgUnder("functions"),
		may:   func(_, imp string) bool { return !pkgUnder("controllers")(imp) && !notLeaf(imp) },
	},
	"internal imports no functions": {
		binds: pkgUnder("internal"),
		may:   func(_, imp string) bool { return !pkgUnder("functions")(imp) },
		tests: true,
	},
	"internal imports no controller, except the manager": {
		binds: func(p string) bool { return pkgUnder("internal")(p) && !isManager(p) },
		may:   func(_, imp string) bool { return !pkgUnder("controllers")(imp) && !isPackage(imp) },
		tests: true,
	},
	"Only the CLI imports the agent": {
		binds: func(p string) bool { return p != "cmd/stashplane" && !isAgent(p) },
		may:   func(_, imp string) bool { return !isAgent(imp) },
	},
	"package imports only apis and the version": {
		binds: isPackage,
		may:   func(_, imp string) bool { return pkgUnder("apis")(imp) || imp == "internal/version" },
	},
	"Only the CLI and the manager import package": {
		binds: func(p string) bool { return !isPackage(p) && !pkgIs("cmd/stashplane", "internal/provider")(p) },
		may:   func(_, imp string) bool { return !isPackage(imp) },
	},
	"Nothing imports cmd, hack or test": {
		binds: func(string) bool { return true },
		may:   func(_, imp string) bool { return !pkgAnyOf(pkgUnder("cmd"), pkgUnder("hack"), pkgUnder("test"))(imp) },
		tests: true,
	},
	"Binaries reach controllers only through the manager": {
		binds: pkgUnder("cmd"),
		may:   func(_, imp string) bool { return !pkgUnder("controllers")(imp) },
		tests: true,
	},
}

// linkRule is one of the package map's rules on what a command links: the
// tree's packages it reaches through its non-test imports.
type linkRule struct {
	binds   func(pkg string) bool // among the main packages
	mayLink func(string) bool
}

// linkRules are the package map's rules on what commands link.
var linkRules = map[string]linkRule{
	"The function binary links no controller": {
		binds:   pkgIs("cmd/function"),
		mayLink: func(p string) bool { return !pkgUnder("controllers")(p) && !isManager(p) && !isAgent(p) },
	},
	"The provider binary links neither the agent nor the function": {
		binds: pkgIs("cmd/provider"),
		mayLink: func(p string) bool {
			return !isAgent(p) && !isDevCluster(p) && !pkgUnder("functions/xfn")(p) && !pkgUnder("functions/protection")(p)
		},
	},
	"No binary links a test helper": {
		binds:   func(string) bool { return true },
		mayLink: func(p string) bool { return !isTestHelpers(p) },
	},
}

// linkedBy lists the tree's packages p links, p excluded, sorted.
func linkedBy(pkgs map[string]goPackage, p string) []string {
	seen := map[string]bool{p: true}
	todo := []string{p}
	for len(todo) > 0 {
		next := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, imp := range pkgs[next].imports {
			if !seen[imp] {
				seen[imp] = true
				todo = append(todo, imp)
			}
		}
	}
	delete(seen, p)
	return slices.Sorted(maps.Keys(seen))
}

// TestArchitecture holds the package map of docs/architecture.md to the
// tree: one row for each package `go list ./...` finds in every module,
// none for a package that does not exist, and the import rules the page
// states kept by every package's imports.
func TestArchitecture(t *testing.T) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatalf("cannot find the repository's root: %v", err)
	}
	pkgs, err := listPackages(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pkgs["controllers"]; !ok || len(pkgs) < 10 {
		t.Fatalf("cannot find the tree's packages: go list found %d, without controllers", len(pkgs))
	}
	section, rows, err := readPackageMap(root)
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Sorted(maps.Keys(pkgs))

	t.Run("Rows", func(t *testing.T) {
		seen := map[string]int{}
		for _, r := range rows {
			where := fmt.Sprintf("%s:%d", architectureDoc, r.line)
			if len(r.cells) != 3 {
				t.Errorf("%s: the row has %d cells, want 3 (package, holds, may import)", where, len(r.cells))
			}
			for i, c := range r.cells {
				if c == "" {
					t.Errorf("%s: cell %d of the row is empty", where, i+1)
				}
			}
			pkg := r.cells[0]
			if len(pkg) < 3 || !strings.HasPrefix(pkg, "`") || !strings.HasSuffix(pkg, "`") || strings.Count(pkg, "`") != 2 {
				t.Errorf("%s: the first cell %q is not one package path in backticks", where, pkg)
				continue
			}
			pkg = strings.Trim(pkg, "`")
			if first, ok := seen[pkg]; ok {
				t.Errorf("%s: package %s has a row already, at line %d", where, pkg, first)
				continue
			}
			seen[pkg] = r.line
			if _, ok := pkgs[pkg]; !ok {
				t.Errorf("%s: the row names package %s, which the tree does not hold: remove the row or fix its path", where, pkg)
			}
		}
		for _, p := range names {
			if _, ok := seen[p]; !ok {
				t.Errorf("%s: package %s has no row in the package map: add one", architectureDoc, p)
			}
		}
	})

	t.Run("ImportRules", func(t *testing.T) {
		for _, rule := range slices.Sorted(maps.Keys(importRules)) {
			r := importRules[rule]
			t.Run(rule, func(t *testing.T) {
				if !strings.Contains(section, "**"+rule+".**") {
					t.Errorf("%s: the package map does not state the rule %q", architectureDoc, rule)
				}
				for _, p := range names {
					if !r.binds(p) {
						continue
					}
					for _, c := range []struct {
						where   string
						imports []string
						bound   bool
					}{
						{where: "", imports: pkgs[p].imports, bound: true},
						{where: " in its tests", imports: pkgs[p].testImports, bound: r.tests},
					} {
						for _, imp := range c.imports {
							if c.bound && !r.may(p, imp) {
								t.Errorf("%s imports %s%s, which breaks %q (%s)", p, imp, c.where, rule, architectureDoc)
							}
						}
					}
				}
			})
		}
	})

	t.Run("LinkRules", func(t *testing.T) {
		for _, rule := range slices.Sorted(maps.Keys(linkRules)) {
			r := linkRules[rule]
			t.Run(rule, func(t *testing.T) {
				if !strings.Contains(section, "**"+rule+".**") {
					t.Errorf("%s: the package map does not state the rule %q", architectureDoc, rule)
				}
				bound := 0
				for _, p := range names {
					if pkgs[p].name != "main" || !r.binds(p) {
						continue
					}
					bound++
					for _, l := range linkedBy(pkgs, p) {
						if !r.mayLink(l) {
							t.Errorf("%s links %s, which breaks %q (%s)", p, l, rule, architectureDoc)
						}
					}
				}
				if bound == 0 {
					t.Errorf("cannot find a command the rule %q binds", rule)
				}
			})
		}
	})
}
