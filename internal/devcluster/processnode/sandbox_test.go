package processnode

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runSandboxed runs script in a sandbox with the given mounts, through this
// test binary re-run as the sandbox initialiser, and returns its output.
func runSandboxed(t *testing.T, mounts []mount, script string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(sandboxSpec{Root: root, Mounts: mounts, Path: sh, Args: []string{"sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/", Hostname: "pod-name"})
	if err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "spec.json")
	if err := os.WriteFile(spec, b, 0o600); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = []string{envSandboxSpec + "=" + spec}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSandboxMounts(t *testing.T) {
	vol := t.TempDir()
	if err := os.WriteFile(filepath.Join(vol, "file"), []byte("in-volume"), 0o644); err != nil {
		t.Fatal(err)
	}
	nested := t.TempDir()
	if err := os.WriteFile(filepath.Join(nested, "inner"), []byte("nested"), 0o644); err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(t.TempDir(), "single.conf")
	if err := os.WriteFile(single, []byte("one-file"), 0o644); err != nil {
		t.Fatal(err)
	}
	fileInTheWay := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(fileInTheWay, []byte("host file"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		reason  string
		mounts  []mount
		script  string
		want    string
		wantErr bool
		absent  []string
	}{
		"NewTopLevelPath": {
			reason: "A mountPath under / that the host lacks is made in the container's view only.",
			mounts: []mount{{Source: vol, Target: "/stashplane-sandbox-test"}},
			script: "cat /stashplane-sandbox-test/file",
			want:   "in-volume",
			absent: []string{"/stashplane-sandbox-test"},
		},
		"NestedVolumes": {
			reason: "A volume inside another volume's mountPath lands on top without touching the outer volume.",
			mounts: []mount{{Source: nested, Target: "/data/a/deeper"}, {Source: vol, Target: "/data"}},
			script: "cat /data/file /data/a/deeper/inner",
			want:   "in-volumenested",
			absent: []string{filepath.Join(vol, "a")},
		},
		"ThroughSymlink": {
			reason: "A mountPath under a symlinked directory (/var/run -> /run) resolves inside the root.",
			mounts: []mount{{Source: vol, Target: "/var/run/secrets/stashplane-test"}},
			script: "cat /var/run/secrets/stashplane-test/file",
			want:   "in-volume",
			absent: []string{"/run/secrets/stashplane-test", "/var/run/secrets/stashplane-test"},
		},
		"SingleFile": {
			reason: "A file can be mounted at a file path, as subPath mounts do.",
			mounts: []mount{{Source: single, Target: "/etc/stashplane-test.conf"}},
			script: "cat /etc/stashplane-test.conf",
			want:   "one-file",
			absent: []string{"/etc/stashplane-test.conf"},
		},
		"Hostname": {
			reason: "The container sees its pod's name as host name.",
			script: "hostname",
			want:   "pod-name\n",
		},
		"FileInTheWay": {
			reason: "A directory volume mounts where the host has a file, in the container's view only.",
			mounts: []mount{{Source: vol, Target: fileInTheWay}},
			script: "cat " + fileInTheWay + "/file",
			want:   "in-volume",
		},
		"ReadOnly": {
			reason:  "A read-only mount refuses writes.",
			mounts:  []mount{{Source: vol, Target: "/ro", ReadOnly: true}},
			script:  "echo x > /ro/new",
			wantErr: true,
			absent:  []string{filepath.Join(vol, "new")},
		},
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(fileInTheWay); err != nil || string(b) != "host file" {
			t.Errorf("the host file under a mount point changed: %q, %v", b, err)
		}
	})
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := runSandboxed(t, tc.mounts, tc.script)
			if (err != nil) != tc.wantErr {
				t.Fatalf("%s\nsandbox: error %v, want error %v; output:\n%s", tc.reason, err, tc.wantErr, got)
			}
			if !tc.wantErr {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s\nsandbox output: -want +got:\n%s", tc.reason, diff)
				}
			}
			for _, p := range tc.absent {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s\n%q exists on the host after the sandbox ran", tc.reason, p)
				}
			}
		})
	}
}
