package e2e

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/layout"
	"github.com/stashplane/stashplane/internal/storage/storagetest/servers"
)

// outageProxy forwards TCP connections to a server on loopback and can cut
// them: once `after` bytes went through it, either way, it drops every
// connection and refuses new ones for `outage` (forever when zero).
type outageProxy struct {
	ln     net.Listener
	target string
	after  atomic.Int64
	outage time.Duration
	sent   atomic.Int64
	mu     sync.Mutex
	down   bool
	cut    chan struct{} // closed at the cut
	conns  map[net.Conn]bool
}

func startOutageProxy(t *testing.T, target string) *outageProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &outageProxy{ln: ln, target: target, conns: map[net.Conn]bool{}, cut: make(chan struct{})}
	p.after.Store(-1)
	t.Cleanup(func() { ln.Close(); p.drop() })
	go p.serve()
	return p
}

func (p *outageProxy) endpoint() string { return "http://" + p.ln.Addr().String() }

// arm makes the proxy cut after n more bytes to or from the server.
func (p *outageProxy) arm(n int64, outage time.Duration) {
	p.mu.Lock()
	p.outage = outage
	p.cut = make(chan struct{})
	p.mu.Unlock()
	p.after.Store(p.sent.Load() + n)
}

func (p *outageProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		if !down {
			p.conns[c] = true
		}
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go p.forward(c)
	}
}

func (p *outageProxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[s] = true
	p.mu.Unlock()
	go func() { p.pipe(c, s); c.Close() }()
	p.pipe(s, c)
	s.Close()
	c.Close()
}

// pipe copies from to to, counting the bytes, and trips the proxy once
// it is armed and they reach the mark.
func (p *outageProxy) pipe(to, from net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
			if sent := p.sent.Add(int64(n)); p.after.Load() >= 0 && sent >= p.after.Load() {
				p.trip()
			}
		}
		if err != nil {
			return
		}
	}
}

// trip cuts every connection and, for a bounded outage, heals later.
func (p *outageProxy) trip() {
	p.after.Store(-1)
	p.mu.Lock()
	p.down = true
	outage := p.outage
	close(p.cut)
	p.mu.Unlock()
	p.drop()
	if outage > 0 {
		time.AfterFunc(outage, p.heal)
	}
}

// heal ends an outage.
func (p *outageProxy) heal() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

