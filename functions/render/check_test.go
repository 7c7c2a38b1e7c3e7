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
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

// errText returns the error's message, or "" for nil, so that cases can
// compare the presence and content of errors with cmp.Diff.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCheckFunction(t *testing.T) {
	cases := map[string]struct {
		reason   string
		template string
		want     string
	}{
		"Valid": {
			reason:   "A template that follows the contract passes without a context or parameters.",
			template: jobTemplate,
		},
		"Broken": {
			reason:   "A deliberately broken template reports file:line:col, the path and the reason.",
			template: "#Params: {}\nobjects: [{kind: \"Job\", spec: 1 & \"one\"}]\n",
			want:     `cannot compile template: copy-fn.cue:2:31: objects.0.spec: conflicting values 1 and "one" (mismatched types int and string)`,
		},
		"UndefinedContextField": {
			reason:   "A typo in a context path is caught at check time.",
			template: "#Params: {}\nobjects: [{metadata: name: context.sesion.name}]\n",
			want:     "cannot validate template: copy-fn.cue:2:36: objects.0.metadata.name: undefined field: sesion",
		},
		"ObjectsNotList": {
			reason:   "objects must be a list.",
			template: "#Params: {}\nobjects: {}\n",
			want:     "cannot validate template: copy-fn.cue:2:1: objects: must be a list, not struct",
		},
		"ParamsNotStruct": {
			reason:   "#Params must be a struct.",
			template: "#Params: string\nobjects: []\n",
			want:     "cannot validate template: copy-fn.cue:1:1: #Params: must be a struct, not string",
		},
		"NoObjects": {
			reason:   "A template must say what it renders.",
			template: "#Params: {}\n",
			want:     "cannot validate template: objects: the template must define objects, the list of objects it renders",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := render.New(render.Options{}).CheckFunction(context.Background(), testFunction(tc.template))
			if diff := cmp.Diff(tc.want, errText(err)); diff != "" {
				t.Errorf("\n%s\nCheckFunction(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestCheckTaskDefaults(t *testing.T) {
	cases := map[string]struct {
		reason string
		params []addonsv1alpha1.ParameterDefinition
		want   []string
	}{
		"NoDefaults": {
			reason: "A task that declares no defaults passes even though #Params has a required field.",
		},
		"GoodDefault": {
			reason: "A default of the right type passes.",
			params: []addonsv1alpha1.ParameterDefinition{{Name: "retries", Default: "4"}},
		},
		"ListDefault": {
			reason: "A JSON list default is read as a list.",
			params: []addonsv1alpha1.ParameterDefinition{{Name: "paths", Default: `["/data"]`}},
		},
		"WrongType": {
			reason: "A default the schema refuses is an error at the schema's position.",
			params: []addonsv1alpha1.ParameterDefinition{{Name: "retries", Default: "-1"}},
			want:   []string{"cannot validate task parameters", "copy-fn.cue:7:", "params.retries", "invalid value -1"},
		},
		"Undeclared": {
			reason: "A parameter #Params does not declare is an error.",
			params: []addonsv1alpha1.ParameterDefinition{{Name: "verbose", Default: "true"}},
			want:   []string{"params.verbose", "field not allowed"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			task := &testAddon(tc.params...).Spec.BackupTasks[0]
			err := render.New(render.Options{}).CheckTaskDefaults(context.Background(), task, testFunction(jobTemplate))
			checkErr(t, tc.reason, "CheckTaskDefaults", err, tc.want)
		})
	}
}

func TestValidateParams(t *testing.T) {
	cases := map[string]struct {
		reason string
		params string
		want   []string
	}{
		"Valid": {
			reason: "Parameters that satisfy #Params pass.",
			params: `{"paths": ["/data"], "retries": 1}`,
		},
		"MissingRequired": {
			reason: "A required parameter left out makes the configuration invalid.",
			params: `{"retries": 1}`,
			want:   []string{"params.paths", "field is required but not present"},
		},
		"WrongType": {
			reason: "A parameter of the wrong type makes the configuration invalid.",
			params: `{"paths": "/data"}`,
			want:   []string{"params.paths", "conflicting values"},
		},
		"NotAnObject": {
			reason: "Parameters must be a JSON object.",
			params: `["/data"]`,
			want:   []string{"cannot decode task parameters"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := render.New(render.Options{}).ValidateParams(context.Background(), testAddon(), render.TaskBackup, "copy", testFunction(jobTemplate), []byte(tc.params))
			checkErr(t, tc.reason, "ValidateParams", err, tc.want)
		})
	}
}

// checkErr wants no error when want is empty, and otherwise an error
// containing every part of want.
func checkErr(t *testing.T, reason, op string, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("\n%s\n%s(...): %v", reason, op, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("\n%s\n%s(...): want error containing %q, got none", reason, op, want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("\n%s\n%s(...): error %q does not contain %q", reason, op, err, w)
		}
	}
}
