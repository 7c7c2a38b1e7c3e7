package processnode

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// runSandboxed runs script in a sandbox with the given mounts, through this
// test binary re-run as the sandbox initialiser, and returns its output.
func runSandboxed(t *testing.T, mounts []mount, script string) (string, error) {
	t.Helper()
	out, err := sandboxCommand(t, sandboxSpec{Mounts: mounts}, script).CombinedOutput()
	return string(out), err
}

// sandboxCommand returns the command that runs script in a sandbox made
// from spec, whose root, program and host name it fills in.
func sandboxCommand(t *testing.T, spec sandboxSpec, script string) *exec.Cmd {
	t.Helper()
	dir := t.TempDir()
	if spec.Enter == 0 {
		spec.Root = filepath.Join(dir, "root")
		if err := os.Mkdir(spec.Root, 0o755); err != nil {
			t.Fatal(err)
		}
		spec.Hostname = "pod-name"
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	spec.Path, spec.Args, spec.Env = sh, []string{"sh", "-c", script}, []string{"PATH=/usr/bin:/bin"}
	if spec.Dir == "" {
		spec.Dir = "/"
	}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(dir, "spec.json")
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = []string{envSandboxSpec + "=" + specPath}
	if spec.Enter == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS}
	}
	return cmd
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

func TestSandboxUser(t *testing.T) {
	vol := t.TempDir()
	if err := os.Chmod(vol, 0o777); err != nil {
		t.Fatal(err)
	}
	spec := sandboxSpec{
		Mounts: []mount{{Source: vol, Target: "/data"}},
		User:   &identity{UID: 999, GID: 998, Groups: []uint32{2000, 3000}},
	}
	out, err := sandboxCommand(t, spec, "id -u; id -g; id -G; echo x > /data/written").CombinedOutput()
	if err != nil {
		t.Fatalf("sandbox: %v\n%s", err, out)
	}
	if diff := cmp.Diff("999\n998\n998 2000 3000\n", string(out)); diff != "" {
		t.Errorf("the program's identity: -want +got:\n%s", diff)
	}
	fi, err := os.Stat(filepath.Join(vol, "written"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if diff := cmp.Diff([2]uint32{999, 998}, [2]uint32{st.Uid, st.Gid}); diff != "" {
		t.Errorf("the owner of a file the program wrote: -want +got:\n%s", diff)
	}
}

func TestSandboxEnter(t *testing.T) {
	vol := t.TempDir()
	if err := os.WriteFile(filepath.Join(vol, "only-here"), []byte("seen through the container's mount"), 0o644); err != nil {
		t.Fatal(err)
	}
	container := sandboxCommand(t, sandboxSpec{Mounts: []mount{{Source: vol, Target: "/stashplane-enter-test"}}}, "sleep 30")
	if err := container.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = container.Process.Kill(); _ = container.Wait() })
	// The container's mounts are in place once its program runs; until
	// then /proc/PID/root is still the initialiser's.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/stashplane-enter-test/only-here", container.Process.Pid)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	spec := sandboxSpec{Enter: container.Process.Pid, Dir: "/stashplane-enter-test", User: &identity{UID: 999, GID: 999}}
	out, err := sandboxCommand(t, spec, "cat only-here; echo; hostname; id -u").CombinedOutput()
	if err != nil {
		t.Fatalf("entering the container: %v\n%s", err, out)
	}
	if diff := cmp.Diff("seen through the container's mount\npod-name\n999\n", string(out)); diff != "" {
		t.Errorf("a program run beside the container: -want +got:\n%s", diff)
	}
	if _, err := os.Stat("/stashplane-enter-test"); err == nil {
		t.Error("the container's mount point shows on the host")
	}
}
