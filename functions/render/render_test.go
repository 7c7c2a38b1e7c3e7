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

package render_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

// jobTemplate is a small valid template; the cases change parts of it.
const jobTemplate = `import "strings"

#Params: {
	// Paths to copy.
	paths!: [...string]
	// How many times to retry.
	retries: int & >=0 | *2
}

objects: [{
	apiVersion: "batch/v1"
	kind:       "Job"
	metadata: name: "\(context.session.name)-copy"
	spec: {
		backoffLimit: params.retries
		template: spec: {
			restartPolicy: "Never"
			containers: [{
				name:  "copy"
				image: context.image
				args: ["backup", "--paths=\(strings.Join(params.paths, ","))"]
			}]
		}
	}
}]
`

func testAddon(params ...addonsv1alpha1.ParameterDefinition) *addonsv1alpha1.Addon {
	return &addonsv1alpha1.Addon{
		ObjectMeta: metav1.ObjectMeta{Name: "test-addon"},
		Spec: addonsv1alpha1.AddonSpec{BackupTasks: []addonsv1alpha1.Task{{
			Name: "copy", Function: "copy-fn", Driver: "Restic", Parameters: params,
		}}},
	}
}

func testFunction(template string) *addonsv1alpha1.Function {
	return &addonsv1alpha1.Function{
		ObjectMeta: metav1.ObjectMeta{Name: "copy-fn"},
		Spec:       addonsv1alpha1.FunctionSpec{Template: template},
	}
}

