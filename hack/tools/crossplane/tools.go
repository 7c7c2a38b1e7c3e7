//go:build tools

// Package tools records the Crossplane CLI this module builds: crank, the
// command that renders Compositions against a running function in process
// and builds Crossplane packages, used by the test/crossplane suite.
package tools

import _ "github.com/crossplane/crossplane/v2/cmd/crank"
