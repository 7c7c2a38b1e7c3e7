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
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/ast/astutil"
	cuebuild "cuelang.org/go/cue/build"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// AllowedImports are the CUE standard-library packages a template may
// import. They are pure: none reads files, the network, the clock or the
// environment, so a template's output depends on its input alone. The
// tool/* packages, and anything else, are refused.
var AllowedImports = []string{
	"crypto/sha256",
	"encoding/base64",
	"encoding/hex",
	"encoding/json",
	"encoding/yaml",
	"list",
	"math",
	"path",
	"regexp",
	"strconv",
	"strings",
	"struct",
}

// AgentPackage is the import path of the CUE package the renderer
// provides to templates: the parts every agent Job shares
// (cue/agent/agent.cue, documented in docs/addons.md).
const AgentPackage = "stashplane.io/agent"

//go:embed cue/agent/agent.cue
var agentSource string

// providedPackages are the CUE packages of Stashplane's own a template may
// import besides the standard library's, by import path: their source.
var providedPackages = map[string]string{AgentPackage: agentSource}

var allowedImports = func() map[string]bool {
	m := make(map[string]bool, len(AllowedImports)+len(providedPackages))
	for _, p := range AllowedImports {
		m[p] = true
	}
	for p := range providedPackages {
		m[p] = true
	}
	return m
}()

// compile builds a parsed template in cctx with the packages it imports
// from providedPackages.
func compile(cctx *cue.Context, f *ast.File) (cue.Value, error) {
	bctx := cuebuild.NewContext()
	inst := bctx.NewInstance(f.Filename, nil)
	if err := inst.AddSyntax(f); err != nil {
		return cue.Value{}, err
	}
	for spec := range f.ImportSpecs() {
		path, err := strconv.Unquote(spec.Path.Value)
		src, ok := providedPackages[path]
		if err != nil || !ok {
			continue
		}
		pf, err := parser.ParseFile(path+"/"+ast.ParseImportPath(path).Qualifier+".cue", src, parser.ParseComments)
		if err != nil {
			return cue.Value{}, err
		}
		dep := bctx.NewInstance(path, nil)
		dep.ImportPath = path
		if err := dep.AddSyntax(pf); err != nil {
			return cue.Value{}, err
		}
		inst.Imports = append(inst.Imports, dep)
	}
	v := cctx.BuildInstance(inst)
	return v, v.Err()
}

// parseTemplate parses a template after checking its size, and refuses
// imports outside AllowedImports and attributes that reach outside the
// template (such as @extern, which embeds files).
func parseTemplate(filename, src string, maxBytes int) (*ast.File, error) {
	if len(src) > maxBytes {
		return nil, newError("cannot parse template", ErrTooLarge, "template is %d bytes, more than the %d allowed", len(src), maxBytes)
	}
	f, err := parser.ParseFile(filename, src, parser.ParseComments)
	if err != nil {
		return nil, fromCUE("cannot parse template", err)
	}
	var issues []Issue
	for spec := range f.ImportSpecs() {
		p, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			p = spec.Path.Value
		}
		if !allowedImports[p] {
			issues = append(issues, Issue{
				Position: spec.Pos().String(),
				Reason:   fmt.Sprintf("import %q is not allowed; allowed: %s", p, strings.Join(append([]string{AgentPackage}, AllowedImports...), ", ")),
			})
		}
	}
	ast.Walk(f, func(n ast.Node) bool {
		if a, ok := n.(*ast.Attribute); ok {
			if k, _ := a.Split(); k == "extern" || k == "embed" {
				issues = append(issues, Issue{Position: a.Pos().String(), Reason: fmt.Sprintf("attribute @%s is not allowed", k)})
			}
		}
		return true
	}, nil)
	if len(issues) > 0 {
		sort.SliceStable(issues, func(i, j int) bool { return issues[i].String() < issues[j].String() })
		return nil, &Error{Op: "cannot parse template", Cause: ErrImportNotAllowed, Issues: issues}
	}
	declare(f)
	return f, nil
}

// declare adds `context: _` and `params: #Params` to a template that does
// not declare them itself, so that authors may simply refer to both.
func declare(f *ast.File) {
	has := map[string]bool{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.Field); ok {
			if name, _, err := ast.LabelName(fd.Label); err == nil {
				has[name] = true
			}
		}
	}
	if !has[PathContext] {
		f.Decls = append(f.Decls, &ast.Field{Label: ast.NewIdent(PathContext), Value: ast.NewIdent("_")})
	}
	if !has[PathParamValues] && has[PathParams] {
		f.Decls = append(f.Decls, &ast.Field{Label: ast.NewIdent(PathParamValues), Value: ast.NewIdent(PathParams)})
	}
	// The parser resolved identifiers before these fields existed; resolve
	// again so that references to them bind. Unresolvable references are
	// reported later, with their positions, by the compiler.
	f.Unresolved = nil
	astutil.Resolve(f, func(token.Pos, string, ...any) {})
}

// withDeadline runs fn in a goroutine and waits at most until ctx is done.
//
// CUE's evaluator cannot be cancelled, so on timeout the goroutine is left
// to finish on its own: it may linger, holding its memory, until the
// evaluation ends. The size limits on templates keep that bounded in
// practice; a controller should treat a timeout as a template error and
// not retry it in a tight loop.
func withDeadline[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v: v, err: err}
	}()
	timedOut := func(cause error) (T, error) {
		var zero T
		return zero, &Error{Op: "cannot evaluate template", Cause: ErrTimeout, Issues: []Issue{{Reason: fmt.Sprintf("%v: %v", ErrTimeout, cause)}}}
	}
	select {
	case r := <-done:
		// The deadline's timer may fire late on a loaded machine: an
		// evaluation that ended past the deadline outlasted it all the
		// same.
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			return timedOut(context.DeadlineExceeded)
		}
		return r.v, r.err
	case <-ctx.Done():
		return timedOut(context.Cause(ctx))
	}
}
