//go:build tools

// Package tools records the Crossplane programs this module builds: crank,
// the command that renders Compositions against a running function in
// process and builds Crossplane packages (the test/crossplane suite), and
// Crossplane core with its RBAC manager, which the dev cluster runs from
// an image to install Stashplane's packages (`stashplane dev up --crossplane`).
package tools

import (
	_ "github.com/crossplane/crossplane/v2/cmd/crank"
	_ "github.com/crossplane/crossplane/v2/cmd/crossplane"
)
