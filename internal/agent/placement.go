package agent

import (
	"path/filepath"
	"strings"
)

// placement says where each backed-up path is restored, and back: in place
// (no target), under a target directory (TARGET/<path>), or, for --into
// with a snapshot of one path, that path's content at the into directory
// itself.
type placement struct {
	// target: every backed-up path p lands at target/p; empty restores in
	// place.
	target string
	// root and into: root's content lands at into (root/x at into/x).
	root, into string
}

// placementFor is where the options put a snapshot of roots. --into with
// one root puts its content at the directory; with several, each root
// keeps its path under it, as --target does.
func placementFor(o Options, roots []string) placement {
	switch {
	case o.Into != "" && len(roots) == 1:
		return placement{root: filepath.Clean(roots[0]), into: filepath.Clean(o.Into)}
	case o.Into != "":
		return placement{target: o.Into}
	}
	return placement{target: o.Target}
}

// at is where the backed-up path p is restored.
func (pl placement) at(p string) string {
	if pl.into != "" {
		if rel, ok := within(pl.root, p); ok {
			return filepath.Join(pl.into, rel)
		}
	}
	return restoredPath(pl.target, p)
}

// backedUp is the backed-up path of the restored file at p.
func (pl placement) backedUp(p string) string {
	if pl.into != "" {
		if rel, ok := within(pl.into, p); ok {
			return filepath.Join(pl.root, rel)
		}
		return p
	}
	if pl.target != "" {
		return "/" + strings.TrimPrefix(p, filepath.Clean(pl.target)+"/")
	}
	return p
}

// within is p relative to root, when p is root or lies under it.
func within(root, p string) (string, bool) {
	p = filepath.Clean(p)
	if p == root {
		return ".", true
	}
	prefix := strings.TrimSuffix(root, "/") + "/"
	if strings.HasPrefix(p, prefix) {
		return strings.TrimPrefix(p, prefix), true
	}
	return "", false
}

// restoredPath is where a backed-up path is restored under target (in
// place when target is empty).
func restoredPath(target, p string) string {
	if target == "" {
		return p
	}
	return filepath.Join(target, p)
}
