//go:build tools

// Package tools records the GCS emulator this module builds.
package tools

import _ "github.com/fsouza/fake-gcs-server"