func (p *outageProxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// The agent backs up into S3 with its credentials mounted from the
// storage's Secret. When the storage drops every connection in the middle
// of the upload for a few seconds, restic retries and the backup completes
// with identical bytes; when it stays away, the Job ends at its deadline
// and the component is not Succeeded. The repository stays clean for plain
// restic either way, and neither the secret key nor the password appears
// in a status or a log.
func TestAgentS3Outage(t *testing.T) {
	t.Parallel()
	s3 := servers.StartS3(t)
	s3.CreateBucket(t, "backups")
	proxy := startOutageProxy(t, strings.TrimPrefix(s3.Endpoint, "http://"))
	e := setupAgent(t, s3Storage("s3", proxy.endpoint(), "backups"), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: "default"},
		Data: map[string][]byte{
			storagev1alpha1.SecretKeyAWSAccessKeyID:     []byte(s3.AccessKey),
			storagev1alpha1.SecretKeyAWSSecretAccessKey: []byte(s3.SecretKey),
		},
	})
	dump := storagev1alpha1.ComponentDump
	data := t.TempDir()
	generate(t, data, 400, 2) // about 8 MiB
	secrets := func(where string, b []byte) {
		t.Helper()
		noPassword(t, where, b)
		if strings.Contains(string(b), s3.SecretKey) {
			t.Errorf("the S3 secret key appears in %s", where)
		}
	}
	repoDir := filepath.Join(s3.Dir, "backups", "stashplane", layout.ResticPrefix("demo/app", "hourly", dump))

	// A short outage in the middle of the upload.
	proxy.arm(3<<20, 4*time.Second)
	e.snapshot(t, "app-hourly-1", "hourly", "01KAGENT0000000000000000S1")
	job := e.job(t, render.TaskBackup, "logical-backup", "app-hourly-1", "app-hourly-1", dump, data, map[string]any{"paths": []string{"/var/lib/app"}})
	ok, logs := e.wait(t, job)
	secrets("the backup job's logs", []byte(logs))
	select {
	case <-proxy.cut:
	default:
		t.Fatalf("the storage was never cut: the test proves nothing")
	}
	if !ok {
		t.Fatalf("the backup did not survive a short outage:\n%s", logs)
	}
	comp, status := e.component(t, "app-hourly-1")
	secrets("the snapshot's status", status)
	if comp.Phase != storagev1alpha1.ComponentSucceeded || len(comp.ResticStats) != 1 || comp.ResticStats[0].Summary == nil {
		t.Fatalf("component after a short outage: %+v", comp)
	}
	restored := t.TempDir()
	hostRestic(t, repoDir, "restore", comp.ResticStats[0].Summary.ID, "--target", restored)
	if diff := cmp.Diff(digest(t, data), digest(t, filepath.Join(restored, "var/lib/app"))); diff != "" {
		t.Errorf("restore after a short outage: -backed up +restored:\n%s", diff)
	}

	// An outage that lasts: the Job's deadline ends the backup.
	if err := os.WriteFile(filepath.Join(data, "more.bin"), make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	generate(t, filepath.Join(data, "more"), 200, 3)
	proxy.arm(1<<20, 0)
	e.snapshot(t, "app-hourly-2", "hourly", "01KAGENT0000000000000000S2")
	job = e.job(t, render.TaskBackup, "logical-backup", "app-hourly-2", "app-hourly-2", dump, data,
		map[string]any{"paths": []string{"/var/lib/app"}, "timeoutSeconds": 20})
	ok, logs = e.wait(t, job)
	secrets("the failed job's logs", []byte(logs))
	if ok {
		t.Fatalf("a backup into an unreachable storage completed:\n%s", logs)
	}
	poll(t, 30*time.Second, "the component of the cut backup is still Running", func(context.Context) (bool, error) {
		c, _ := e.component(t, "app-hourly-2")
		return c.Phase != storagev1alpha1.ComponentRunning, nil
	})
	comp, status = e.component(t, "app-hourly-2")
	secrets("the failed snapshot's status", status)
	if comp.Phase != storagev1alpha1.ComponentFailed || comp.Error == "" {
		t.Errorf("component of a backup cut for good: %+v, want Failed with an error", comp)
	}
	t.Logf("component of the backup cut for good: phase %s, error %q", comp.Phase, comp.Error)

	// Plain restic: one snapshot, and a clean repository. The interrupted
	// run left its lock, which restic will deem stale only after 30
	// minutes: the check does without the lock.
	var snaps []resticSnapshot
	if err := json.Unmarshal(hostRestic(t, repoDir, "snapshots", "--json", "--no-lock"), &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 {
		t.Errorf("restic lists %d snapshots, want only the one that succeeded", len(snaps))
	}
	hostRestic(t, repoDir, "check", "--read-data", "--no-lock")

	// The storage is back: the next backup succeeds despite the lock the
	// interrupted one left, and holds the new data.
	proxy.heal()
	e.snapshot(t, "app-hourly-3", "hourly", "01KAGENT0000000000000000S3")
	job = e.job(t, render.TaskBackup, "logical-backup", "app-hourly-3", "app-hourly-3", dump, data, map[string]any{"paths": []string{"/var/lib/app"}})
	if ok, logs := e.wait(t, job); !ok {
		t.Fatalf("the backup after the outage failed:\n%s", logs)
	}
	comp, _ = e.component(t, "app-hourly-3")
	if comp.Phase != storagev1alpha1.ComponentSucceeded || comp.Integrity == nil || !*comp.Integrity {
		t.Fatalf("component after the outage: %+v", comp)
	}
	restored = t.TempDir()
	hostRestic(t, repoDir, "restore", comp.ResticStats[0].Summary.ID, "--target", restored, "--no-lock")
	if diff := cmp.Diff(digest(t, data), digest(t, filepath.Join(restored, "var/lib/app"))); diff != "" {
		t.Errorf("restore after the outage: -backed up +restored:\n%s", diff)
	}
	hostRestic(t, repoDir, "check", "--read-data", "--no-lock")

	// The agent's restore through a short outage: restic retries and every
	// file comes back, checked against the content manifest.
	proxy.arm(2<<20, 4*time.Second)
	into := t.TempDir()
	job = e.job(t, render.TaskRestore, "logical-backup-restore", "app-restore-1", "app-hourly-3", dump, into, map[string]any{})
	ok, logs = e.wait(t, job)
	secrets("the restore job's logs", []byte(logs))
	select {
	case <-proxy.cut:
	default:
		t.Fatalf("the storage was never cut during the restore: the test proves nothing")
	}
	if !ok || !strings.Contains(logs, "restored files match the content manifest") {
		t.Fatalf("the restore did not survive a short outage:\n%s", logs)
	}
	if diff := cmp.Diff(digest(t, data), digest(t, into)); diff != "" {
		t.Errorf("restore through a short outage: -backed up +restored:\n%s", diff)
	}

	// A restore whose storage goes away for good fails at its deadline; it
	// never reports success.
	proxy.arm(1<<20, 0)
	into = t.TempDir()
	job = e.job(t, render.TaskRestore, "logical-backup-restore", "app-restore-2", "app-hourly-3", dump, into, map[string]any{"timeoutSeconds": 20})
	ok, logs = e.wait(t, job)
	secrets("the failed restore job's logs", []byte(logs))
	if ok {
		t.Fatalf("a restore from an unreachable storage completed:\n%s", logs)
	}
	t.Logf("restore cut for good: the Job failed at its deadline")
	proxy.heal()
	hostRestic(t, repoDir, "check", "--read-data", "--no-lock")
}
