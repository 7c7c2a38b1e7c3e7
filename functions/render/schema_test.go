package render

import (
	"reflect"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"github.com/google/go-cmp/cmp"
)

// TestContextMatchesSchema: the render context a template receives
// (Context, encoded as JSON) and the schema templates are checked against
// (schema.cue's #Context) name the same fields, each optional on both
// sides or on neither. A field only Go fills could never be read by a
// template that passed its check; a field only the schema declares would
// pass the check and be missing when a backup runs.
func TestContextMatchesSchema(t *testing.T) {
	schema := cuecontext.New().CompileString(contextSchema)
	if err := schema.Err(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	cueFields(t, schema.LookupPath(cue.ParsePath("#Context")), "", got)
	want := map[string]string{}
	goFields(reflect.TypeFor[Context](), "", want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema.cue's #Context and render.Context disagree: -Go +schema.cue:\n%s", diff)
	}
}

// goFields records every JSON field of t under prefix, as "required" or
// "optional" (omitempty), descending into this package's structs; other
// types (Kubernetes' objects, maps, lists) are leaves.
func goFields(t reflect.Type, prefix string, out map[string]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		path := prefix + name
		out[path] = "required"
		if strings.Contains(opts, "omitempty") {
			out[path] = "optional"
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() == t.PkgPath() {
			goFields(ft, path+".", out)
		}
	}
}

// cueFields records every regular field of v under prefix, as "required"
// or "optional", descending into structs that declare fields; an open
// struct without any ({...}, or a map such as [string]: string) is a leaf.
func cueFields(t *testing.T, v cue.Value, prefix string, out map[string]string) {
	t.Helper()
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		t.Fatalf("cannot list the fields of %q: %v", prefix, err)
	}
	for it.Next() {
		sel := it.Selector()
		path := prefix + sel.Unquoted()
		out[path] = "required"
		if sel.ConstraintType() == cue.OptionalConstraint {
			out[path] = "optional"
		}
		fv := it.Value()
		if fv.IncompleteKind() == cue.StructKind {
			if sub, err := fv.Fields(cue.Optional(true)); err == nil && sub.Next() {
				cueFields(t, fv, path+".", out)
			}
		}
	}
}
