//go:build tools

// Package tools records the restic binary this module builds.
package tools

import _ "github.com/restic/restic/cmd/restic"
