//go:build tools

// Package tools records the code generators this module builds.
package tools

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
