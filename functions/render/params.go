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

package render

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"cuelang.org/go/cue"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
)

// Names of the values the renderer fills, in CUE's positions.
const (
	paramsFile  = "params.json"
	contextFile = "context.json"
)

// FindTask returns the task of the given kind and name of an Addon.
func FindTask(a *addonsv1alpha1.Addon, kind TaskKind, name string) (*addonsv1alpha1.Task, error) {
	var tasks []addonsv1alpha1.Task
	switch kind {
	case TaskBackup:
		tasks = a.Spec.BackupTasks
	case TaskRestore:
		tasks = a.Spec.RestoreTasks
	default:
		return nil, fmt.Errorf("cannot find task %q: unknown task kind %q", name, kind)
	}
	for i := range tasks {
		if tasks[i].Name == name {
			return &tasks[i], nil
		}
	}
	return nil, fmt.Errorf("cannot find %s task %q in addon %q", kind, name, a.GetName())
}

// Tasks returns every task of an Addon with its kind, backup tasks first.
func Tasks(a *addonsv1alpha1.Addon) []KindedTask {
	var out []KindedTask
	for _, l := range []struct {
		kind  TaskKind
		tasks []addonsv1alpha1.Task
	}{{TaskBackup, a.Spec.BackupTasks}, {TaskRestore, a.Spec.RestoreTasks}} {
		for i := range l.tasks {
			out = append(out, KindedTask{Kind: l.kind, Task: l.tasks[i]})
		}
	}
	return out
}

// KindedTask is a task with the kind of list it is in.
type KindedTask struct {
	Kind TaskKind
	Task addonsv1alpha1.Task
}

// decodeParams reads the values a user gave a task: a JSON object, or
// nothing.
func decodeParams(raw []byte) (map[string]any, error) {
	out := map[string]any{}
	if len(strings.TrimSpace(string(raw))) == 0 || string(raw) == "null" {
		return out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, newError("cannot decode task parameters", nil, "parameters must be a JSON object: %v", err)
	}
	return out, nil
}

// mergeParams combines the defaults a task declares with the values given
// for it; given values win. Declared defaults are strings; each is read as
// the type the template's #Params expects: as is where a string is
// accepted, as JSON otherwise (so "true", "3" and `["/data"]` become a
// bool, a number and a list). A required parameter with neither a value nor
// a default is an error.
func mergeParams(schema cue.Value, task *addonsv1alpha1.Task, given map[string]any, requireAll bool) (map[string]any, error) {
	out := map[string]any{}
	var missing []string
	for _, p := range task.Parameters {
		if _, ok := given[p.Name]; ok {
			continue
		}
		if p.Default == "" {
			if p.Required && requireAll {
				missing = append(missing, p.Name)
			}
			continue
		}
		out[p.Name] = typedDefault(schema.LookupPath(cue.MakePath(cue.Str(p.Name))), p.Default)
	}
	for k, v := range given {
		out[k] = v
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		e := &Error{Op: "cannot validate task parameters"}
		for _, m := range missing {
			e.Issues = append(e.Issues, Issue{Path: PathParamValues + "." + m, Reason: "parameter is required by the addon task but not set"})
		}
		return nil, e
	}
	return out, nil
}

// typedDefault reads a declared default as the kind the schema field
// accepts.
func typedDefault(field cue.Value, def string) any {
	if field.Exists() && field.IncompleteKind()&cue.StringKind != 0 {
		return def
	}
	var v any
	if err := json.Unmarshal([]byte(def), &v); err != nil {
		// Not JSON: hand it to CUE as a string, which then reports the
		// type conflict with the template's position.
		return def
	}
	return v
}

// fillParams unifies the parameter values with the template's #Params and
// returns the result.
func fillParams(schema cue.Value, values map[string]any) (cue.Value, error) {
	b, err := json.Marshal(values)
	if err != nil {
		return cue.Value{}, newError("cannot encode task parameters", nil, "%v", err)
	}
	pv := schema.Context().CompileBytes(b, cue.Filename(paramsFile))
	if err := pv.Err(); err != nil {
		return cue.Value{}, fromCUE("cannot compile task parameters", err)
	}
	return schema.Unify(pv), nil
}
