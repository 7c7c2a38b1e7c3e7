//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/stdr"
	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stashplane/stashplane/apis"
	"github.com/stashplane/stashplane/internal/devcluster"
	"github.com/stashplane/stashplane/internal/devcluster/crossplane"
	"github.com/stashplane/stashplane/internal/image"
	"github.com/stashplane/stashplane/internal/provider"
	"github.com/stashplane/stashplane/internal/version"
	stashpkg "github.com/stashplane/stashplane/package"
)

const pidFile = "devcluster.pid"

func devCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "dev", Short: "Run the dev cluster: a real control plane with a process node, on this machine"}
	cmd.AddCommand(devUpCommand(), devDownCommand())
	cmd.AddCommand(probeCommand())
	return cmd
}

func devUpCommand() *cobra.Command {
	var dir, binDir, providerMode, podNetwork, images string
	var withCrossplane bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the dev cluster and run it until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch providerMode {
			case providerInProcess, providerProcess, providerNone:
			default:
				return fmt.Errorf("--provider must be %s, %s or %s, not %q", providerInProcess, providerProcess, providerNone, providerMode)
			}
			if withCrossplane {
				if images == "" {
					return errors.New("--crossplane installs Stashplane's packages from --images: run `make images` and pass --images bin/images/oci")
				}
				if cmd.Flags().Changed("pod-network") && podNetwork != devcluster.PodNetworkIsolated {
					return fmt.Errorf("--crossplane needs --pod-network %s: core reaches the Function through a Service and the cluster's DNS", devcluster.PodNetworkIsolated)
				}
				if cmd.Flags().Changed("provider") && providerMode != providerNone {
					return fmt.Errorf("--crossplane runs the provider as Crossplane installs it: --provider %s cannot go with it", providerMode)
				}
				podNetwork, providerMode = devcluster.PodNetworkIsolated, providerNone
			}
			return devUp(cmd.Context(), dir, binDir, providerMode, podNetwork, images, withCrossplane)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the cluster's state and kubeconfig (required)")
	cmd.Flags().StringVar(&binDir, "bin-dir", "", "directory holding etcd and the Kubernetes binaries (default: this binary's directory)")
	cmd.Flags().StringVar(&providerMode, "provider", providerInProcess,
		"how Stashplane's provider runs: in-process (a part of this command), process (`stashplane provider` as a process of its own, logging to DIR/logs/provider.log) or none")
	cmd.Flags().StringVar(&podNetwork, "pod-network", devcluster.PodNetworkHost, "pods' network: host (each pod a loopback address) or isolated (a network namespace per pod, Services and DNS; needs root)")
	cmd.Flags().StringVar(&images, "images", "",
		"an OCI image layout (`make images` writes bin/images/oci) whose Stashplane images and packages a registry on 127.0.0.1 serves while the cluster runs; pods still run host programs for them")
	cmd.Flags().BoolVar(&withCrossplane, "crossplane", false,
		"install Crossplane core and, through it, Stashplane's Configuration from the --images registry, with its Provider and Function, as an operator installs them (isolated pod network, so root)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

// serveImages starts a registry on loopback holding the Stashplane images
// and packages of the layout's newest version in dir, and returns it with
// what it holds and the version.
func serveImages(ctx context.Context, dir string) (*image.Registry, []string, string, error) {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		return nil, nil, "", fmt.Errorf("cannot serve images: %q is no OCI image layout (run `make images`): %w", dir, err)
	}
	l, err := image.OpenLayout(dir)
	if err != nil {
		return nil, nil, "", err
	}
	// The layout keeps every version `make images` built; the registry,
	// which holds what it serves in memory, gets the newest.
	tag, err := l.Newest(version.Registry + image.ConfigurationPackage)
	if err != nil {
		return nil, nil, "", err
	}
	r, err := image.ServeRegistry(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	loaded, err := r.Load(l, version.Registry, tag)
	if err != nil {
		_ = r.Stop()
		return nil, nil, "", err
	}
	if len(loaded) == 0 {
		_ = r.Stop()
		return nil, nil, "", fmt.Errorf("cannot serve images: %q holds no image named below %s", dir, version.Registry)
	}
	return r, loaded, tag, nil
}

// How `stashplane dev up` runs the provider.
const (
	providerInProcess = "in-process"
	providerProcess   = "process"
	providerNone      = "none"
)

func devUp(ctx context.Context, dir, binDir, providerMode, podNetwork, images string, withCrossplane bool) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find this binary: %w", err)
	}
	if binDir == "" {
		binDir = filepath.Dir(self)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot make %q: %w", dir, err)
	}
	pidPath := filepath.Join(dir, pidFile)
	if pid, err := readPID(pidPath); err == nil && alive(pid) {
		return fmt.Errorf("a dev cluster already runs in %q (pid %d); stop it with `stashplane dev down --dir %s`", dir, pid, dir)
	}
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("cannot write pid file: %w", err)
	}
	defer os.Remove(pidPath)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := stdr.New(nil).WithName("dev")
	ctrl.SetLogger(log)
	restic := filepath.Join(binDir, "restic")
	if _, err := os.Stat(restic); err != nil {
		restic = ""
	}
	crds, err := stashpkg.CRDs()
	if err != nil {
		return err
	}
	var mirrors map[string]string
	var reg *image.Registry
	var served string
	if images != "" {
		r, loaded, tag, err := serveImages(ctx, images)
		if err != nil {
			return err
		}
		defer func() { _ = r.Stop() }()
		fmt.Printf("A registry on %s serves %d images and packages, e.g. %s.\n", r.Addr, len(loaded), loaded[0])
		// Images the node does not map to host programs (the runtime
		// images the packages embed, and core's) are pulled from it.
		mirrors = crossplane.Mirrors(r.Addr)
		reg, served = r, tag
	}
	stashplaneBinary := self
	if withCrossplane {
		// Crossplane installs the provider's CRDs and runs the provider,
		// which applies its built-in addons; what ships runs: the agent's
		// images too are pulled from the registry, not mapped to this
		// binary and bin/restic.
		crds, stashplaneBinary, restic = nil, "", ""
		if err := crossplane.PushCore(ctx, reg.Addr, binDir, filepath.Join(filepath.Dir(images), "layers")); err != nil {
			return err
		}
	}
	fmt.Println("Starting the dev cluster in", dir, "...")
	c, err := devcluster.Start(ctx, devcluster.Options{
		Dir: dir, BinDir: binDir, StashplaneBinary: stashplaneBinary, ResticBinary: restic,
		CRDs: crds, Log: log, PodNetwork: podNetwork, ImageMirrors: mirrors,
	})
	if err != nil {
		return err
	}
	if withCrossplane {
		if err := installCrossplane(ctx, c, reg, images, served); err != nil {
			_ = c.Stop()
			return err
		}
	} else if err := installBuiltins(ctx, c); err != nil {
		_ = c.Stop()
		return err
	}
	providerDone := make(chan error, 1)
	var proc *devcluster.ProviderProcess
	switch providerMode {
	case providerInProcess:
		go func() {
			providerDone <- provider.Run(ctx, c.Config(), provider.Options{
				Log: log.WithName("provider"), MetricsAddress: "0", HealthAddress: "0", PollInterval: 30 * time.Second,
			})
		}()
	case providerProcess:
		p, err := c.StartProvider(self, "--poll-interval", "30s")
		if err != nil {
			_ = c.Stop()
			return err
		}
		defer p.Stop()
		fmt.Printf("The provider runs as process %d.\n", p.Pid())
		proc = p
	}
	if withCrossplane {
		providerMode = "installed by Crossplane"
	}
	fmt.Printf(`The dev cluster is up, with Stashplane's provider (%s) beside it.

  export KUBECONFIG=%s
  kubectl get nodes

Pods run on the node %q as local processes; component logs are in %s.
Stop it with Ctrl-C or: stashplane dev down --dir %s
`, providerMode, c.KubeconfigPath(), devcluster.NodeName, filepath.Join(c.Dir(), "logs"), dir)
	select {
	case <-ctx.Done():
	case err := <-providerDone:
		fmt.Fprintln(os.Stderr, "the provider stopped:", err)
	}
	stop()
	fmt.Println("Stopping the dev cluster ...")
	if proc != nil {
		proc.Stop()
	}
	return stopCluster(c, log)
}

