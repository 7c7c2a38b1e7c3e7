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

// Package render turns an Addon task and its Function's CUE template into
// the Kubernetes objects, normally Jobs, that carry the task out.
//
// A template defines #Params, the schema of its parameters, and objects,
// the list of objects it renders. The renderer fills params (the task's
// parameter values unified with #Params) and context (a Context: namespace,
// task, invoker, session, target with its volumes, repository, storage,
// snapshot, component, image, variables and runtime settings), checks that
// the result is concrete, and decodes it. The same input always gives the
// same bytes.
//
// Templates are untrusted input written by platform teams: only a few pure
// standard-library packages may be imported, their size and the size of
// their output are bounded, and evaluation is time-boxed. Every error names
// the template position (file:line:col), the CUE path and the reason.
//
// The controllers call the renderer in process; the composition function in
// package functions/xfn serves it to Crossplane.
package render
