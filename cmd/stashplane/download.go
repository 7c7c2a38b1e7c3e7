package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/agent"
	"github.com/stashplane/stashplane/internal/hook"
	"github.com/stashplane/stashplane/internal/image"
	"github.com/stashplane/stashplane/internal/version"
)

// downloadAgentCommand runs in the download Job's container: with --hold
// it only waits for `stashplane download` to exec it again with --stream,
// which writes the component's tar archive to standard output.
func downloadAgentCommand() *cobra.Command {
	var hold time.Duration
	var stream bool
	cmd := agentSubcommand("download-agent", agent.KindDownload, "Write a Snapshot component's files to standard output as a tar archive (runs inside download Jobs)",
		func(ctx context.Context, r *agent.Runner) error {
			if stream {
				return r.Download(ctx, os.Stdout)
			}
			select {
			case <-ctx.Done():
			case <-time.After(hold):
			}
			return nil
		})
	cmd.Flags().DurationVar(&hold, "hold", 15*time.Minute, "how long the download Job's pod waits to be exec'd")
	cmd.Flags().BoolVar(&stream, "stream", false, "write the archive to standard output now")
	cmd.Hidden = true
	return cmd
}

// DownloadResult is what `stashplane download` prints.
type DownloadResult struct {
	Snapshot  string `json:"snapshot"`
	Namespace string `json:"namespace"`
	Component string `json:"component"`
	Directory string `json:"directory"`
	Files     int    `json:"files"`
	Bytes     int64  `json:"bytes"`
	Skipped   int    `json:"skipped,omitempty"`
	Duration  string `json:"duration"`
}

func downloadCommand() *cobra.Command {
	var namespace, output, img, to, component string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "download SNAPSHOT --to DIR",
		Short: "Copy a Snapshot's files to this machine, through a Job in the cluster",
		Long: "Download starts a Job in the Snapshot's namespace that holds the storage's credentials and the repository's " +
			"password, as the Repository's prune Job does, and streams the files of one component of the Snapshot from it " +
			"(restic dump, as a tar archive over exec) into DIR, which must be empty or new. This machine never holds the " +
			"credentials or the password. Only the restic snapshot the Snapshot recorded is read. Progress goes to " +
			"standard error.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if to == "" {
				return errors.New("cannot download: --to DIR is required")
			}
			c, namespace, err := clientIn(namespace)
			if err != nil {
				return err
			}
			cfg, cs, err := clientset()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			d := &downloader{kube: c, exec: func(ctx context.Context, ns, pod, container string, command []string, stdout, stderr io.Writer) error {
				return hook.Exec(ctx, cfg, cs, ns, pod, container, command, stdout, stderr)
			}, progress: cmd.ErrOrStderr(), image: img, hold: timeout}
			res, err := d.download(ctx, namespace, args[0], component, to)
			if err != nil {
				return err
			}
			return writeDownload(cmd.OutOrStdout(), res, output)
		},
	}
	namespaceFlag(cmd, &namespace, "snapshot")
	outputFlag(cmd, &output)
	cmd.Flags().StringVar(&to, "to", "", "the directory the files are written to (empty or new)")
	cmd.Flags().StringVar(&component, "component", "", "the component to download (default: the Snapshot's only one)")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Hour, "how long the download may take")
	cmd.Flags().StringVar(&img, "image", version.Image(), "the stashplane image the download Job runs")
	return cmd
}

type execFunc func(ctx context.Context, ns, pod, container string, command []string, stdout, stderr io.Writer) error

type downloader struct {
	kube     client.Client
	exec     execFunc
	progress io.Writer
	image    string
	hold     time.Duration
}

