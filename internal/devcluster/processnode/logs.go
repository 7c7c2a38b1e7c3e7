package processnode

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

// logs returns a container's output: the current attempt, or the one before
// it with Previous; Tail and LimitBytes trim it; Follow keeps the stream
// open until the attempt ends.
func (r *podRun) logs(ctx context.Context, container string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	r.mu.Lock()
	attempt, found, running := int32(0), false, false
	for _, cs := range append(append(r.pod.Status.InitContainerStatuses[:0:0], r.pod.Status.InitContainerStatuses...), r.pod.Status.ContainerStatuses...) {
		if cs.Name == container {
			attempt, found, running = cs.RestartCount, true, cs.State.Running != nil
		}
	}
	r.mu.Unlock()
	if !found {
		return nil, errdefs.NotFoundf("container %q not found in pod %s/%s", container, r.pod.Namespace, r.pod.Name)
	}
	if opts.Previous {
		if attempt == 0 {
			return nil, errdefs.NotFoundf("container %q has not restarted", container)
		}
		attempt, running = attempt-1, false
	}
	path := r.logPath(container, attempt)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errdefs.NotFoundf("no logs for container %q yet", container)
	}
	if opts.Tail > 0 {
		lines := bytes.SplitAfter(data, []byte("\n"))
		if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		if len(lines) > opts.Tail {
			lines = lines[len(lines)-opts.Tail:]
		}
		data = bytes.Join(lines, nil)
	}
	if opts.LimitBytes > 0 && len(data) > opts.LimitBytes {
		data = data[:opts.LimitBytes]
	}
	if !opts.Follow || !running {
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot stat log: %w", err)
	}
	if _, err := f.Seek(st.Size(), io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot seek log: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		defer f.Close()
		if _, err := pw.Write(data); err != nil {
			return
		}
		pw.CloseWithError(r.follow(ctx, f, pw, container, attempt))
	}()
	return pr, nil
}

// follow copies what a running attempt writes until it ends.
func (r *podRun) follow(ctx context.Context, f *os.File, w io.Writer, container string, attempt int32) error {
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if !r.attemptRunning(container, attempt) {
			_, err := io.Copy(w, f)
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.done:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (r *podRun) attemptRunning(container string, attempt int32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cs := range append(append(r.pod.Status.InitContainerStatuses[:0:0], r.pod.Status.InitContainerStatuses...), r.pod.Status.ContainerStatuses...) {
		if cs.Name == container {
			return cs.RestartCount == attempt && cs.State.Running != nil
		}
	}
	return false
}
