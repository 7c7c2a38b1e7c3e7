// Package bridge lets restic use any Stashplane bucket as a repository: it
// serves restic's REST backend protocol (version 2, and version 1 lists)
// over one bucket prefix, so restic needs no backend of its own for S3, GCS,
// Azure or a mounted volume, and its credentials never reach restic.
//
// Under the prefix the objects are laid out exactly as restic lays out a
// local repository (config, keys/, locks/, snapshots/, index/, and data/
// split into two-character directories), so a repository written through
// the bridge onto files is a plain restic repository, and the other way
// round.
//
// Bodies are streamed both ways: the bridge holds no whole pack in memory
// (a backend's SDK may buffer a part of an upload, as the S3 one does). An
// upload of the wrong length is aborted, so a torn upload never becomes an
// object; with Options.VerifyUploads it is also checked against the
// SHA-256 in its name while it streams.
package bridge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Media types of the REST protocol.
const (
	contentTypeV1 = "application/vnd.x.restic.rest.v1"
	contentTypeV2 = "application/vnd.x.restic.rest.v2"
)

// fileTypes are the directories of a repository; config is a single file.
var fileTypes = map[string]bool{"data": true, "keys": true, "locks": true, "snapshots": true, "index": true}

// validName matches restic's file names: the hex SHA-256 of the content.
var validName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// key is where a file of a type lives under the prefix: restic's local
// layout, which splits data into 256 directories.
func key(typ, name string) string {
	if typ == "data" {
		return "data/" + name[:2] + "/" + name
	}
	return typ + "/" + name
}

// Options tune a bridge.
type Options struct {
	// Log receives the failures of requests.
	Log logr.Logger
	// VerifyUploads hashes every upload and refuses one whose SHA-256 is
	// not its name. restic already authenticates what it reads back, and
	// the bridge is on loopback, so this costs a core's worth of SHA-256
	// (a few percent of a backup) to catch a bug between restic and the
	// bucket early.
	VerifyUploads bool
	// LocksAfter, when not nil, is asked for a channel as each lock
	// file restic writes arrives, and that lock is written once the
	// channel is closed. restic takes its lock before it reads any
	// source file, so a backup's caller can let restic start (its key
	// derivation, its index) while it still looks at the source itself,
	// and be sure it looked first. A caller that kills such a restic
	// hands later locks a new channel: the dead run's lock waits on one
	// that never closes and is never written, however late the server
	// notices that its client is gone.
	LocksAfter func() <-chan struct{}
}

// Handler serves one repository: the bucket's objects under its prefix.
type Handler struct {
	bucket         *blob.Bucket
	user, password string
	opts           Options
	log            logr.Logger

	mu sync.Mutex
	// keysSaved are the key files this handler wrote and no config since:
	// the keys of an init that may still lose its race for the config.
	keysSaved []string
}

// writeOnce are the types written only where nothing is: a repository's
// config and its keys are never replaced, so that two runs initialising
// the same repository at once cannot leave it with the config of one and
// the keys of the other.
var writeOnce = map[string]bool{"config": true, "keys": true}

// NewHandler serves the repository in bucket (already scoped to the
// repository's prefix) to clients that authenticate as user with password.
func NewHandler(bucket *blob.Bucket, user, password string, opts Options) *Handler {
	return &Handler{bucket: bucket, user: user, password: password, opts: opts, log: opts.Log}
}

func (h *Handler) authorized(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	// Both compared in constant time, and both always compared.
	uok := subtle.ConstantTimeCompare([]byte(u), []byte(h.user))
	pok := subtle.ConstantTimeCompare([]byte(p), []byte(h.password))
	return ok && uok&pok == 1
}

// ServeHTTP routes a request of the REST protocol.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="stashplane"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "":
		h.serveRepository(w, r)
	case len(parts) == 1 && parts[0] == "config":
		h.serveFile(w, r, "config", "config")
	case len(parts) == 2 && fileTypes[parts[0]] && parts[1] == "":
		h.serveList(w, r, parts[0])
	case len(parts) == 2 && fileTypes[parts[0]] && validName.MatchString(parts[1]):
		h.serveFile(w, r, parts[0], key(parts[0], parts[1]))
	default:
		http.NotFound(w, r)
	}
}

