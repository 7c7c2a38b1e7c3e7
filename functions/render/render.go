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
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"time"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
)

//go:embed schema.cue
var contextSchema string

// Defaults of Options.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultMaxOutputBytes = 1 << 20
	DefaultMaxObjects     = 32
)

// Options bound what a template may cost.
type Options struct {
	// Timeout bounds one evaluation; DefaultTimeout if zero.
	Timeout time.Duration
	// MaxTemplateBytes bounds a template's source;
	// addonsv1alpha1.MaxTemplateLength if zero.
	MaxTemplateBytes int
	// MaxOutputBytes bounds the JSON of the rendered objects;
	// DefaultMaxOutputBytes if zero.
	MaxOutputBytes int
	// MaxObjects bounds how many objects one task renders;
	// DefaultMaxObjects if zero.
	MaxObjects int
}

// Renderer evaluates Function templates. It is safe for concurrent use;
// the only state it keeps between calls is which parameter checks passed.
type Renderer struct {
	o       Options
	checked *checked
}

// New returns a Renderer with the given limits.
func New(o Options) *Renderer {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxTemplateBytes <= 0 {
		o.MaxTemplateBytes = addonsv1alpha1.MaxTemplateLength
	}
	if o.MaxOutputBytes <= 0 {
		o.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if o.MaxObjects <= 0 {
		o.MaxObjects = DefaultMaxObjects
	}
	return &Renderer{o: o, checked: &checked{}}
}

// Input is one task to render.
type Input struct {
	// Addon holding the task.
	Addon *addonsv1alpha1.Addon
	// TaskKind and Task name the task within the Addon.
	TaskKind TaskKind
	Task     string
	// Function the task names.
	Function *addonsv1alpha1.Function
	// Params are the values given to the task, a JSON object; the task's
	// declared defaults fill what is missing.
	Params []byte
	// Context is filled into the template at `context`. Its Task field is
	// filled in by the renderer from the Addon and Function.
	Context Context
}

// Result holds the rendered objects, sorted by apiVersion, kind and name.
type Result struct {
	Objects []*unstructured.Unstructured
}

// Render evaluates the task's Function with the input's context and
// parameters and returns the concrete, validated objects it defines.
func (r *Renderer) Render(ctx context.Context, in Input) (*Result, error) {
	task, err := FindTask(in.Addon, in.TaskKind, in.Task)
	if err != nil {
		return nil, err
	}
	if in.Function == nil || task.Function != in.Function.GetName() {
		return nil, fmt.Errorf("cannot render task %q: it names function %q, not the one given", in.Task, task.Function)
	}
	c := in.Context
	c.Task = TaskInfo{Addon: in.Addon.GetName(), Name: task.Name, Kind: in.TaskKind, Function: task.Function, Driver: string(task.Driver)}
	return r.render(ctx, task, in.Function, in.Params, c, false)
}

// RenderHook renders the Function of a hook whose HookTemplate has a
// Function executor. A hook belongs to no Addon: defs are its template's
// params, whose defaults fill what params (the hook's values) leave out,
// typed as #Params declares them, and context.task names the hook, of kind
// "hook".
func (r *Renderer) RenderHook(ctx context.Context, fn *addonsv1alpha1.Function, hook string, defs []addonsv1alpha1.ParameterDefinition, params []byte, c Context) (*Result, error) {
	if fn == nil {
		return nil, fmt.Errorf("cannot render hook %q: no function given", hook)
	}
	task := &addonsv1alpha1.Task{Name: hook, Function: fn.GetName(), Parameters: defs}
	c.Task = TaskInfo{Name: hook, Kind: TaskHook, Function: fn.GetName()}
	return r.render(ctx, task, fn, params, c, true)
}

// RenderVerification renders the Function a BackupVerifier of type Query
// or Script names. A verifier belongs to no Addon: its one task, named
// task, is the verifier's own, and context.task.addon names the verifier.
func (r *Renderer) RenderVerification(ctx context.Context, fn *addonsv1alpha1.Function, verifier, task string, params []byte, c Context) (*Result, error) {
	if fn == nil {
		return nil, fmt.Errorf("cannot render the verification of backupverifier %q: no function given", verifier)
	}
	t := &addonsv1alpha1.Task{Name: task, Function: fn.GetName(), Executor: addonsv1alpha1.TaskExecutorJob}
	c.Task = TaskInfo{Addon: verifier, Name: task, Kind: TaskVerification, Function: fn.GetName()}
	return r.render(ctx, t, fn, params, c, false)
}

// render evaluates fn for task with the given params and context. With
// onlyDeclared, a param #Params does not allow is left out rather than
// refused: a hook template's params also serve its ${NAME} references.
func (r *Renderer) render(ctx context.Context, task *addonsv1alpha1.Task, fn *addonsv1alpha1.Function, params []byte, c Context, onlyDeclared bool) (*Result, error) {
	if fn.Spec.Image != "" {
		// A Function that names its own image runs it in place of the
		// stashplane image.
		c.Image = fn.Spec.Image
	}
	given, err := decodeParams(params)
	if err != nil {
		return nil, err
	}
	f, err := parseTemplate(templateFile(fn), fn.Spec.Template, r.o.MaxTemplateBytes)
	if err != nil {
		return nil, err
	}
	ctxJSON, err := json.Marshal(normalize(c))
	if err != nil {
		return nil, fmt.Errorf("cannot encode render context: %w", err)
	}

	dctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	raw, err := withDeadline(dctx, func() ([]byte, error) {
		v, err := build(f)
		if err != nil {
			return nil, err
		}
		schema := v.LookupPath(cue.ParsePath(PathParams))
		values, err := mergeParams(schema, task, given, true)
		if err != nil {
			return nil, err
		}
		if onlyDeclared {
			for k := range values {
				if !schema.Allows(cue.Str(k)) {
					delete(values, k)
				}
			}
		}
		pv, err := fillParams(schema, values)
		if err != nil {
			return nil, err
		}
		v = v.FillPath(cue.ParsePath(PathParamValues), pv)
		cv := v.Context().CompileBytes(ctxJSON, cue.Filename(contextFile))
		v = v.FillPath(cue.ParsePath(PathContext), cv)
		if err := v.Validate(cue.Concrete(true), cue.Final()); err != nil {
			return nil, fromCUE("cannot render template", err)
		}
		b, err := v.LookupPath(cue.ParsePath(PathObjects)).MarshalJSON()
		if err != nil {
			return nil, fromCUE("cannot encode rendered objects", err)
		}
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	return r.finish(raw, c)
}

// CheckFunction compiles a Function's template and checks it against the
// contract: the imports are allowed, #Params is a struct, objects is a
// list, and every path the template reads from the context exists. It needs
// no context and no parameters, so it can run when the Function is created.
func (r *Renderer) CheckFunction(ctx context.Context, fn *addonsv1alpha1.Function) error {
	f, err := parseTemplate(templateFile(fn), fn.Spec.Template, r.o.MaxTemplateBytes)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	_, err = withDeadline(dctx, func() (struct{}, error) {
		v, err := build(f)
		if err != nil {
			return struct{}{}, err
		}
		if err := v.Validate(); err != nil {
			return struct{}{}, fromCUE("cannot validate template", err)
		}
		return struct{}{}, nil
	})
	return err
}

// CheckTaskDefaults checks that the parameters an Addon task declares, with
// their defaults, are accepted by its Function's #Params. Required values
// may still be missing: users give them when they configure a backup.
func (r *Renderer) CheckTaskDefaults(ctx context.Context, task *addonsv1alpha1.Task, fn *addonsv1alpha1.Function) error {
	return r.checkParams(ctx, task, fn, nil, false)
}

// ValidateParams checks the parameters a user gives a task, merged with the
// task's declared defaults, against the Function's #Params: each value must
// have the right type and every required parameter must be set. A
// BackupConfiguration whose parameters fail this is Invalid.
func (r *Renderer) ValidateParams(ctx context.Context, addon *addonsv1alpha1.Addon, kind TaskKind, taskName string, fn *addonsv1alpha1.Function, params []byte) error {
	task, err := FindTask(addon, kind, taskName)
	if err != nil {
		return err
	}
	if task.Function != fn.GetName() {
		return fmt.Errorf("cannot validate parameters of task %q: it names function %q, not %q", taskName, task.Function, fn.GetName())
	}
	given, err := decodeParams(params)
	if err != nil {
		return err
	}
	return r.checkParams(ctx, task, fn, given, true)
}

func (r *Renderer) checkParams(ctx context.Context, task *addonsv1alpha1.Task, fn *addonsv1alpha1.Function, given map[string]any, concrete bool) error {
	key, keyed := checkKey(task, fn, given, concrete)
	if keyed && r.checked.passed(key) {
		return nil
	}
	err := r.evalParams(ctx, task, fn, given, concrete)
	if err == nil && keyed {
		r.checked.pass(key)
	}
	return err
}

func (r *Renderer) evalParams(ctx context.Context, task *addonsv1alpha1.Task, fn *addonsv1alpha1.Function, given map[string]any, concrete bool) error {
	f, err := parseTemplate(templateFile(fn), fn.Spec.Template, r.o.MaxTemplateBytes)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	_, err = withDeadline(dctx, func() (struct{}, error) {
		v, err := build(f)
		if err != nil {
			return struct{}{}, err
		}
		schema := v.LookupPath(cue.ParsePath(PathParams))
		values, err := mergeParams(schema, task, given, concrete)
		if err != nil {
			return struct{}{}, err
		}
		pv, err := fillParams(schema, values)
		if err != nil {
			return struct{}{}, err
		}
		v = v.FillPath(cue.ParsePath(PathParamValues), pv)
		opts := []cue.Option{}
		if concrete {
			opts = append(opts, cue.Concrete(true), cue.Final())
		}
		if err := v.LookupPath(cue.ParsePath(PathParamValues)).Validate(opts...); err != nil {
			return struct{}{}, fromCUE("cannot validate task parameters", err)
		}
		return struct{}{}, nil
	})
	return err
}

// build compiles a parsed template, fills the context schema in, and checks
// that the paths the contract needs are there with the right kinds.
func build(f *ast.File) (cue.Value, error) {
	cctx := cuecontext.New()
	v, err := compile(cctx, f)
	if err != nil {
		return cue.Value{}, fromCUE("cannot compile template", err)
	}
	schema := cctx.CompileString(contextSchema, cue.Filename("stashplane-context.cue"))
	if err := schema.Err(); err != nil {
		return cue.Value{}, fromCUE("cannot compile context schema", err)
	}
	v = v.FillPath(cue.ParsePath(PathContext), schema.LookupPath(cue.ParsePath("#Context")))

	var issues []Issue
	p := v.LookupPath(cue.ParsePath(PathParams))
	o := v.LookupPath(cue.ParsePath(PathObjects))
	for _, x := range []cue.Value{p, o} {
		if x.Exists() && x.Err() != nil {
			return cue.Value{}, fromCUE("cannot validate template", x.Err())
		}
	}
	switch {
	case !p.Exists():
		issues = append(issues, Issue{Path: PathParams, Reason: "the template must define #Params, the schema of its parameters (an empty struct if it takes none)"})
	case p.IncompleteKind() != cue.StructKind:
		issues = append(issues, Issue{Position: p.Pos().String(), Path: PathParams, Reason: fmt.Sprintf("must be a struct, not %v", p.IncompleteKind())})
	}
	switch {
	case !o.Exists():
		issues = append(issues, Issue{Path: PathObjects, Reason: "the template must define objects, the list of objects it renders"})
	case o.IncompleteKind() != cue.ListKind:
		issues = append(issues, Issue{Position: o.Pos().String(), Path: PathObjects, Reason: fmt.Sprintf("must be a list, not %v", o.IncompleteKind())})
	}
	if len(issues) > 0 {
		return cue.Value{}, &Error{Op: "cannot validate template", Issues: issues}
	}
	return v, nil
}

// templateFile is the file name CUE's positions report for a Function's
// template.
func templateFile(fn *addonsv1alpha1.Function) string {
	if fn.GetName() == "" {
		return "template.cue"
	}
	return fn.GetName() + ".cue"
}
