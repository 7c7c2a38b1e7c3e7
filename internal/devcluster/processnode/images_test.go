package processnode

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestImageTableResolve(t *testing.T) {
	table := ImageTable{
		"busybox":                       {Host: true, Cmd: []string{"sh"}},
		"ghcr.io/stashplane/stashplane": {Program: "/opt/bin/stashplane", Entrypoint: "/opt/bin/stashplane"},
		"registry.local:5000/tool":      {Entrypoint: "/bin/true"},
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		path     string
		argv     []string
		notFound bool
	}
	cases := map[string]struct {
		reason        string
		image         string
		command, args []string
		want          want
	}{
		"DefaultCmd": {
			reason: "With neither command nor args the image's Cmd runs.",
			image:  "busybox", want: want{path: sh, argv: []string{"sh"}},
		},
		"ArgsReplaceCmd": {
			reason: "Args replace Cmd, as kubectl run -- sh -c ... does.",
			image:  "docker.io/library/busybox:1.36", args: []string{"sh", "-c", "true"},
			want: want{path: sh, argv: []string{"sh", "-c", "true"}},
		},
		"CommandAndArgs": {
			reason: "A command replaces the entrypoint and is followed by args.",
			image:  "busybox@sha256:abc", command: []string{"sh", "-c"}, args: []string{"exit 3"},
			want: want{path: sh, argv: []string{"sh", "-c", "exit 3"}},
		},
		"ProjectImageRunsProgram": {
			reason: "The project's image runs the stashplane binary whatever path the manifest uses.",
			image:  "ghcr.io/stashplane/stashplane:v0.1.0", command: []string{"/stashplane", "backup"},
			want: want{path: "/opt/bin/stashplane", argv: []string{"/opt/bin/stashplane", "backup"}},
		},
		"ProjectImageEntrypoint": {
			reason: "Args alone follow the image's entrypoint.",
			image:  "ghcr.io/stashplane/stashplane", args: []string{"version"},
			want: want{path: "/opt/bin/stashplane", argv: []string{"/opt/bin/stashplane", "version"}},
		},
		"RegistryPortIsNotATag": {
			reason: "A registry's port is kept; only the tag is dropped.",
			image:  "registry.local:5000/tool:v1",
			want:   want{path: "/bin/true", argv: []string{"/bin/true"}},
		},
		"Unmapped": {
			reason: "An image outside the table is refused by name.",
			image:  "nginx:1.27", want: want{notFound: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path, argv, err := table.Resolve(tc.image, tc.command, tc.args)
			var nm *ErrImageNotMapped
			got := want{path: path, argv: argv, notFound: errors.As(err, &nm)}
			if err != nil && !got.notFound {
				t.Fatalf("%s\nResolve(...): unexpected error %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nResolve(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// An image's own directories come before the host's PATH, for the command
// it runs and for the PATH its containers (and their shells) start with.
func TestImagePath(t *testing.T) {
	own := t.TempDir()
	if err := os.WriteFile(filepath.Join(own, "sh"), []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(own, "notes"), []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	table := ImageTable{"postgres": {Host: true, Path: []string{own}, Entrypoint: "postgres"}, "busybox": {Host: true}}
	hostCat, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ command, want string }{
		"the image's own program":                   {command: "sh", want: filepath.Join(own, "sh")},
		"a host program the image does not have":    {command: "cat", want: hostCat},
		"a file of the image that is not a program": {command: "notes", want: ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, _, err := table.Resolve("postgres:15", []string{c.command}, nil)
			if c.want == "" {
				if err == nil {
					t.Errorf("resolved %q to %q, want an error", c.command, got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("resolved %q to %q (%v), want %q", c.command, got, err, c.want)
			}
		})
	}
	usual := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if diff := cmp.Diff(own+":"+usual, table.PathOf("docker.io/library/postgres:15")); diff != "" {
		t.Errorf("PATH of a postgres container (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(usual, table.PathOf("busybox")); diff != "" {
		t.Errorf("PATH of a busybox container (-want +got):\n%s", diff)
	}
}