// serveRepository creates the repository. There is nothing to create in an
// object store (directories come with the first object in them), so it
// only checks that the bucket answers. Deleting a whole repository is left
// to the Repository controller.
func (h *Handler) serveRepository(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Query().Get("create") == "true":
		objs, _, err := h.bucket.ListPage(r.Context(), blob.FirstPageToken, 1, nil)
		if err != nil {
			h.fail(w, r, "cannot create the repository", err)
			return
		}
		// A directory holding anything (a wiped repository's leftovers,
		// another tool's files) is never initialised over.
		if len(objs) > 0 {
			http.Error(w, "the repository's directory is not empty ("+objs[0].Key+"); refusing to initialise a repository over it", http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodDelete:
		http.Error(w, "deleting a repository is not supported", http.StatusNotImplemented)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, typ, k string) {
	switch r.Method {
	case http.MethodHead:
		h.stat(w, r, k)
	case http.MethodGet:
		h.get(w, r, k)
	case http.MethodPost:
		h.save(w, r, typ, k)
	case http.MethodDelete:
		if err := h.bucket.Delete(r.Context(), k); err != nil {
			h.fail(w, r, "cannot delete "+k, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// fail answers with the HTTP status restic understands for err: 404 for a
// missing file (restic treats it as "does not exist"), 403 for denied
// access, 500 otherwise (restic retries those).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	status := http.StatusInternalServerError
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		status = http.StatusNotFound
	case gcerrors.PermissionDenied:
		status = http.StatusForbidden
	case gcerrors.Canceled:
		// The client went away: nobody reads the answer.
		return
	}
	if status != http.StatusNotFound {
		h.log.Error(err, what, "method", r.Method, "path", r.URL.Path)
	}
	http.Error(w, http.StatusText(status), status)
}

func (h *Handler) stat(w http.ResponseWriter, r *http.Request, k string) {
	a, err := h.bucket.Attributes(r.Context(), k)
	if err != nil {
		h.fail(w, r, "cannot stat "+k, err)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(a.Size, 10))
	w.WriteHeader(http.StatusOK)
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

func copyStream(dst io.Writer, src io.Reader) (int64, error) {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *buf)
}

// sendBody writes the n bytes rd holds from its offset on. When rd reads a
// file (a bucket on a mounted volume), the file itself goes to the
// response, whose connection hands it to the kernel (sendfile): the bytes
// go from the page cache to restic's socket without being copied into and
// out of the bridge, which on a restore is most of what the bridge costs.
// Any other reader is copied through a pooled buffer.
func sendBody(w io.Writer, rd *blob.Reader, n int64) (int64, error) {
	if f := readerFile(rd); f != nil {
		// io.Copy hands the limited file to the response's ReadFrom; one
		// level of LimitedReader over a file is what sendfile accepts.
		return io.Copy(w, io.LimitReader(f, n))
	}
	return copyStream(w, io.LimitReader(rd, n))
}

// readerFile is the open file under rd, positioned at rd's offset, when
// the bucket's driver exposes one (fileblob gives the file, or the file
// under a length limit); nil otherwise.
func readerFile(rd *blob.Reader) *os.File {
	var under io.Reader
	if !rd.As(&under) {
		return nil
	}
	if lr, ok := under.(*io.LimitedReader); ok {
		under = lr.R
	}
	f, _ := under.(*os.File)
	return f
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, k string) {
	rng, err := parseRange(r.Header.Get("Range"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestedRangeNotSatisfiable)
		return
	}
	if rng.suffix > 0 {
		a, err := h.bucket.Attributes(r.Context(), k)
		if err != nil {
			h.fail(w, r, "cannot stat "+k, err)
			return
		}
		rng.offset, rng.length = max(0, a.Size-rng.suffix), min(rng.suffix, a.Size)
	}
	rd, err := h.bucket.NewRangeReader(r.Context(), k, rng.offset, rng.length, nil)
	if err != nil {
		h.fail(w, r, "cannot read "+k, err)
		return
	}
	defer func() { _ = rd.Close() }()
	size := rd.Size()
	n := size - rng.offset
	if rng.length >= 0 {
		n = min(n, rng.length)
	}
	if rng.partial && (rng.offset >= size || n <= 0) {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		http.Error(w, "range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	if rng.partial {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rng.offset, rng.offset+n-1, size))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	if copied, err := sendBody(w, rd, n); err != nil || copied != n {
		// The status is out: break the connection so that restic sees a
		// failed read, never a short one.
		h.log.Error(err, "cannot stream "+k, "copied", copied, "want", n)
		panic(http.ErrAbortHandler)
	}
}

// byteRange is a parsed Range header: one range, as restic sends.
type byteRange struct {
	partial bool
	offset  int64
	length  int64 // -1: to the end
	suffix  int64 // > 0: the last suffix bytes
}

func parseRange(s string) (byteRange, error) {
	if s == "" {
		return byteRange{length: -1}, nil
	}
	spec, ok := strings.CutPrefix(s, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return byteRange{}, fmt.Errorf("unsupported range %q", s)
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return byteRange{}, fmt.Errorf("invalid range %q", s)
	}
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n <= 0 {
			return byteRange{}, fmt.Errorf("invalid range %q", s)
		}
		return byteRange{partial: true, suffix: n}, nil
	}
	off, err := strconv.ParseInt(first, 10, 64)
	if err != nil || off < 0 {
		return byteRange{}, fmt.Errorf("invalid range %q", s)
	}
	if last == "" {
		return byteRange{partial: true, offset: off, length: -1}, nil
	}
	end, err := strconv.ParseInt(last, 10, 64)
	if err != nil || end < off {
		return byteRange{}, fmt.Errorf("invalid range %q", s)
	}
	return byteRange{partial: true, offset: off, length: end - off + 1}, nil
}

// errHashMismatch: the uploaded bytes are not the file their name says.
var errHashMismatch = errors.New("the uploaded content does not match its name")

// save streams the request body into the object, checking its length and,
// when asked, for every type but config its SHA-256 against the name. Any
// failure aborts the write, leaving whatever was there before.
func (h *Handler) save(w http.ResponseWriter, r *http.Request, typ, k string) {
	if typ == "locks" && h.opts.LocksAfter != nil {
		h.saveLockAfter(w, r, k)
		return
	}
	if writeOnce[typ] {
		h.saveOnce(w, r, typ, k)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	bw, err := h.bucket.NewWriter(ctx, k, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		h.fail(w, r, "cannot write "+k, err)
		return
	}
	verify := h.opts.VerifyUploads && typ != "config"
	sum := sha256.New()
	var dst io.Writer = bw
	if verify {
		dst = io.MultiWriter(bw, sum)
	}
	n, err := copyStream(dst, r.Body)
	if err == nil && r.ContentLength >= 0 && n != r.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && verify && hex.EncodeToString(sum.Sum(nil)) != k[strings.LastIndex(k, "/")+1:] {
		err = errHashMismatch
	}
	if err != nil {
		cancel()
		_ = bw.Close()
		if errors.Is(err, errHashMismatch) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.fail(w, r, "cannot receive "+k, err)
		return
	}
	if err := bw.Close(); err != nil {
		h.fail(w, r, "cannot write "+k, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// saveLockAfter writes a lock file once the channel LocksAfter gave for
// it is closed. Its body (restic's are under 1 KiB) is read first: only
// then does the server notice a client that goes away, which ends the
// request's context.
func (h *Handler) saveLockAfter(w http.ResponseWriter, r *http.Request, k string) {
	gate := h.opts.LocksAfter()
	body, ok := h.readSmall(w, r, k)
	if !ok {
		return
	}
	select {
	case <-gate:
	case <-r.Context().Done():
	}
	if r.Context().Err() != nil {
		// restic gave up on this request (it retries a stuck one, and
		// is stopped when its caller gives up): the lock is written by
		// the retry, or not at all.
		return
	}
	if err := h.bucket.WriteAll(r.Context(), k, body, &blob.WriterOptions{ContentType: "application/octet-stream"}); err != nil {
		h.fail(w, r, "cannot write "+k, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// readSmall reads the whole body of a request that writes a small file
// (a config, key or lock), at most maxWriteOnce bytes; it answers the
// request itself when it cannot.
func (h *Handler) readSmall(w http.ResponseWriter, r *http.Request, k string) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWriteOnce+1))
	if err == nil && (len(body) > maxWriteOnce || r.ContentLength >= 0 && int64(len(body)) != r.ContentLength) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		h.fail(w, r, "cannot receive "+k, err)
		return nil, false
	}
	return body, true
}

// maxWriteOnce bounds a config or key file (restic's are under 1 KiB).
const maxWriteOnce = 1 << 20

// saveOnce writes a config or key file only where none is. The same bytes
// again (restic retrying a write whose answer it lost) are taken as
// written; other bytes are refused.
func (h *Handler) saveOnce(w http.ResponseWriter, r *http.Request, typ, k string) {
	body, ok := h.readSmall(w, r, k)
	if !ok {
		return
	}
	if sum := sha256.Sum256(body); h.opts.VerifyUploads && typ != "config" && hex.EncodeToString(sum[:]) != k[strings.LastIndex(k, "/")+1:] {
		http.Error(w, errHashMismatch.Error(), http.StatusBadRequest)
		return
	}
	err := h.bucket.WriteAll(r.Context(), k, body, &blob.WriterOptions{ContentType: "application/octet-stream", IfNotExist: true})
	if gcerrors.Code(err) == gcerrors.FailedPrecondition {
		if existing, rerr := h.bucket.ReadAll(r.Context(), k); rerr == nil && bytes.Equal(existing, body) {
			w.WriteHeader(http.StatusOK)
			return
		}
		h.refuseOverwrite(w, r, typ, k)
		return
	}
	if err != nil {
		h.fail(w, r, "cannot write "+k, err)
		return
	}
	h.saved(typ, k)
	w.WriteHeader(http.StatusOK)
}

// saved remembers the keys an init writes until its config is written.
func (h *Handler) saved(typ, k string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch typ {
	case "keys":
		h.keysSaved = append(h.keysSaved, k)
	case "config":
		h.keysSaved = nil
	}
}

// refuseOverwrite answers a write of a config or key that exists. An init
// that lost the race for the config (another run initialised the
// repository first) takes back the keys it wrote: they hold another
// master key, which restic could try before the winner's and fail to read
// the config with.
func (h *Handler) refuseOverwrite(w http.ResponseWriter, r *http.Request, typ, k string) {
	if typ == "config" {
		h.mu.Lock()
		keys := h.keysSaved
		h.keysSaved = nil
		h.mu.Unlock()
		for _, key := range keys {
			if err := h.bucket.Delete(r.Context(), key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				h.log.Error(err, "cannot remove the key of an init that lost its race", "key", key)
			}
		}
	}
	http.Error(w, k+" exists; a repository's config and keys are never replaced", http.StatusForbidden)
}

// listEntry is one file in a version 2 list.
type listEntry struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// serveList streams the files of a type as a JSON array: names and sizes
// for version 2, names for version 1. Objects that are not restic files
// (temporary files of an interrupted write, anything a user left) are not
// listed.
func (h *Handler) serveList(w http.ResponseWriter, r *http.Request, typ string) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	v2 := r.Header.Get("Accept") == contentTypeV2
	it := h.bucket.List(&blob.ListOptions{Prefix: typ + "/"})
	// The first page decides the status; later failures break the stream.
	obj, err := it.Next(r.Context())
	if err != nil && !errors.Is(err, io.EOF) {
		h.fail(w, r, "cannot list "+typ, err)
		return
	}
	if v2 {
		w.Header().Set("Content-Type", contentTypeV2)
	} else {
		w.Header().Set("Content-Type", contentTypeV1)
	}
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	sep := "["
	for ; err == nil; obj, err = it.Next(r.Context()) {
		name := obj.Key[strings.LastIndex(obj.Key, "/")+1:]
		if !validName.MatchString(name) || obj.Key != key(typ, name) {
			continue
		}
		_, _ = io.WriteString(w, sep)
		sep = ","
		if v2 {
			err = enc.Encode(listEntry{Name: name, Size: obj.Size})
		} else {
			err = enc.Encode(name)
		}
		if err != nil {
			break
		}
	}
	if !errors.Is(err, io.EOF) {
		h.log.Error(err, "cannot list "+typ)
		panic(http.ErrAbortHandler)
	}
	if sep == "[" {
		_, _ = io.WriteString(w, sep)
	}
	_, _ = io.WriteString(w, "]\n")
}
