package processnode

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// errRunAsRoot is returned for a container that asks to run as non-root
// while nothing says which other user to run as. The process node's images
// run as root unless the securityContext names a user, so such a container
// cannot start; a kubelet refuses it the same way.
var errRunAsRoot = errors.New("container has runAsNonRoot and image will run as root")

// identityOf is who a container's program runs as: the securityContext's
// runAsUser and runAsGroup (the container's over the pod's), the pod's
// supplementalGroups and its fsGroup, which a kubelet also adds to every
// container's groups. Without runAsGroup the group is the user's primary
// group on this machine, or 0. It returns nil for root without extra groups.
func identityOf(pod *corev1.Pod, c corev1.Container) (*identity, error) {
	psc := ptr.Deref(pod.Spec.SecurityContext, corev1.PodSecurityContext{})
	csc := ptr.Deref(c.SecurityContext, corev1.SecurityContext{})
	uid := ptr.Deref(csc.RunAsUser, ptr.Deref(psc.RunAsUser, 0))
	if uid == 0 && ptr.Deref(csc.RunAsNonRoot, ptr.Deref(psc.RunAsNonRoot, false)) {
		return nil, fmt.Errorf("%w (pod: %q, container: %s)", errRunAsRoot, pod.Namespace+"/"+pod.Name, c.Name)
	}
	if uid < 0 || uid > 1<<31 {
		return nil, fmt.Errorf("runAsUser %d is out of range", uid)
	}
	gid := csc.RunAsGroup
	if gid == nil {
		gid = psc.RunAsGroup
	}
	if gid == nil {
		gid = ptr.To(primaryGroup(uid))
	}
	id := &identity{UID: uint32(uid), GID: uint32(*gid)}
	seen := map[int64]bool{}
	for _, g := range append(append([]int64{}, psc.SupplementalGroups...), ptr.Deref(psc.FSGroup, -1)) {
		if g >= 0 && !seen[g] {
			seen[g] = true
			id.Groups = append(id.Groups, uint32(g))
		}
	}
	if id.UID == 0 && id.GID == 0 && len(id.Groups) == 0 {
		return nil, nil
	}
	return id, nil
}

// fsUserOf is the user a kubelet gives service account token files to: the
// runAsUser every container of the pod (init containers too) runs as, when
// each names one and they agree; nil otherwise.
func fsUserOf(pod *corev1.Pod) *int64 {
	psc := ptr.Deref(pod.Spec.SecurityContext, corev1.PodSecurityContext{})
	var user *int64
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		u := psc.RunAsUser
		if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			u = c.SecurityContext.RunAsUser
		}
		if u == nil || user != nil && *user != *u {
			return nil
		}
		user = u
	}
	return user
}

// primaryGroup is a user's group in this machine's /etc/passwd, which is the
// container's too (its root mirrors the host's), or 0 for an unknown user.
func primaryGroup(uid int64) int64 {
	u, err := user.LookupId(strconv.FormatInt(uid, 10))
	if err != nil {
		return 0
	}
	g, err := strconv.ParseInt(u.Gid, 10, 64)
	if err != nil {
		return 0
	}
	return g
}

// homeOf is the HOME a container gets: the user's home in /etc/passwd, "/"
// for an unknown user.
func homeOf(id *identity) string {
	if id == nil || id.UID == 0 {
		return "/root"
	}
	if u, err := user.LookupId(strconv.FormatUint(uint64(id.UID), 10)); err == nil && u.HomeDir != "" {
		return u.HomeDir
	}
	return "/"
}

// applyFSGroup gives a volume to the pod's fsGroup as a kubelet does: every
// entry's group becomes gid, files become group-readable (and writable
// unless the volume is read-only), directories group-accessible with the
// set-group-ID bit so that new files inherit the group. Symbolic links keep
// their targets' permissions.
func applyFSGroup(dir string, gid int64, readOnly bool) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(path, -1, int(gid)); err != nil {
			return fmt.Errorf("cannot give %q to group %d: %w", path, gid, err)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode()
		add := fs.FileMode(0o440)
		if !readOnly {
			add = 0o660
		}
		if d.IsDir() {
			add |= 0o110 | fs.ModeSetgid
		}
		if mode&add == add {
			return nil
		}
		if err := os.Chmod(path, mode.Perm()|mode&(fs.ModeSetgid|fs.ModeSetuid|fs.ModeSticky)|add); err != nil {
			return fmt.Errorf("cannot open %q to group %d: %w", path, gid, err)
		}
		return nil
	})
}
