package processnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A container runs in a private mount namespace whose root is a mirror of
// the host's root: every top-level entry of / is bind-mounted into a fresh
// tmpfs, and the container's volumes are bind-mounted at their mountPath on
// top. A mountPath whose parent does not exist on the host is made inside
// the mirror (a directory is mirrored into its own tmpfs before anything is
// created in it), so the host's file system never gains a mount point and
// nothing the container mounts is visible outside it.
//
// The process node starts the container through its own binary (see
// MaybeRunSandbox) in a new mount namespace; that child prepares the root,
// chroots into it and execs the container's program.

// envSandboxSpec names the file holding a sandboxSpec; its presence makes a
// process a sandbox initialiser rather than whatever the binary normally is.
const envSandboxSpec = "STASHPLANE_PROCESSNODE_SANDBOX"

// sandboxSpec is what the sandbox initialiser needs to start one container.
type sandboxSpec struct {
	Root   string   `json:"root"`
	Mounts []mount  `json:"mounts"`
	Path   string   `json:"path"`
	Args   []string `json:"args"`
	Env    []string `json:"env"`
	Dir    string   `json:"dir"`
	// Hostname is the container's host name: its pod's name.
	Hostname string `json:"hostname"`
	// User is who the program runs as; nil keeps root.
	User *identity `json:"user,omitempty"`
	// Enter, when not zero, is the pid of a running container whose root,
	// network and host name the program joins (kubectl exec) instead of a
	// root being built from Root and Mounts.
	Enter int `json:"enter,omitempty"`
	// NetNS is the file of the pod's network namespace, which the
	// container joins; empty keeps the host's network.
	NetNS string `json:"netns,omitempty"`
	// Image, when set, is the unpacked root file system of the
	// container's image: the root is an overlay of it, Upper and Work
	// holding the container's writes, instead of a mirror of the host's.
	Image string `json:"image,omitempty"`
	Upper string `json:"upper,omitempty"`
	Work  string `json:"work,omitempty"`
}

// identity is the user, group and supplementary groups a program runs as,
// from the pod's and container's securityContext.
type identity struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// mount is one bind mount of a host path into the container.
type mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

// MaybeRunSandbox turns the current process into a container's sandbox
// initialiser when the process node started it as one; otherwise it returns
// at once. Binaries that host a process node (the stashplane CLI, test
// binaries) call it first thing in main or TestMain.
func MaybeRunSandbox() {
	path := os.Getenv(envSandboxSpec)
	if path == "" {
		return
	}
	err := runSandbox(path)
	// runSandbox only returns on failure: on success it has exec'd.
	fmt.Fprintf(os.Stderr, "process node: cannot start container: %v\n", err)
	os.Exit(sandboxSetupFailed)
}

// sandboxSetupFailed is the exit code of a sandbox that could not start its
// container; the process node reports it with reason ContainerCannotRun.
const sandboxSetupFailed = 128

func runSandbox(specPath string) error {
	b, err := os.ReadFile(specPath)
	if err != nil {
		return fmt.Errorf("cannot read sandbox spec: %w", err)
	}
	var s sandboxSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("cannot parse sandbox spec: %w", err)
	}
	if s.Enter != 0 {
		return enterContainer(s)
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("cannot set host name: %w", err)
		}
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("cannot make mounts private: %w", err)
	}
	if err := enterNetwork(s.NetNS); err != nil {
		return err
	}
	m := &mirror{root: s.Root, sources: map[string]string{}}
	setup := m.init
	if s.Image != "" {
		setup = func() error { return m.initImage(s.Image, s.Upper, s.Work) }
	}
	if err := setup(); err != nil {
		return err
	}
	// Parents before children, so a volume nested in another lands on top.
	sort.SliceStable(s.Mounts, func(i, j int) bool {
		return strings.Count(filepath.Clean(s.Mounts[i].Target), "/") < strings.Count(filepath.Clean(s.Mounts[j].Target), "/")
	})
	for _, mt := range s.Mounts {
		if err := m.bind(mt); err != nil {
			return err
		}
	}
	if err := unix.Chroot(s.Root); err != nil {
		return fmt.Errorf("cannot enter container root: %w", err)
	}
	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot make working directory %q: %w", dir, err)
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("cannot enter working directory %q: %w", dir, err)
	}
	return execAs(s)
}

// execAs drops to the spec's identity and replaces this process with the
// container's program.
func execAs(s sandboxSpec) error {
	if u := s.User; u != nil {
		groups := make([]int, 0, len(u.Groups))
		for _, g := range u.Groups {
			groups = append(groups, int(g))
		}
		// Groups first: once the user is not root it may not change them.
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("cannot set supplementary groups: %w", err)
		}
		if err := syscall.Setgid(int(u.GID)); err != nil {
			return fmt.Errorf("cannot set group %d: %w", u.GID, err)
		}
		if err := syscall.Setuid(int(u.UID)); err != nil {
			return fmt.Errorf("cannot set user %d: %w", u.UID, err)
		}
	}
	os.Unsetenv(envSandboxSpec)
	return syscall.Exec(s.Path, s.Args, s.Env)
}