func TestRender(t *testing.T) {
	type args struct {
		template string
		params   string
		addon    *addonsv1alpha1.Addon
		opts     render.Options
	}
	type want struct {
		golden string
		// errParts must all appear in the error message.
		errParts []string
		errIs    error
	}
	agentExample := docsCUE(t, "../../docs/addons.md", "## The `stashplane.io/agent` package")
	cases := map[string]struct {
		reason string
		args   args
		want   want
	}{
		"AgentPackage": {
			reason: "A template importing stashplane.io/agent (the example docs/addons.md gives platform teams) renders an agent Job with its bounded name, labels, run flags and credential mounts.",
			args:   args{template: agentExample, params: `{"paths": "/data, /etc/app"}`, addon: testAddon()},
			want:   want{golden: "render-agent-package"},
		},
		"OtherStashplanePackage": {
			reason: "Only the packages the renderer provides may be imported from stashplane.io.",
			args:   args{template: "import \"stashplane.io/secrets\"\n#Params: {}\nobjects: []\n", addon: testAddon()},
			want:   want{errParts: []string{`import "stashplane.io/secrets" is not allowed`, "allowed: stashplane.io/agent, crypto/sha256"}, errIs: render.ErrImportNotAllowed},
		},
		"Rendered": {
			reason: "A valid template renders a Job with params, defaults, context, labels and runtime settings.",
			args:   args{template: jobTemplate, params: `{"paths": ["/data"]}`, addon: testAddon()},
			want:   want{golden: "render-basic"},
		},
		"AddonDefault": {
			reason: "A default declared by the addon task is read as the type #Params wants and used when the user gives none.",
			args: args{template: jobTemplate, params: `{"paths": ["/data"]}`, addon: testAddon(
				addonsv1alpha1.ParameterDefinition{Name: "retries", Default: "5"},
			)},
			want: want{golden: "render-addon-default"},
		},
		"BrokenSyntax": {
			reason: "A template that does not parse is an error at its file:line:col.",
			args:   args{template: "#Params: {}\nobjects: [\n\t{kind: }\n", addon: testAddon()},
			want:   want{errParts: []string{"cannot parse template", "copy-fn.cue:3:"}},
		},
		"TypeConflict": {
			reason: "A template whose values conflict is an error naming file:line:col, the path and the reason.",
			args: args{
				template: strings.Replace(jobTemplate, "backoffLimit: params.retries", `backoffLimit: params.retries & "three"`, 1),
				params:   `{"paths": ["/data"]}`, addon: testAddon(),
			},
			want: want{errParts: []string{"copy-fn.cue:7:11", "objects.0.spec.backoffLimit", "conflicting values \"three\" and int"}},
		},
		"RequiredParamMissing": {
			reason: "A required #Params field with no value is an error at the field's position.",
			args:   args{template: jobTemplate, params: `{}`, addon: testAddon()},
			want:   want{errParts: []string{"copy-fn.cue:5:", "params.paths", "required"}},
		},
		"ParamWrongType": {
			reason: "A parameter of the wrong type is an error naming the parameter.",
			args:   args{template: jobTemplate, params: `{"paths": ["/data"], "retries": "many"}`, addon: testAddon()},
			want:   want{errParts: []string{"params.retries", "conflicting values"}},
		},
		"UnknownParam": {
			reason: "#Params is closed: a parameter the template does not declare is refused.",
			args:   args{template: jobTemplate, params: `{"paths": ["/data"], "verbose": true}`, addon: testAddon()},
			want:   want{errParts: []string{"params.verbose", "not allowed"}},
		},
		"AddonRequiredParam": {
			reason: "A parameter the addon task marks required must be given even if #Params has a default.",
			args: args{template: jobTemplate, params: `{"paths": ["/data"]}`, addon: testAddon(
				addonsv1alpha1.ParameterDefinition{Name: "retries", Required: true},
			)},
			want: want{errParts: []string{"params.retries", "required by the addon task"}},
		},
		"UndefinedContextField": {
			reason: "Reading a context field that does not exist is an error at its position.",
			args: args{
				template: strings.Replace(jobTemplate, "context.image", "context.imag", 1),
				params:   `{"paths": ["/data"]}`, addon: testAddon(),
			},
			want: want{errParts: []string{"copy-fn.cue:20:20", "containers.0.image", "undefined field: imag"}},
		},
		"ToolImport": {
			reason: "Templates may not import tool/* packages.",
			args:   args{template: "import \"tool/exec\"\n" + jobTemplate[len(`import "strings"`):], addon: testAddon()},
			want:   want{errParts: []string{"copy-fn.cue:1:8", `import "tool/exec" is not allowed`}, errIs: render.ErrImportNotAllowed},
		},
		"ExternAttribute": {
			reason: "Templates may not embed files.",
			args:   args{template: "@extern(embed)\n" + jobTemplate, addon: testAddon()},
			want:   want{errParts: []string{"attribute @extern is not allowed"}, errIs: render.ErrImportNotAllowed},
		},
		"TemplateTooLarge": {
			reason: "A template larger than the limit is refused before it is parsed.",
			args:   args{template: jobTemplate, addon: testAddon(), opts: render.Options{MaxTemplateBytes: 64}},
			want:   want{errParts: []string{"more than the 64 allowed"}, errIs: render.ErrTooLarge},
		},
		"OutputTooLarge": {
			reason: "Output larger than the limit is refused.",
			args:   args{template: jobTemplate, params: `{"paths": ["/data"]}`, addon: testAddon(), opts: render.Options{MaxOutputBytes: 100}},
			want:   want{errParts: []string{"output is", "more than the 100 allowed"}, errIs: render.ErrTooLarge},
		},
		"TooManyObjects": {
			reason: "More objects than the limit are refused.",
			args: args{
				template: "#Params: {}\nobjects: [for i in [1, 2, 3] {apiVersion: \"v1\", kind: \"ConfigMap\", metadata: name: \"c\\(i)\"}]\n",
				addon:    testAddon(), opts: render.Options{MaxObjects: 2},
			},
			want: want{errParts: []string{"3 objects rendered"}, errIs: render.ErrTooLarge},
		},
		"SecretRefused": {
			reason: "A template may not render a Secret.",
			args: args{
				template: "#Params: {}\nobjects: [{apiVersion: \"v1\", kind: \"Secret\", metadata: name: \"s\", stringData: k: \"v\"}]\n",
				addon:    testAddon(),
			},
			want: want{errParts: []string{"objects.0", `kind "Secret"`, "may not be rendered"}},
		},
		"OtherNamespace": {
			reason: "A template may not put objects in another namespace.",
			args: args{
				template: "#Params: {}\nobjects: [{apiVersion: \"v1\", kind: \"ConfigMap\", metadata: {name: \"c\", namespace: \"kube-system\"}}]\n",
				addon:    testAddon(),
			},
			want: want{errParts: []string{`metadata.namespace "kube-system"`}},
		},
		"MisspeltJobField": {
			reason: "A Job is decoded strictly: a misspelt field is an error, not silently dropped.",
			args: args{
				template: strings.Replace(jobTemplate, "backoffLimit:", "backofLimit:", 1),
				params:   `{"paths": ["/data"]}`, addon: testAddon(),
			},
			want: want{errParts: []string{"objects.0", "not a valid Job", "backofLimit"}},
		},
		"NoParamsSchema": {
			reason: "A template without #Params breaks the contract.",
			args:   args{template: "objects: []\n", addon: testAddon()},
			want:   want{errParts: []string{"#Params: the template must define #Params"}},
		},
		"Timeout": {
			reason: "Evaluation that outlasts the timeout is abandoned with ErrTimeout.",
			args:   args{template: jobTemplate, params: `{"paths": ["/data"]}`, addon: testAddon(), opts: render.Options{Timeout: time.Nanosecond}},
			want:   want{errParts: []string{"timed out"}, errIs: render.ErrTimeout},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := render.New(tc.args.opts)
			res, err := r.Render(context.Background(), render.Input{
				Addon: tc.args.addon, TaskKind: render.TaskBackup, Task: "copy",
				Function: testFunction(tc.args.template), Params: []byte(tc.args.params), Context: exampleContext(),
			})
			if tc.want.golden == "" {
				if err == nil {
					t.Fatalf("\n%s\nRender(...): want error, got none", tc.reason)
				}
				for _, p := range tc.want.errParts {
					if !strings.Contains(err.Error(), p) {
						t.Errorf("\n%s\nRender(...): error %q does not contain %q", tc.reason, err, p)
					}
				}
				if tc.want.errIs != nil {
					if diff := cmp.Diff(tc.want.errIs, err, cmpopts.EquateErrors()); diff != "" {
						t.Errorf("\n%s\nRender(...): -want error, +got error:\n%s", tc.reason, diff)
					}
				}
				var re *render.Error
				if !errors.As(err, &re) {
					t.Errorf("\n%s\nRender(...): error %T is not a *render.Error", tc.reason, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("\n%s\nRender(...): %v", tc.reason, err)
			}
			out, err := res.YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.want.golden, out)
		})
	}
}