// installCrossplane installs core and, through it, the Configuration
// package of the version the registry serves, waiting up to ten minutes
// for it, its Provider and its Function to be Installed and Healthy.
func installCrossplane(ctx context.Context, c *devcluster.Cluster, reg *image.Registry, images, tag string) error {
	if tag == "" {
		return fmt.Errorf("cannot install with Crossplane: %q holds no %s package (run `make images`)", images, image.ConfigurationPackage)
	}
	cfg := version.Registry + image.ConfigurationPackage + ":" + tag
	fmt.Println("Installing Crossplane core, then", cfg, "...")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return crossplane.Install(ctx, c.Config(), crossplane.Options{
		Registry: reg.Addr, Configuration: cfg, ProviderRBAC: stashpkg.ProviderRBAC(), Progress: os.Stdout,
	})
}

func stopCluster(c *devcluster.Cluster, log logr.Logger) error {
	if err := c.Stop(); err != nil {
		return fmt.Errorf("cannot stop the dev cluster cleanly: %w", err)
	}
	log.Info("dev cluster stopped")
	return nil
}

func devDownCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the dev cluster running in a directory",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			pid, err := readPID(filepath.Join(dir, pidFile))
			if errors.Is(err, os.ErrNotExist) || err == nil && !alive(pid) {
				fmt.Println("No dev cluster runs in", dir)
				return nil
			}
			if err != nil {
				return err
			}
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
				return fmt.Errorf("cannot signal the dev cluster (pid %d): %w", pid, err)
			}
			deadline := time.Now().Add(2 * time.Minute)
			for alive(pid) {
				if time.Now().After(deadline) {
					return fmt.Errorf("the dev cluster (pid %d) did not stop within 2m", pid)
				}
				time.Sleep(100 * time.Millisecond)
			}
			fmt.Println("The dev cluster in", dir, "has stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory the dev cluster was started with (required)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("cannot parse pid file %q: %w", path, err)
	}
	return pid, nil
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// installBuiltins applies the built-in addons to a fresh dev cluster.
func installBuiltins(ctx context.Context, c *devcluster.Cluster) error {
	s, err := apis.Scheme()
	if err != nil {
		return err
	}
	kube, err := client.New(c.Config(), client.Options{Scheme: s})
	if err != nil {
		return fmt.Errorf("cannot make client: %w", err)
	}
	return provider.InstallBuiltins(ctx, kube)
}
