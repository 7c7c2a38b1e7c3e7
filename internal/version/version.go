// Package version is the version of this build of Stashplane, set at link
// time with -ldflags "-X github.com/stashplane/stashplane/internal/version.Version=v…".
package version

// Version is the release this binary was built from; "dev" for local builds.
var Version = "dev"

// Image is the stashplane image of this version, which the controllers put
// in the pods they run.
func Image() string {
	tag := Version
	if tag == "dev" {
		tag = "latest"
	}
	return "ghcr.io/stashplane/stashplane:" + tag
}
