// Package devclustertest starts dev clusters for tests. It is imported by
// tests only.
package devclustertest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"log"

	"github.com/go-logr/stdr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/stashplane/stashplane/internal/devcluster"
)

// RepoRoot finds the repository's root from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/stashplane/stashplane\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (go.mod of github.com/stashplane/stashplane)")
		}
		dir = parent
	}
}

// BinDir is where `make tools` puts the binaries: $STASHPLANE_BIN_DIR, or
// bin/ at the repository root.
func BinDir() (string, error) {
	if d := os.Getenv("STASHPLANE_BIN_DIR"); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
}

// Start starts a dev cluster in a fresh directory and stops it when the
// test ends. It fails the test, never skips it, when the binaries are
// missing: run `make tools`.
func Start(t testing.TB, crds ...*apiextensionsv1.CustomResourceDefinition) *devcluster.Cluster {
	t.Helper()
	return StartWith(t, Options{}, crds...)
}

// Options are the cluster options a test may choose.
type Options struct {
	// PodNetwork is devcluster.PodNetworkHost or
	// devcluster.PodNetworkIsolated; empty takes $STASHPLANE_POD_NETWORK,
	// so that a whole suite can run on either, and else the cluster's
	// default.
	PodNetwork string
	// ImageMirrors are the cluster's devcluster.Options.ImageMirrors.
	ImageMirrors map[string]string
	// PullProjectImages leaves Stashplane's images (the agent's, the
	// PostgreSQL agent's, restic's) unmapped: the node pulls them through
	// ImageMirrors and runs what `make images` built, not bin/'s programs.
	PullProjectImages bool
}

// EnvPodNetwork names the variable that chooses the pod network of clusters
// whose test does not.
const EnvPodNetwork = "STASHPLANE_POD_NETWORK"

// StartWith starts a dev cluster with options, as Start does.
func StartWith(t testing.TB, opts Options, crds ...*apiextensionsv1.CustomResourceDefinition) *devcluster.Cluster {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	// A short directory keeps unix socket paths of the components short.
	dir, err := os.MkdirTemp("", "spdev-")
	if err != nil {
		t.Fatal(err)
	}
	restic := filepath.Join(bin, "restic")
	if _, err := os.Stat(restic); err != nil {
		restic = ""
	}
	stashplane := filepath.Join(bin, "stashplane")
	if _, err := os.Stat(stashplane); err != nil {
		stashplane = ""
	}
	if opts.PullProjectImages {
		stashplane, restic = "", ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := devcluster.Start(ctx, devcluster.Options{
		Dir: dir, BinDir: bin, StashplaneBinary: stashplane, ResticBinary: restic,
		CRDs: crds, Log: stdr.New(log.New(os.Stderr, t.Name()+" ", log.LstdFlags)),
		PodNetwork:   cmp.Or(opts.PodNetwork, os.Getenv(EnvPodNetwork)),
		ImageMirrors: opts.ImageMirrors,
	})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(fmt.Errorf("cannot start dev cluster: %w", err))
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("cannot stop dev cluster: %v", err)
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("dev cluster left files behind: %v", err)
		}
	})
	return c
}