// enterContainer runs a program beside a running container: in its network
// and UTS namespaces and under its root, which /proc/PID/root shows with
// every mount of the container's own mount namespace. Namespaces are joined
// by the thread that then execs, so the program starts in them.
func enterContainer(s sandboxSpec) error {
	runtime.LockOSThread()
	proc := fmt.Sprintf("/proc/%d", s.Enter)
	for _, ns := range []struct {
		name string
		flag int
	}{{"net", unix.CLONE_NEWNET}, {"uts", unix.CLONE_NEWUTS}} {
		fd, err := unix.Open(filepath.Join(proc, "ns", ns.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("cannot open the container's %s namespace: %w", ns.name, err)
		}
		err = unix.Setns(fd, ns.flag)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("cannot join the container's %s namespace: %w", ns.name, err)
		}
	}
	if err := unix.Chroot(filepath.Join(proc, "root")); err != nil {
		return fmt.Errorf("cannot enter the container's root: %w", err)
	}
	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("cannot enter working directory %q: %w", dir, err)
	}
	return execAs(s)
}

// mirror builds the container's root.
type mirror struct {
	root string
	// sources maps a path inside the root (absolute, as the container sees
	// it) to the host path mounted there.
	sources map[string]string
	// private holds the paths inside the root that are the container's own
	// (a tmpfs or made in one), where creating entries touches no host file.
	private map[string]bool
	// volumes are the volumes bound so far, by target: a directory made
	// private later binds them again, not the host entries they cover.
	volumes map[string]mount
	// overlay says the root is an image's overlay, all of it private.
	overlay bool
}

func (m *mirror) init() error {
	m.private = map[string]bool{"/": true}
	m.volumes = map[string]mount{}
	if err := unix.Mount("tmpfs", m.root, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("cannot mount container root: %w", err)
	}
	m.sources["/"] = "/"
	return m.populate("/", "/")
}

// initImage makes the root an overlay of an image's root file system,
// the container's writes going to upper, with the host's /proc, /sys and
// /dev on top as the mirror has them. All of it is the container's own:
// entries are made in it without a private tmpfs.
func (m *mirror) initImage(lower, upper, work string) error {
	m.overlay = true
	m.private = map[string]bool{"/": true}
	m.volumes = map[string]mount{}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", m.root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("cannot mount the image's root file system: %w", err)
	}
	m.sources["/"] = lower
	for _, d := range []string{"/proc", "/sys", "/dev"} {
		if err := m.ensure(d, true); err != nil {
			return err
		}
		if err := unix.Mount(d, filepath.Join(m.root, d), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("cannot mount %s in the container: %w", d, err)
		}
		m.sources[d] = d
	}
	tmp := filepath.Join(m.root, "tmp")
	if _, err := os.Lstat(tmp); err == nil {
		return nil
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("cannot make /tmp in the container: %w", err)
	}
	return os.Chmod(tmp, 0o1777)
}

// populate fills the private directory at path (inside the root) with one
// entry per entry of the host directory src, each bind-mounted from it.
func (m *mirror) populate(path, src string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("cannot read %q: %w", src, err)
	}
	for _, e := range entries {
		inner := filepath.Join(path, e.Name())
		from := filepath.Join(src, e.Name())
		if _, ok := m.volumes[inner]; ok {
			// A volume is bound there again by makePrivate.
			continue
		}
		if filepath.Clean(from) == filepath.Clean(m.root) {
			continue
		}
		if err := m.placeholder(inner, from); err != nil {
			return err
		}
	}
	return nil
}

// placeholder makes inner mirror the host entry from: a symlink is copied,
// a directory or file is bind-mounted.
func (m *mirror) placeholder(inner, from string) error {
	fi, err := os.Lstat(from)
	if errors.Is(err, fs.ErrNotExist) {
		// Gone since the directory was listed (a busy /tmp): nothing to
		// mirror.
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot stat %q: %w", from, err)
	}
	dst := filepath.Join(m.root, inner)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(from)
		if err != nil {
			return fmt.Errorf("cannot read link %q: %w", from, err)
		}
		return os.Symlink(target, dst)
	case fi.IsDir():
		if err := os.Mkdir(dst, fi.Mode().Perm()); err != nil {
			return fmt.Errorf("cannot make %q: %w", inner, err)
		}
	default:
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("cannot make %q: %w", inner, err)
		}
		f.Close()
	}
	if err := unix.Mount(from, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		// Sockets, devices and the like that cannot be bound are left as
		// empty placeholders; the container does not need them.
		return nil
	}
	m.sources[inner] = from
	return nil
}

