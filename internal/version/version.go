// Package version is the version of this build of Stashplane, set at link
// time with -ldflags "-X github.com/stashplane/stashplane/internal/version.Version=v…".
package version

// Version is the release this binary was built from; "dev" for local builds.
var Version = "dev"

// Registry is where the project's own images are, with a trailing slash.
const Registry = "ghcr.io/stashplane/"

// Tag is the tag of the project's images of this version: the version,
// or "latest" for a local build.
func Tag() string {
	if Version == "dev" {
		return "latest"
	}
	return Version
}

// Image is the stashplane image of this version, which the controllers put
// in the pods they run.
func Image() string {
	return Registry + "stashplane:" + Tag()
}