func (d *downloader) download(ctx context.Context, ns, name, component, to string) (*DownloadResult, error) {
	if err := emptyDir(to); err != nil {
		return nil, err
	}
	snap := &storagev1alpha1.Snapshot{}
	if err := d.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, snap); err != nil {
		return nil, fmt.Errorf("cannot get snapshot %s/%s: %w", ns, name, err)
	}
	if component == "" {
		names := make([]string, 0, len(snap.Status.Components))
		for n := range snap.Status.Components {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) != 1 {
			return nil, fmt.Errorf("cannot download snapshot %q: it has components %s; name one with --component", name, strings.Join(names, ", "))
		}
		component = names[0]
	}
	if _, err := agent.RecordedResticSnapshot(snap, component); err != nil {
		return nil, fmt.Errorf("cannot download: %w", err)
	}
	repo := &storagev1alpha1.Repository{}
	if err := d.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: snap.Spec.Repository}, repo); err != nil {
		return nil, fmt.Errorf("cannot get repository %q of snapshot %q: %w", snap.Spec.Repository, name, err)
	}
	st := &storagev1alpha1.BackupStorage{}
	if err := d.kube.Get(ctx, repo.StorageKey(), st); err != nil {
		return nil, fmt.Errorf("cannot get the backupstorage of repository %q: %w", repo.Name, err)
	}
	job, err := plan.DownloadJob(repo, st, snap, component, d.image, d.hold)
	if err != nil {
		return nil, err
	}
	if err := removeFinishedJob(ctx, d.kube, job); err != nil {
		return nil, err
	}
	if err := d.kube.Create(ctx, job); err != nil {
		return nil, fmt.Errorf("cannot create download job %q: %w", job.Name, err)
	}
	// The Job goes whatever happens: its pod only waits.
	defer func() {
		_ = d.kube.Delete(context.WithoutCancel(ctx), job, client.PropagationPolicy(metav1.DeletePropagationBackground))
	}()
	start := time.Now()
	fmt.Fprintf(d.progress, "waiting for download job %s/%s to run\n", job.Namespace, job.Name)
	pod, err := d.runningPod(ctx, job)
	if err != nil {
		return nil, err
	}
	total := componentSize(snap, component)
	var received atomic.Int64
	done := make(chan struct{})
	go d.report(done, &received, total, start)
	pr, pw := io.Pipe()
	stderr := &hook.Capped{Max: 4096}
	execErr := make(chan error, 1)
	go func() {
		err := d.exec(ctx, ns, pod, "download", plan.DownloadCommand(job, image.StashplanePath), &countingWriter{w: pw, n: &received}, stderr)
		pw.CloseWithError(err)
		execErr <- err
	}()
	res, exErr := extractTar(pr, to)
	_ = pr.CloseWithError(io.ErrClosedPipe)
	err = <-execErr
	close(done)
	if err != nil {
		return nil, fmt.Errorf("cannot download component %q of snapshot %q: %v: %s", component, name, err, strings.TrimSpace(stderr.String()))
	}
	if exErr != nil {
		return nil, fmt.Errorf("cannot write the download into %s: %w", to, exErr)
	}
	res.Snapshot, res.Namespace, res.Component, res.Directory = name, ns, component, to
	res.Duration = time.Since(start).Round(time.Millisecond).String()
	return res, nil
}

// podWait bounds how long a download waits for its Job to make a pod (a
// missing account, a quota): the Job controller says why in its events.
const podWait = 2 * time.Minute

// runningPod waits for the Job's pod to run and names it.
func (d *downloader) runningPod(ctx context.Context, job *batchv1.Job) (string, error) {
	var name, why string
	start := time.Now()
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		pods := &corev1.PodList{}
		if err := d.kube.List(ctx, pods, client.InNamespace(job.Namespace), client.MatchingLabels{"batch.kubernetes.io/job-name": job.Name}); err != nil {
			return false, err
		}
		if len(pods.Items) == 0 && time.Since(start) > podWait {
			return false, fmt.Errorf("the job made no pod in %s; see kubectl describe -n %s job/%s", podWait, job.Namespace, job.Name)
		}
		for _, p := range pods.Items {
			switch p.Status.Phase {
			case corev1.PodRunning:
				name = p.Name
				return true, nil
			case corev1.PodFailed, corev1.PodSucceeded:
				return false, fmt.Errorf("download pod %q ended (%s) before the download; see kubectl logs -n %s %s", p.Name, p.Status.Phase, p.Namespace, p.Name)
			}
			for _, cs := range p.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
					why = w.Reason + ": " + w.Message
				}
			}
		}
		return false, nil
	})
	if err != nil {
		if why != "" {
			err = fmt.Errorf("%w (pod waiting: %s)", err, why)
		}
		return "", fmt.Errorf("cannot start download job %q: %w", job.Name, err)
	}
	return name, nil
}