// source returns the host path that a path inside the root shows.
func (m *mirror) source(inner string) string {
	for p := inner; ; p = filepath.Dir(p) {
		if src, ok := m.sources[p]; ok {
			rel, _ := filepath.Rel(p, inner)
			return filepath.Join(src, rel)
		}
		if p == "/" {
			return inner
		}
	}
}

// resolve follows symlinks of path inside the root, component by component,
// without ever leaving the root. Components that do not exist are kept.
func (m *mirror) resolve(path string) (string, error) {
	parts := strings.Split(strings.Trim(filepath.Clean(path), "/"), "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		if parts[0] == "" {
			parts = parts[1:]
			continue
		}
		next := filepath.Join(cur, parts[0])
		fi, err := os.Lstat(filepath.Join(m.root, next))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			cur, parts = next, parts[1:]
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("too many links resolving %q", path)
		}
		target, err := os.Readlink(filepath.Join(m.root, next))
		if err != nil {
			return "", fmt.Errorf("cannot read link %q: %w", next, err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(cur, target)
		}
		parts = append(strings.Split(strings.Trim(filepath.Clean(target), "/"), "/"), parts[1:]...)
		cur = "/"
	}
	return cur, nil
}

// ensure makes path (resolved, inside the root) exist as a directory or an
// empty file without writing to any host directory. A host entry of the
// other type in the way (a file where a directory is to be mounted) is
// replaced in the container's view only.
func (m *mirror) ensure(path string, dir bool) error {
	full := filepath.Join(m.root, path)
	fi, err := os.Stat(full)
	switch {
	case err == nil && fi.IsDir() == dir:
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot stat %q: %w", path, err)
	}
	parent := filepath.Dir(path)
	if err := m.ensure(parent, true); err != nil {
		return err
	}
	if err := m.makePrivate(parent); err != nil {
		return err
	}
	if err == nil {
		// The wrong type: drop the mirrored entry and make the right one.
		_ = unix.Unmount(full, unix.MNT_DETACH)
		if err := os.Remove(full); err != nil {
			return fmt.Errorf("cannot replace %q: %w", path, err)
		}
		delete(m.sources, path)
	}
	if dir {
		if err := os.Mkdir(full, 0o755); err != nil {
			return fmt.Errorf("cannot make %q: %w", path, err)
		}
		m.private[path] = true
		return nil
	}
	f, err := os.OpenFile(full, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("cannot make %q: %w", path, err)
	}
	return f.Close()
}

// makePrivate covers a directory that shows a host directory with a tmpfs
// that mirrors its entries, so entries can be made in it without touching
// the host.
//
// The tmpfs covers whatever was mounted below dir, so the volumes bound
// there before are bound again, shallowest first.
func (m *mirror) makePrivate(dir string) error {
	if m.private[dir] || m.overlay {
		return nil
	}
	src := m.source(dir)
	if err := unix.Mount("tmpfs", filepath.Join(m.root, dir), "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("cannot mirror %q: %w", dir, err)
	}
	m.private[dir] = true
	if err := m.populate(dir, src); err != nil {
		return err
	}
	var below []string
	for t := range m.volumes {
		if strings.HasPrefix(t, strings.TrimSuffix(dir, "/")+"/") {
			below = append(below, t)
		}
	}
	sort.Slice(below, func(i, j int) bool { return strings.Count(below[i], "/") < strings.Count(below[j], "/") })
	for _, t := range below {
		if err := m.bind(m.volumes[t]); err != nil {
			return err
		}
	}
	return nil
}

// bind mounts one volume at its target.
func (m *mirror) bind(mt mount) error {
	fi, err := os.Stat(mt.Source)
	if err != nil {
		return fmt.Errorf("cannot stat volume source for %q: %w", mt.Target, err)
	}
	target, err := m.resolve(mt.Target)
	if err != nil {
		return err
	}
	if err := m.ensure(target, fi.IsDir()); err != nil {
		return err
	}
	dst := filepath.Join(m.root, target)
	if err := unix.Mount(mt.Source, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("cannot mount volume at %q: %w", mt.Target, err)
	}
	if mt.ReadOnly {
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("cannot make volume at %q read-only: %w", mt.Target, err)
		}
	}
	m.sources[target] = mt.Source
	m.volumes[target] = mt
	delete(m.private, target)
	return nil
}

// A binary that links the process node may be re-run by it as a sandbox
// initialiser; take over before anything else of the program runs.
func init() { MaybeRunSandbox() }
