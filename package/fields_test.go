package stashpkg

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// fieldTable is the table of every spec field of every kind, with its
// effect and the test that shows it (docs/fields.md says how to add a row).
const fieldTable = "../docs/fields.md"

// A fieldRow is one row of the field table.
type fieldRow struct {
	line    int
	path    string // Kind.spec.a[].b, or Kind.spec.a.** for a subtree
	effect  string
	shownBy string
}

var (
	// rowPath is the first cell of a row: a path in backticks.
	rowPath = regexp.MustCompile("^`([A-Za-z]+\\.spec(?:\\.[A-Za-z0-9]+(?:\\[\\]|\\{\\})*)*(?:\\.\\*\\*)?)`$")
	// testRef is a test named in the shown-by cell: `TestName` or
	// `TestName/Subtest`.
	testRef = regexp.MustCompile("`(Test[A-Za-z0-9_]+)(?:/([A-Za-z0-9_]+))?`")
	// pending marks a row owned by another issue, whose merge names its
	// test: "pending: issue 14".
	pending = regexp.MustCompile(`^pending: issue [0-9]+\b`)
)

// readFieldTable parses the rows of the table: every line that starts with
// "| `", outside code blocks.
func readFieldTable(t *testing.T) []fieldRow {
	t.Helper()
	f, err := os.Open(fieldTable)
	if err != nil {
		t.Fatalf("cannot open field table: %v", err)
	}
	defer f.Close()
	var rows []fieldRow
	fenced := false
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if fenced || !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 3 {
			t.Errorf("%s:%d: want 3 cells (field | effect | shown by), got %d", fieldTable, n, len(cells))
			continue
		}
		m := rowPath.FindStringSubmatch(strings.TrimSpace(cells[0]))
		if m == nil {
			t.Errorf("%s:%d: %q is not a field path such as `Kind.spec.a[].b` or `Kind.spec.a.**`", fieldTable, n, cells[0])
			continue
		}
		rows = append(rows, fieldRow{line: n, path: m[1], effect: strings.TrimSpace(cells[1]), shownBy: strings.TrimSpace(cells[2])})
	}
	if err := s.Err(); err != nil {
		t.Fatalf("cannot read field table: %v", err)
	}
	return rows
}

// specPaths lists every field path under spec of a CRD's served version:
// an array's items add "[]", a map of objects "{}".
func specPaths(crd *apiextensionsv1.CustomResourceDefinition) []string {
	var out []string
	var walk func(prefix string, s apiextensionsv1.JSONSchemaProps)
	walk = func(prefix string, s apiextensionsv1.JSONSchemaProps) {
		suffix := ""
		for {
			switch {
			case s.Items != nil && s.Items.Schema != nil:
				suffix += "[]"
				s = *s.Items.Schema
				continue
			case len(s.Properties) == 0 && s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
				suffix += "{}"
				s = *s.AdditionalProperties.Schema
				continue
			}
			break
		}
		for name, p := range s.Properties {
			path := prefix + suffix + "." + name
			out = append(out, path)
			walk(path, p)
		}
	}
	for _, v := range crd.Spec.Versions {
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		if spec, ok := v.Schema.OpenAPIV3Schema.Properties["spec"]; ok {
			walk(crd.Spec.Names.Kind+".spec", spec)
		}
	}
	sort.Strings(out)
	return out
}

// testNames finds every top-level test function of the repository, with the
// text of the file that declares it (to look for a subtest's name).
func testNames(t *testing.T) map[string]string {
	t.Helper()
	decl := regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]+)\(`)
	out := map[string]string{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin" || d.Name() == "_output") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] += string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("cannot list tests: %v", err)
	}
	return out
}

// coveredBy returns the row that covers path: the row of that path, else
// the nearest row ending in ".**" above it.
func coveredBy(path string, rows map[string]fieldRow) (fieldRow, bool) {
	if r, ok := rows[path]; ok {
		return r, true
	}
	for p := path; strings.Contains(p, "."); p = p[:strings.LastIndex(p, ".")] {
		if r, ok := rows[strings.TrimRight(p, "[]{}")+".**"]; ok {
			return r, true
		}
	}
	return fieldRow{}, false
}

// TestFieldTable fails when a spec field of a CRD has no row in
// docs/fields.md, when a row names a field no CRD has, and when a row names
// no test that exists (unless another issue owns it, "pending: issue N", or
// the field has no behaviour, "informational: ..." shown by "—").
func TestFieldTable(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	rows := readFieldTable(t)
	byPath := map[string]fieldRow{}
	for _, r := range rows {
		if prev, ok := byPath[r.path]; ok {
			t.Errorf("%s:%d: %s already has a row at line %d", fieldTable, r.line, r.path, prev.line)
		}
		byPath[r.path] = r
	}

	known := map[string]bool{}
	var missing []string
	for _, crd := range crds {
		known[crd.Spec.Names.Kind+".spec"] = true
		for _, p := range specPaths(crd) {
			known[p] = true
			if _, ok := coveredBy(p, byPath); !ok {
				missing = append(missing, p)
			}
		}
	}
	if diff := cmp.Diff([]string(nil), missing); diff != "" {
		t.Errorf("spec fields without a row in %s (add one row per field, or `Kind.spec.x.**` for a subtree whose meaning is Kubernetes'):\n-want +got:\n%s", fieldTable, diff)
	}

	tests := testNames(t)
	for _, r := range rows {
		if !known[strings.TrimSuffix(r.path, ".**")] {
			t.Errorf("%s:%d: %s is not a spec field of any CRD", fieldTable, r.line, r.path)
		}
		if r.effect == "" {
			t.Errorf("%s:%d: %s has no effect", fieldTable, r.line, r.path)
		}
		if problem := checkShownBy(r, tests); problem != "" {
			t.Errorf("%s:%d: %s: %s", fieldTable, r.line, r.path, problem)
		}
	}
}

// checkShownBy says what is wrong with a row's shown-by cell: it must name
// tests that exist, or mark the row as owned by another issue.
func checkShownBy(r fieldRow, tests map[string]string) string {
	if r.shownBy == "—" {
		if !strings.HasPrefix(r.effect, "informational:") {
			return "only an informational field (effect \"informational: ...\") may name no test"
		}
		return ""
	}
	if pending.MatchString(r.shownBy) {
		if strings.HasPrefix(r.effect, "refused:") {
			return "a refusal is shown by a test, not pending"
		}
		return ""
	}
	refs := testRef.FindAllStringSubmatch(r.shownBy, -1)
	if len(refs) == 0 {
		return fmt.Sprintf("names no test (want `TestName`, `TestName/Subtest` or \"pending: issue N\"), got %q", r.shownBy)
	}
	for _, m := range refs {
		src, ok := tests[m[1]]
		if !ok {
			return fmt.Sprintf("test %s does not exist", m[1])
		}
		if m[2] != "" && !strings.Contains(src, `"`+m[2]+`"`) {
			return fmt.Sprintf("test %s has no case %q", m[1], m[2])
		}
	}
	return ""
}