// report prints the bytes received, and the time left against the size
// the backup recorded, every two seconds until done closes.
func (d *downloader) report(done <-chan struct{}, received *atomic.Int64, total int64, start time.Time) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			fmt.Fprintf(d.progress, "received %s in %s\n", storagev1alpha1.FormatSize(received.Load()), time.Since(start).Round(time.Second))
			return
		case <-t.C:
			n := received.Load()
			line := "received " + storagev1alpha1.FormatSize(n)
			if total > 0 && n > 0 {
				elapsed := time.Since(start)
				left := time.Duration(float64(elapsed) * float64(max(total-n, 0)) / float64(n))
				line += fmt.Sprintf(" of about %s (%d%%), about %s left", storagev1alpha1.FormatSize(total), min(100, n*100/total), left.Round(time.Second))
			}
			fmt.Fprintln(d.progress, line)
		}
	}
}

// componentSize is the size the backup recorded for a component, or 0.
func componentSize(s *storagev1alpha1.Snapshot, component string) int64 {
	var total int64
	for _, st := range s.Status.Components[component].ResticStats {
		if st.Summary == nil {
			continue
		}
		if n, err := storagev1alpha1.ParseSize(st.Summary.Size); err == nil {
			total += n
		}
	}
	return total
}

// emptyDir makes dir, or checks that it is empty.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cannot make %s: %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("cannot read %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("cannot download into %s: it is not empty, and nothing in it may be overwritten", dir)
	}
	return nil
}

// extractTar writes a tar archive's directories, files and links under
// dir. Names are taken as relative to dir whatever they say ("/", ".."),
// no file is written over another, and symbolic links are made last, so
// no file is ever written through one. Devices and pipes are skipped.
func extractTar(r io.Reader, dir string) (*DownloadResult, error) {
	res := &DownloadResult{}
	type link struct {
		target, name string
		hard         bool
	}
	var links []link
	inside := func(name string) string {
		return filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(path.Clean("/"+name), "/")))
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot read the archive: %w", err)
		}
		target := inside(h.Name)
		if target == filepath.Clean(dir) {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return nil, fmt.Errorf("cannot make %s: %w", target, err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return nil, fmt.Errorf("cannot make %s: %w", filepath.Dir(target), err)
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, os.FileMode(h.Mode)&0o777)
			if err != nil {
				return nil, fmt.Errorf("cannot write %s: %w", target, err)
			}
			n, err := io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("cannot write %s: %w", target, err)
			}
			_ = os.Chtimes(target, h.ModTime, h.ModTime)
			res.Files++
			res.Bytes += n
		case tar.TypeSymlink:
			links = append(links, link{target: h.Linkname, name: target})
		case tar.TypeLink:
			links = append(links, link{target: inside(h.Linkname), name: target, hard: true})
		default:
			res.Skipped++
		}
	}
	for _, l := range links {
		if err := os.MkdirAll(filepath.Dir(l.name), 0o755); err != nil {
			return nil, fmt.Errorf("cannot make %s: %w", filepath.Dir(l.name), err)
		}
		mk := os.Symlink
		if l.hard {
			mk = os.Link
		}
		if err := mk(l.target, l.name); err != nil {
			return nil, fmt.Errorf("cannot link %s: %w", l.name, err)
		}
		res.Files++
	}
	return res, nil
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func writeDownload(w io.Writer, res *DownloadResult, output string) error {
	if done, err := writeData(w, res, output); done {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintf(tw, "SNAPSHOT\tCOMPONENT\tDIRECTORY\tFILES\tSIZE\tDURATION\n%s\t%s\t%s\t%d\t%s\t%s\n",
		res.Snapshot, res.Component, res.Directory, res.Files, storagev1alpha1.FormatSize(res.Bytes), res.Duration)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("cannot write the download table: %w", err)
	}
	return nil
}
