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
	"errors"
	"fmt"
	"sort"
	"strings"

	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

// Sentinel errors, for callers that branch on what went wrong.
var (
	// ErrTimeout: the template took longer than the renderer allows.
	ErrTimeout = errors.New("template evaluation timed out")
	// ErrTooLarge: the template or its output is larger than allowed.
	ErrTooLarge = errors.New("size limit exceeded")
	// ErrImportNotAllowed: the template imports a package outside the
	// allowlist.
	ErrImportNotAllowed = errors.New("import not allowed")
)

// maxIssues bounds how many problems one Error reports, so that a condition
// message stays readable.
const maxIssues = 8

// Issue is one problem found in a template, its parameters or its output.
type Issue struct {
	// Position is where in the template the problem is, as file:line:col;
	// empty when CUE gave none.
	Position string
	// Path is the CUE field path the problem is at, for example
	// "params.paths"; empty when it concerns the whole value.
	Path string
	// Reason says what is wrong.
	Reason string
}

// String renders the issue as "file:line:col: path: reason".
func (i Issue) String() string {
	var b strings.Builder
	if i.Position != "" {
		b.WriteString(i.Position)
		b.WriteString(": ")
	}
	if i.Path != "" {
		b.WriteString(i.Path)
		b.WriteString(": ")
	}
	b.WriteString(i.Reason)
	return b.String()
}

// Error is what the renderer returns when a template, its parameters or its
// output is wrong. Its message is stable for the same input, so that it can
// be written to a condition without churning status.
type Error struct {
	// Op says what failed, for example "cannot validate template".
	Op string
	// Issues found, in a stable order.
	Issues []Issue
	// Cause is a sentinel the error wraps, if any.
	Cause error
}

// Error joins the operation and its issues.
func (e *Error) Error() string {
	parts := make([]string, 0, len(e.Issues))
	for _, i := range e.Issues {
		parts = append(parts, i.String())
	}
	if len(parts) == 0 && e.Cause != nil {
		parts = append(parts, e.Cause.Error())
	}
	return e.Op + ": " + strings.Join(parts, "; ")
}

// Unwrap returns the sentinel the error wraps.
func (e *Error) Unwrap() error { return e.Cause }

// newError makes an Error from a single reason.
func newError(op string, cause error, format string, args ...any) *Error {
	return &Error{Op: op, Cause: cause, Issues: []Issue{{Reason: fmt.Sprintf(format, args...)}}}
}

// fromCUE turns a CUE error into an Error carrying each problem's position,
// path and reason.
func fromCUE(op string, err error) *Error {
	out := &Error{Op: op}
	seen := map[string]bool{}
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		is := Issue{
			Path:   strings.Join(e.Path(), "."),
			Reason: fmt.Sprintf(format, args...),
		}
		is.Position = position(e)
		// A disjunction that failed is reported once as a summary without
		// a position and once per branch with one; the branches say more.
		if is.Position == "" && strings.Contains(is.Reason, "errors in empty disjunction") {
			continue
		}
		if k := is.String(); !seen[k] {
			seen[k] = true
			out.Issues = append(out.Issues, is)
		}
	}
	sort.SliceStable(out.Issues, func(i, j int) bool { return out.Issues[i].String() < out.Issues[j].String() })
	if len(out.Issues) > maxIssues {
		n := len(out.Issues) - maxIssues
		out.Issues = append(out.Issues[:maxIssues], Issue{Reason: fmt.Sprintf("and %d more", n)})
	}
	if len(out.Issues) == 0 {
		out.Issues = []Issue{{Reason: err.Error()}}
	}
	return out
}

// position picks the position an author should look at: the error's own
// position if it is in the template, else the first one in the template,
// else the first CUE gave (in the parameter or context values).
func position(e cueerrors.Error) string {
	inTemplate := func(p token.Pos) bool {
		f := p.Filename()
		return p.IsValid() && f != paramsFile && f != contextFile
	}
	if p := e.Position(); inTemplate(p) {
		return p.String()
	}
	ps := cueerrors.Positions(e)
	for _, p := range ps {
		if inTemplate(p) {
			return p.String()
		}
	}
	if len(ps) > 0 {
		return ps[0].String()
	}
	return ""
}
