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

// Package apis holds Stashplane's API groups and registers them all at once.
//
// The deepcopy methods (zz_generated.deepcopy.go) and the CustomResource-
// Definitions in package/crds are generated from the types by the directives
// below; run "go generate ./apis/..." after changing a type.
package apis

// Remove stale CRDs so that a renamed or deleted kind leaves nothing behind.
//go:generate rm -rf ../package/crds

//go:generate ../bin/controller-gen object:headerFile=../hack/boilerplate.go.txt paths=./...
//go:generate ../bin/controller-gen crd:crdVersions=v1 paths=./... output:crd:artifacts:config=../package/crds
