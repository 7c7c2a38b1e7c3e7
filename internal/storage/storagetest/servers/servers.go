// Package servers starts real storage servers for tests: versitygw for S3,
// fake-gcs-server for GCS and Azurite for Azure Blob Storage. Each one runs
// as a child process of the test on 127.0.0.1 with a free port and a
// temporary directory, and is stopped when the test ends. The binaries come
// from `make tools`; a missing binary fails the test, it never skips it.
package servers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/stashplane/stashplane/internal/devcluster/devclustertest"
)

// startTimeout bounds how long a server may take to accept connections:
// azurite, a Node.js program, has taken over a minute on a loaded 2-core
// machine.
const startTimeout = 3 * time.Minute

// Binary returns the path of a tool built by `make tools`, failing the test
// when it is missing.
func Binary(t testing.TB, name string) string {
	t.Helper()
	dir, err := devclustertest.BinDir()
	if err != nil {
		t.Fatalf("cannot find the tool directory: %v", err)
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing from %s: run `make tools`", name, dir)
	}
	return p
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot find a free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// randomSecret makes a credential for one server run.
func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// process is a running server.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs a server and waits until addr accepts connections. The server
// is stopped when the test ends, and its output is logged if the test
// failed.
func start(t testing.TB, name, addr string, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	// Its own process group, so that stopping it also stops what it started
	// (node starts no children, but a wrapper script might).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("cannot start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(p.log.String(), 4000))
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it listened on %s: %v\n%s", name, addr, p.err, tail(p.log.String(), 4000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s within %s\n%s", name, addr, startTimeout, tail(p.log.String(), 4000))
		}
	}
}

func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// S3 is a running versitygw serving a directory: each bucket is a folder.
type S3 struct {
	// Endpoint is the server's URL, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the root credentials of this run.
	AccessKey, SecretKey string
	// Dir holds the buckets.
	Dir string

	addr, bin string
	proc      *process
}

// StartS3 starts versitygw on a free port over a temporary directory.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	s := &S3{Dir: t.TempDir(), AccessKey: "stash" + randomSecret(6), SecretKey: randomSecret(20), bin: Binary(t, "versitygw")}
	s.addr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	s.Endpoint = "http://" + s.addr
	s.run(t)
	return s
}

func (s *S3) run(t testing.TB) {
	s.proc = start(t, "versitygw", s.addr, []string{"ROOT_ACCESS_KEY=" + s.AccessKey, "ROOT_SECRET_KEY=" + s.SecretKey},
		s.bin, "--port", s.addr, "posix", s.Dir)
}

// RotateCredentials restarts the server on the same address and
// directory with new root credentials: the old ones stop working.
func (s *S3) RotateCredentials(t testing.TB) {
	t.Helper()
	s.proc.stop()
	s.AccessKey, s.SecretKey = "stash"+randomSecret(6), randomSecret(20)
	s.run(t)
}

// CreateBucket makes an empty bucket.
func (s *S3) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(s.Dir, name), 0o755); err != nil {
		t.Fatalf("cannot create bucket %q: %v", name, err)
	}
}

// GCS is a running fake-gcs-server keeping its buckets on disk.
type GCS struct {
	// Endpoint is the JSON API endpoint, http://127.0.0.1:PORT/storage/v1/.
	Endpoint string
	base     string
}

// StartGCS starts fake-gcs-server on a free port over a temporary
// directory.
func StartGCS(t testing.TB) *GCS {
	t.Helper()
	bin := Binary(t, "fake-gcs-server")
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	g := &GCS{base: "http://" + addr, Endpoint: "http://" + addr + "/storage/v1/"}
	dir := t.TempDir()
	start(t, "fake-gcs-server", addr, nil, bin,
		"-scheme", "http", "-host", "127.0.0.1", "-port", strconv.Itoa(port),
		"-public-host", addr, "-external-url", g.base,
		"-backend", "filesystem", "-filesystem-root", filepath.Join(dir, "data"),
		"-log-level", "warn")
	return g
}

// CreateBucket makes an empty bucket through the JSON API.
func (g *GCS) CreateBucket(t testing.TB, name string) {
	t.Helper()
	body := strings.NewReader(fmt.Sprintf(`{"name":%q}`, name))
	res, err := post(g.base+"/storage/v1/b", "application/json", body)
	if err != nil {
		t.Fatalf("cannot create bucket %q: %v", name, err)
	}
	if res.StatusCode/100 != 2 {
		t.Fatalf("cannot create bucket %q: %s", name, res.Status)
	}
}

func post(url, contentType string, body *strings.Reader) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	_ = res.Body.Close()
	return res, nil
}

// Azure is a running Azurite blob service.
type Azure struct {
	// Endpoint is the blob service URL of Account,
	// http://127.0.0.1:PORT/ACCOUNT.
	Endpoint string
	// Account and Key are the storage account of this run.
	Account, Key string
}

// StartAzure starts Azurite's blob service on a free port over a temporary
// directory, with one storage account whose key is made for this run.
func StartAzure(t testing.TB) *Azure {
	t.Helper()
	bin := Binary(t, "azurite-blob")
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	keyBytes := make([]byte, 64)
	_, _ = rand.Read(keyBytes)
	a := &Azure{Account: "stashplane", Key: base64.StdEncoding.EncodeToString(keyBytes)}
	a.Endpoint = "http://" + addr + "/" + a.Account
	dir := t.TempDir()
	start(t, "azurite", addr, []string{"AZURITE_ACCOUNTS=" + a.Account + ":" + a.Key}, bin,
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port),
		"--location", dir, "--silent", "--skipApiVersionCheck", "--disableProductStyleUrl",
		// Nothing may leave the machine.
		"--disableTelemetry")
	return a
}

// CreateContainer makes an empty container.
func (a *Azure) CreateContainer(t testing.TB, name string) {
	t.Helper()
	if err := createAzureContainer(a, name); err != nil {
		t.Fatalf("cannot create container %q: %v", name, err)
	}
}

func createAzureContainer(a *Azure, name string) error {
	cred, err := container.NewSharedKeyCredential(a.Account, a.Key)
	if err != nil {
		return errors.New("cannot use the account key")
	}
	c, err := container.NewClientWithSharedKeyCredential(a.Endpoint+"/"+name, cred, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.Create(ctx, nil)
	return err
}
