package processnode

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// ImageTable maps container images to programs on this machine. The process
// node has no container runtime: a container whose image is in the table runs
// the mapped program, any other image fails its pod with reason
// ImageNotMapped.
//
// Images are matched on their repository, without registry defaults, tag or
// digest: "busybox", "docker.io/library/busybox:1.36" and
// "busybox@sha256:..." are all "busybox".
type ImageTable map[string]Image

// Image says how a container of one image runs on the process node.
type Image struct {
	// Entrypoint and Cmd play the parts of an image's ENTRYPOINT and CMD: a
	// container's command replaces Entrypoint (and drops Cmd), its args
	// replace Cmd, as in a real runtime.
	Entrypoint string
	Cmd        []string

	// Program, when set, is the program every command of the image runs:
	// the container's command[0] is replaced by it and the rest are its
	// arguments. It is how the project's own image maps to the stashplane
	// binary whatever path the manifest names it by.
	Program string

	// Host says the command is looked up on the host's PATH, so that a
	// generic image such as busybox runs the host's sh, cat or sleep.
	Host bool

	// Path are directories of the image's own programs: a command's bare
	// name is looked up there before the host's PATH, and the container's
	// PATH starts with them, so that its shell finds them too.
	Path []string
}

// The project's own images.
const (
	StashplaneImage = "ghcr.io/stashplane/stashplane"
	ResticImage     = "ghcr.io/stashplane/restic"
	// PostgresVerifierImage runs `stashplane verify postgres` with
	// PostgreSQL: on the dev cluster the stashplane binary, which finds the
	// PostgreSQL programs in bin/postgres beside it.
	PostgresVerifierImage = "ghcr.io/stashplane/postgres-verifier"
	// StashplanePostgresImage is the agent with PostgreSQL's client
	// programs, which the postgres-addon's Jobs run (`stashplane backup
	// postgres`, `stashplane restore postgres`): on the dev cluster the
	// stashplane binary, which finds pg_dump and psql in bin/postgres
	// beside it.
	StashplanePostgresImage = "ghcr.io/stashplane/stashplane-postgres"
	// PostgresImage is the PostgreSQL server's image, for workloads.
	PostgresImage = "postgres"
	// PostgresBinDir is where the programs of Debian's PostgreSQL 15
	// packages are, under bin/postgres.
	PostgresBinDir = "usr/lib/postgresql/15/bin"
)

// DefaultImageTable is the documented table of the dev cluster: the project's
// image runs the stashplane binary, the restic image runs restic, and a few
// general-purpose images run the host's programs.
//
// With PostgreSQL in bin/postgres beside the stashplane binary (make
// tools), the postgres image runs its programs (postgres, initdb, psql,
// pg_isready...) ahead of the host's: an image's entrypoint script is not
// run, so a pod initialises its data directory with initdb itself.
func DefaultImageTable(stashplaneBinary, resticBinary string) ImageTable {
	t := ImageTable{
		"busybox": {Host: true, Cmd: []string{"sh"}},
		"alpine":  {Host: true, Cmd: []string{"sh"}},
		"debian":  {Host: true, Cmd: []string{"bash"}},
		"ubuntu":  {Host: true, Cmd: []string{"bash"}},
	}
	if stashplaneBinary != "" {
		t[StashplaneImage] = Image{Program: stashplaneBinary, Entrypoint: stashplaneBinary}
		t[PostgresVerifierImage] = Image{Program: stashplaneBinary, Entrypoint: stashplaneBinary}
		t[StashplanePostgresImage] = Image{Program: stashplaneBinary, Entrypoint: stashplaneBinary}
	}
	if resticBinary != "" {
		t[ResticImage] = Image{Program: resticBinary, Entrypoint: resticBinary}
	}
	if stashplaneBinary != "" {
		pg := filepath.Join(filepath.Dir(stashplaneBinary), "postgres", PostgresBinDir)
		if _, err := os.Stat(filepath.Join(pg, "postgres")); err == nil {
			t[PostgresImage] = Image{Host: true, Path: []string{pg}, Entrypoint: "postgres"}
		}
	}
	return t
}

// repository strips the tag, digest and default registry from an image
// reference.
func repository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	// A tag follows the last colon after the last slash; an earlier colon
	// belongs to a registry's port.
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	image = strings.TrimPrefix(image, "docker.io/")
	image = strings.TrimPrefix(image, "index.docker.io/")
	image = strings.TrimPrefix(image, "library/")
	return image
}

// Names lists the images of the table, sorted, for error messages.
func (t ImageTable) Names() []string {
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrImageNotMapped is returned for an image the table does not hold.
type ErrImageNotMapped struct {
	Image string
	Known []string
}

func (e *ErrImageNotMapped) Error() string {
	return fmt.Sprintf("image %q is not mapped to a program on the process node (mapped images: %s)", e.Image, strings.Join(e.Known, ", "))
}

// Resolve returns the program path and arguments a container runs.
func (t ImageTable) Resolve(image string, command, args []string) (string, []string, error) {
	img, ok := t[repository(image)]
	if !ok {
		return "", nil, &ErrImageNotMapped{Image: image, Known: t.Names()}
	}
	var entrypoint []string
	if img.Entrypoint != "" {
		entrypoint = []string{img.Entrypoint}
	}
	argv := runtimeArgv(entrypoint, img.Cmd, command, args)
	if len(argv) == 0 {
		return "", nil, fmt.Errorf("image %q has no entrypoint on the process node: set the container's command", image)
	}
	if img.Program != "" {
		argv[0] = img.Program
	}
	// An absolute path is found in the container's own view when it
	// starts (it may be in a volume); a bare name on the host's PATH.
	prog := argv[0]
	if !filepath.IsAbs(prog) {
		for _, dir := range img.Path {
			if p := filepath.Join(dir, prog); isProgram(p) {
				return p, argv, nil
			}
		}
		p, err := exec.LookPath(prog)
		if err != nil {
			return "", nil, fmt.Errorf("cannot find program %q of image %q on the process node: %w", prog, image, err)
		}
		prog = p
	}
	return prog, argv, nil
}

func isProgram(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// runtimeArgv is what a container runs, as a container runtime picks it:
// the container's command replaces the image's entrypoint (and drops its
// cmd), the container's args replace the image's cmd.
func runtimeArgv(entrypoint, cmd, command, args []string) []string {
	switch {
	case len(command) > 0:
		return append(append([]string{}, command...), args...)
	case len(args) > 0:
		return append(append([]string{}, entrypoint...), args...)
	default:
		return append(append([]string{}, entrypoint...), cmd...)
	}
}

// usualPath is the PATH of a container whose image names none.
const usualPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// PathOf is the PATH a container of image starts with: the image's own
// directories, then the usual ones.
func (t ImageTable) PathOf(image string) string {
	img := t[repository(image)]
	if len(img.Path) == 0 {
		return usualPath
	}
	return strings.Join(img.Path, ":") + ":" + usualPath
}
