package agent

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/restic"
)

func TestBuildComponent(t *testing.T) {
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	end := start.Add(83*time.Second + 250*time.Millisecond)
	prefix := "demo/app/repository/v1/hourly/dump/"
	cases := map[string]struct {
		reason string
		state  componentState
		want   storagev1alpha1.Component
	}{
		"Running": {
			reason: "At start the component is Running with its path and driver, nothing else.",
			state:  componentState{ResticPath: prefix, Phase: storagev1alpha1.ComponentRunning, Paths: []string{"/data"}, Start: start},
			want:   storagev1alpha1.Component{Path: prefix, Phase: storagev1alpha1.ComponentRunning, Driver: storagev1alpha1.DriverRestic},
		},
		"Progress": {
			reason: "While restic runs, its progress is the component's resticStats.",
			state: componentState{ResticPath: prefix, Phase: storagev1alpha1.ComponentRunning, Start: start, Progress: &restic.BackupProgress{
				PercentDone: 0.4567, Elapsed: 12500 * time.Millisecond, TotalFiles: 300, FilesDone: 120, TotalBytes: 6 << 20, BytesDone: 3 << 20,
			}},
			want: storagev1alpha1.Component{Path: prefix, Phase: storagev1alpha1.ComponentRunning, Driver: storagev1alpha1.DriverRestic,
				ResticStats: []storagev1alpha1.ResticStats{{Progress: &storagev1alpha1.ResticProgress{
					PercentDone: 46, TotalFiles: 300, FilesDone: 120, TotalBytes: 6 << 20, BytesDone: 3 << 20, SecondsElapsed: 12,
				}}}},
		},
		"Succeeded": {
			reason: "A finished backup has size, duration, integrity and restic's summary (files read too), and no progress.",
			state: componentState{ResticPath: prefix, Phase: storagev1alpha1.ComponentSucceeded, Paths: []string{"/data", "/etc/app"},
				Start: start, End: end, Integrity: ptr.To(true), Summary: &restic.BackupSummary{
					SnapshotID: "4f2a", DataAdded: 1536, TotalBytesProcessed: 6 << 20, TotalFilesProcessed: 42, Start: start.Add(time.Second), End: end,
				}},
			want: storagev1alpha1.Component{Path: prefix, Phase: storagev1alpha1.ComponentSucceeded, Driver: storagev1alpha1.DriverRestic,
				Size: "6.00 MiB", Duration: "1m23.25s", Integrity: ptr.To(true),
				ResticStats: []storagev1alpha1.ResticStats{{Summary: &storagev1alpha1.ResticSummary{
					ID: "4f2a", Uploaded: "1.50 KiB", HostPath: "/data,/etc/app", Size: "6.00 MiB", Files: 42,
					StartTime: ptr.To(metav1.NewTime(start.Add(time.Second))), EndTime: ptr.To(metav1.NewTime(end)),
				}}}},
		},
		"Failed": {
			reason: "A failure carries its reason and message in error.",
			state: componentState{ResticPath: prefix, Phase: storagev1alpha1.ComponentFailed, Start: start, End: end,
				Reason: ReasonSourceNotFound, Message: `path "/data" does not exist`},
			want: storagev1alpha1.Component{Path: prefix, Phase: storagev1alpha1.ComponentFailed, Driver: storagev1alpha1.DriverRestic,
				Duration: "1m23.25s", Error: `SourceNotFound: path "/data" does not exist`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, buildComponent(tc.state)); diff != "" {
				t.Errorf("%s\nbuildComponent(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	cases := map[string]struct {
		reason string
		n      uint64
		want   string
	}{
		"Zero":  {reason: "Nothing is 0 B.", n: 0, want: "0 B"},
		"Bytes": {reason: "Below a KiB, bytes.", n: 1023, want: "1023 B"},
		"MiB":   {reason: "Binary units, two decimals.", n: 5*1024*1024 + 512*1024, want: "5.50 MiB"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := formatBytes(tc.n)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nformatBytes(%d): -want +got:\n%s", tc.reason, tc.n, diff)
			}
			back, err := storagev1alpha1.ParseSize(got)
			if err != nil {
				t.Fatal(err)
			}
			if d := int64(tc.n) - back; d < -int64(tc.n)/100 || d > int64(tc.n)/100 {
				t.Errorf("ParseSize(%q) = %d, want about %d", got, back, tc.n)
			}
		})
	}
}

func TestComponentPatch(t *testing.T) {
	b, err := componentPatch("demo", "app-s1", "dump-pod-1", storagev1alpha1.Component{Phase: storagev1alpha1.ComponentRunning, Path: "p/"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "storage.stashplane.io/v1alpha1",
		"kind":       "Snapshot",
		"metadata":   map[string]any{"name": "app-s1", "namespace": "demo"},
		"status": map[string]any{"components": map[string]any{
			"dump-pod-1": map[string]any{"phase": "Running", "path": "p/"},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the patch names more than its own component: -want +got:\n%s", diff)
	}
	if diff := cmp.Diff("stashplane-agent-dump-pod-1", FieldManager("dump-pod-1")); diff != "" {
		t.Errorf("FieldManager: -want +got:\n%s", diff)
	}
}

// recorder is a statusWriter that keeps what it was given.
type recorder struct {
	mu  sync.Mutex
	got []storagev1alpha1.Component
}

func (r *recorder) writeComponent(_ context.Context, c storagev1alpha1.Component) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, c)
	return nil
}

func TestProgressWriterThrottles(t *testing.T) {
	rec := &recorder{}
	p := newProgressWriter(rec, componentState{Phase: storagev1alpha1.ComponentRunning}, 50*time.Millisecond)
	deadline := time.Now().Add(260 * time.Millisecond)
	n := 0
	for time.Now().Before(deadline) {
		n++
		p.report(restic.BackupProgress{FilesDone: uint64(n)})
		time.Sleep(time.Millisecond)
	}
	p.stop()
	rec.mu.Lock()
	writes := len(rec.got)
	rec.mu.Unlock()
	if writes == 0 || writes > 6 {
		t.Errorf("%d progress reports in 260ms at most every 50ms made %d writes, want 1 to 6", n, writes)
	}
	p.report(restic.BackupProgress{FilesDone: 1})
	time.Sleep(120 * time.Millisecond)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) != writes {
		t.Errorf("progress was written after stop")
	}
	if last := rec.got[len(rec.got)-1]; last.ResticStats[0].Progress == nil || last.Phase != storagev1alpha1.ComponentRunning {
		t.Errorf("a progress write is not a Running component with progress: %+v", last)
	}
}

func TestFailure(t *testing.T) {
	red := newRedactor("hunter2-password", map[string][]byte{"AWS_SECRET_ACCESS_KEY": []byte("AKIASECRETVALUE")})
	cases := map[string]struct {
		reason      string
		err         error
		wantReason  string
		wantMessage string
	}{
		"Source": {
			reason:     "A source problem keeps its reason.",
			err:        &reasonError{reason: ReasonSourceNotFound, msg: `path "/x" does not exist`},
			wantReason: ReasonSourceNotFound, wantMessage: `path "/x" does not exist`,
		},
		"Restic": {
			reason:     "A restic failure keeps restic's reason, with secrets removed.",
			err:        &restic.Error{Op: "backup", ExitCode: 3, Reason: restic.ReasonSourceIncomplete, Message: "open /x: permission denied (pw hunter2-password, key AKIASECRETVALUE)"},
			wantReason: restic.ReasonSourceIncomplete, wantMessage: "open /x: permission denied (pw [redacted], key [redacted])",
		},
		"Other": {
			reason:     "Anything else is a restic failure with its message, redacted.",
			err:        errors.New("cannot do it with hunter2-password"),
			wantReason: restic.ReasonResticFailed, wantMessage: "cannot do it with [redacted]",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			reason, msg := failure(tc.err, &bridgeErrors{}, red)
			if diff := cmp.Diff(tc.wantReason+": "+tc.wantMessage, reason+": "+msg); diff != "" {
				t.Errorf("%s\nfailure(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestReadSecretDir(t *testing.T) {
	dir := t.TempDir()
	// A kubelet's layout: keys are links into a timestamped directory.
	data := filepath.Join(dir, "..2026_01_01_00_00_00.000")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "AWS_ACCESS_KEY_ID"), []byte("AKIA"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(data), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/AWS_ACCESS_KEY_ID", filepath.Join(dir, "AWS_ACCESS_KEY_ID")); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSecretDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("AKIA")}, got); diff != "" {
		t.Errorf("ReadSecretDir(): -want +got:\n%s", diff)
	}
	if got, err := ReadSecretDir(""); got != nil || err != nil {
		t.Errorf("ReadSecretDir(\"\") = %v, %v; want no secret", got, err)
	}
}

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "RESTIC_PASSWORD")
	if err := os.WriteFile(pw, []byte("s3cret value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readPassword(pw)
	if diff := cmp.Diff("s3cret value", got); diff != "" || err != nil {
		t.Errorf("readPassword(): %v; -want +got:\n%s", err, diff)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readPassword(empty); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("readPassword(empty) = %v, want an error", err)
	}
}

func TestOpenOptionsLocal(t *testing.T) {
	mount := t.TempDir()
	whole := t.TempDir()
	if err := os.WriteFile(filepath.Join(mount, "metadata.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(whole, "backups"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(whole, "backups", "metadata.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	local := func(mountPath string) storagev1alpha1.Backend {
		return storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{MountPath: mountPath, SubPath: "backups"}}
	}
	cases := map[string]struct {
		reason   string
		spec     storagev1alpha1.Backend
		wantRoot string
		wantErr  bool
	}{
		"SubPathMounted": {reason: "As the Functions render it: the subPath is mounted at mountPath.", spec: local(mount), wantRoot: mount},
		"WholeVolume":    {reason: "A Job that mounts the whole volume has the storage under subPath.", spec: local(whole), wantRoot: filepath.Join(whole, "backups")},
		"NotMounted":     {reason: "No storage record: the volume is not there; nothing is written.", spec: local(t.TempDir()), wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			spec, opts, err := openOptions(tc.spec)
			if (err != nil) != tc.wantErr {
				t.Fatalf("%s\nopenOptions(): %v", tc.reason, err)
			}
			if tc.wantErr {
				return
			}
			if diff := cmp.Diff(tc.wantRoot, opts.LocalRoot); diff != "" {
				t.Errorf("%s\nroot: -want +got:\n%s", tc.reason, diff)
			}
			if spec.Local.SubPath != "" || tc.spec.Local.SubPath != "backups" {
				t.Errorf("%s\nthe subPath is applied twice, or the caller's spec was changed", tc.reason)
			}
		})
	}
}

func TestOutcomeWriter(t *testing.T) {
	rec := &recorder{}
	o := &outcomeWriter{w: rec}
	ctx := context.Background()
	running := storagev1alpha1.Component{Phase: storagev1alpha1.ComponentRunning}
	stopped := buildComponent(interrupted(componentState{Phase: storagev1alpha1.ComponentRunning}, &bridgeErrors{}, redactor{"pw-secret"}))
	done := storagev1alpha1.Component{Phase: storagev1alpha1.ComponentSucceeded}
	for _, step := range []func() error{
		func() error { return o.writeComponent(ctx, running) },
		func() error { return o.finish(ctx, stopped, false) },
		func() error { return o.writeComponent(ctx, running) }, // progress after the end: dropped
		func() error { return o.finish(ctx, stopped, false) },  // a second interruption: dropped
		func() error { return o.finish(ctx, done, true) },      // the run's own result wins
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	var phases []storagev1alpha1.ComponentPhase
	for _, c := range rec.got {
		phases = append(phases, c.Phase)
	}
	want := []storagev1alpha1.ComponentPhase{storagev1alpha1.ComponentRunning, storagev1alpha1.ComponentFailed, storagev1alpha1.ComponentSucceeded}
	if diff := cmp.Diff(want, phases); diff != "" {
		t.Errorf("written phases: -want +got:\n%s", diff)
	}
	if !strings.HasPrefix(stopped.Error, restic.ReasonInterrupted+": ") {
		t.Errorf("an interrupted component's error is %q", stopped.Error)
	}
}