// TestRenderErrorIssues checks the structure of an error, not only its
// text: the position, the path and the reason are separate fields.
func TestRenderErrorIssues(t *testing.T) {
	tmpl := strings.Replace(jobTemplate, "backoffLimit: params.retries", `backoffLimit: params.retries & "three"`, 1)
	_, err := render.New(render.Options{}).Render(context.Background(), render.Input{
		Addon: testAddon(), TaskKind: render.TaskBackup, Task: "copy", Function: testFunction(tmpl),
		Params: []byte(`{"paths": ["/data"]}`), Context: exampleContext(),
	})
	var re *render.Error
	if !errors.As(err, &re) {
		t.Fatalf("Render(...): want *render.Error, got %v", err)
	}
	want := []render.Issue{{
		Position: "copy-fn.cue:7:11",
		Path:     "objects.0.spec.backoffLimit",
		Reason:   `conflicting values "three" ...`,
	}}
	got := re.Issues
	if len(got) > 0 {
		// The reason wording beyond the conflict is CUE's; compare its start.
		got = []render.Issue{{Position: got[0].Position, Path: got[0].Path, Reason: got[0].Reason}}
	}
	if diff := cmp.Diff(want[0].Position, got[0].Position); diff != "" {
		t.Errorf("Issues[0].Position: -want +got:\n%s", diff)
	}
	if diff := cmp.Diff(want[0].Path, got[0].Path); diff != "" {
		t.Errorf("Issues[0].Path: -want +got:\n%s", diff)
	}
	if !strings.HasPrefix(got[0].Reason, `conflicting values "three"`) {
		t.Errorf("Issues[0].Reason = %q, want a conflict with \"three\"", got[0].Reason)
	}
}

// TestRenderDeterministic renders the same input many times, with maps
// that Go iterates in random order, and wants the same bytes each time.
func TestRenderDeterministic(t *testing.T) {
	r := render.New(render.Options{})
	c := exampleContext()
	for i := range 20 {
		c.Variables[strings.Repeat("v", i+1)] = "x"
		c.Runtime.PodLabels[strings.Repeat("l", i+1)] = "y"
	}
	var first []byte
	for i := range 10 {
		res, err := r.Render(context.Background(), render.Input{
			Addon: testAddon(), TaskKind: render.TaskBackup, Task: "copy", Function: testFunction(jobTemplate),
			Params: []byte(`{"retries": 1, "paths": ["/b", "/a"]}`), Context: c,
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := res.YAML()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = out
			continue
		}
		if !bytes.Equal(first, out) {
			t.Fatalf("render %d differs from the first:\n%s", i, cmp.Diff(string(first), string(out)))
		}
	}
}

// docsCUE is the first cue code block of the markdown file path after the
// line heading.
func docsCUE(t *testing.T, path, heading string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s has no heading %q", path, heading)
	}
	_, block, ok := strings.Cut(after, "```cue\n")
	if !ok {
		t.Fatalf("%s has no cue block after %q", path, heading)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatalf("%s: the cue block after %q does not end", path, heading)
	}
	return block
}
