package accessor

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Server serves one bucket (normally a fileblob bucket on the mounted
// volume) to holders of its token.
type Server struct {
	Bucket *blob.Bucket
	Token  string
	// Dir, when set, is the directory the bucket keeps its files in; keys
	// are then refused when they are not plain paths or when they pass
	// through a symbolic link, so that a link planted in the volume cannot
	// make the accessor read or write outside it.
	Dir string
	// Now is the clock scoped tokens expire by; nil means time.Now.
	Now func() time.Time
	// Log, when set, is told of each refused request: by its grant's
	// subject when the grant is valid, by where it came from when not.
	Log func(msg string, keysAndValues ...any)
}

// ServeHTTP implements the accessor protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	grant, status, msg := s.authorize(r)
	if status != http.StatusOK {
		if s.Log != nil {
			// Who tried is all that is logged: never the token.
			s.Log("refused a request", "why", msg, "from", r.RemoteAddr, "path", r.URL.Path)
		}
		writeError(w, status, gcerrors.PermissionDenied, msg)
		return
	}
	q := r.URL.Query()
	for _, p := range []string{"key", "src", "dst"} {
		if k, ok := q[p]; ok && len(k) > 0 {
			if err := s.checkKey(k[0]); err != nil {
				writeError(w, http.StatusBadRequest, gcerrors.InvalidArgument, err.Error())
				return
			}
		}
	}
	if grant != nil {
		if err := grantReaches(grant, r); err != nil {
			if s.Log != nil {
				s.Log("refused a request beyond its grant", "subject", grant.Subject, "path", r.URL.Path)
			}
			writeError(w, http.StatusForbidden, gcerrors.PermissionDenied, err.Error())
			return
		}
	}
	var err error
	switch {
	case r.URL.Path == "/v1/object" && r.Method == http.MethodGet:
		err = s.read(w, r)
	case r.URL.Path == "/v1/object" && r.Method == http.MethodHead:
		err = s.attributes(w, r)
	case r.URL.Path == "/v1/object" && r.Method == http.MethodPut:
		err = s.write(w, r)
	case r.URL.Path == "/v1/object" && r.Method == http.MethodDelete:
		err = s.Bucket.Delete(r.Context(), q.Get("key"))
	case r.URL.Path == "/v1/copy" && r.Method == http.MethodPost:
		err = s.Bucket.Copy(r.Context(), q.Get("dst"), q.Get("src"), nil)
	case r.URL.Path == "/v1/list" && r.Method == http.MethodGet:
		err = s.list(w, r)
	default:
		writeError(w, http.StatusNotFound, gcerrors.Unimplemented, "no such accessor operation")
		return
	}
	if err != nil {
		code := gcerrors.Code(err)
		writeError(w, statusOf(code), code, err.Error())
	}
}

// authorize accepts the accessor's own token (every key) or a scoped token
// it signed (the grant's prefixes); it answers the grant (nil for the
// accessor's token), and else the status and message of the refusal.
func (s *Server) authorize(r *http.Request) (*Grant, int, string) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || s.Token == "" {
		return nil, http.StatusUnauthorized, "the accessor token is missing or wrong"
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.Token)) == 1 {
		return nil, http.StatusOK, ""
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	g, err := verifyGrant(s.Token, got, now())
	if err != nil {
		return nil, http.StatusUnauthorized, err.Error()
	}
	return g, http.StatusOK, ""
}

// grantReaches says why a request goes beyond g, or nil: every key it
// names is a plain path under one of g's prefixes, and a listing lists
// under one of them.
func grantReaches(g *Grant, r *http.Request) error {
	q := r.URL.Query()
	keys := 0
	for _, p := range []string{"key", "src", "dst"} {
		k, ok := q[p]
		if !ok {
			continue
		}
		keys++
		if len(k) != 1 || !plainKey(k[0]) || !g.allows(k[0]) {
			return fmt.Errorf("the storage grant does not reach %s %q: it reaches only its repositories' prefixes", p, strings.Join(k, ","))
		}
	}
	if r.URL.Path == "/v1/list" {
		prefix := q.Get("prefix")
		if !g.allows(prefix) || strings.Contains(prefix, "/../") || strings.Contains(prefix, "//") {
			return fmt.Errorf("the storage grant does not reach a listing of %q: it reaches only its repositories' prefixes", prefix)
		}
		return nil
	}
	if keys == 0 {
		return errors.New("the storage grant reaches only named keys")
	}
	if g.ReadOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
		// A copy writes its destination; a write or delete names one
		// key, which must be a restic lock file.
		if r.URL.Path != "/v1/object" {
			return fmt.Errorf("the storage grant is read-only: it may not copy to %q", q.Get("dst"))
		}
		if key := q.Get("key"); !g.writes(key) {
			return fmt.Errorf("the storage grant is read-only: it may not change %q", key)
		}
	}
	return nil
}

// plainKey says whether key is a relative path of non-empty elements
// other than "." and "..".
func plainKey(key string) bool {
	if key == "" || strings.HasPrefix(key, "/") {
		return false
	}
	for _, p := range strings.Split(key, "/") {
		if p == "" || p == "." || p == ".." {
			return false
		}
	}
	return true
}

func (s *Server) read(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	offset, _ := strconv.ParseInt(q.Get("offset"), 10, 64)
	length := int64(-1)
	if l := q.Get("length"); l != "" {
		length, _ = strconv.ParseInt(l, 10, 64)
	}
	rd, err := s.Bucket.NewRangeReader(r.Context(), q.Get("key"), offset, length, nil)
	if err != nil {
		return err
	}
	defer rd.Close()
	h := w.Header()
	h.Set(headerSize, strconv.FormatInt(rd.Size(), 10))
	h.Set(headerModTime, rd.ModTime().UTC().Format(time.RFC3339Nano))
	h.Set(headerContentType, rd.ContentType())
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rd)
	return nil
}

func (s *Server) attributes(w http.ResponseWriter, r *http.Request) error {
	a, err := s.Bucket.Attributes(r.Context(), r.URL.Query().Get("key"))
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set(headerSize, strconv.FormatInt(a.Size, 10))
	h.Set(headerModTime, a.ModTime.UTC().Format(time.RFC3339Nano))
	h.Set(headerContentType, a.ContentType)
	h.Set(headerETag, a.ETag)
	h.Set(headerAttrs, attrs{
		CacheControl: a.CacheControl, ContentDisposition: a.ContentDisposition,
		ContentEncoding: a.ContentEncoding, ContentLanguage: a.ContentLanguage, Metadata: a.Metadata,
	}.encode())
	if len(a.MD5) > 0 {
		h.Set(headerMD5, encodeMD5(a.MD5))
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) write(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	a, err := decodeAttrs(r.Header.Get(headerAttrs))
	if err != nil {
		writeError(w, http.StatusBadRequest, gcerrors.InvalidArgument, fmt.Sprintf("cannot decode object attributes: %v", err))
		return nil
	}
	md5, err := decodeMD5(r.Header.Get(headerMD5))
	if err != nil {
		writeError(w, http.StatusBadRequest, gcerrors.InvalidArgument, fmt.Sprintf("cannot decode content MD5: %v", err))
		return nil
	}
	opts := &blob.WriterOptions{
		ContentType:                 r.Header.Get(headerContentType),
		DisableContentTypeDetection: true,
		IfNotExist:                  q.Get("ifNotExist") == "true",
		CacheControl:                a.CacheControl,
		ContentDisposition:          a.ContentDisposition,
		ContentEncoding:             a.ContentEncoding,
		ContentLanguage:             a.ContentLanguage,
		Metadata:                    a.Metadata,
		ContentMD5:                  md5,
	}
	// gocloud discards an object whose writer's context ends before Close:
	// a half-received body never becomes an object.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	wr, err := s.Bucket.NewWriter(ctx, q.Get("key"), opts)
	if err != nil {
		return err
	}
	if _, err := io.Copy(wr, r.Body); err != nil {
		cancel()
		_ = wr.Close()
		return err
	}
	return wr.Close()
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	size, _ := strconv.Atoi(q.Get("pageSize"))
	if size <= 0 || size > 1000 {
		size = 1000
	}
	token := blob.FirstPageToken
	if t := q.Get("pageToken"); t != "" {
		token = []byte(t)
	}
	objs, next, err := s.Bucket.ListPage(r.Context(), token, size, &blob.ListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter")})
	if err == io.EOF {
		// The listing is complete: an empty last page.
		objs, next, err = nil, nil, nil
	}
	if err != nil {
		return err
	}
	page := listPage{Objects: make([]listObject, 0, len(objs)), Next: next}
	for _, o := range objs {
		page.Objects = append(page.Objects, listObject{Key: o.Key, ModTime: o.ModTime, Size: o.Size, MD5: o.MD5, IsDir: o.IsDir})
	}
	w.Header().Set(headerContentType, "application/json")
	return json.NewEncoder(w).Encode(page)
}

func statusOf(c gcerrors.ErrorCode) int {
	switch c {
	case gcerrors.NotFound:
		return http.StatusNotFound
	case gcerrors.AlreadyExists, gcerrors.FailedPrecondition:
		return http.StatusPreconditionFailed
	case gcerrors.InvalidArgument:
		return http.StatusBadRequest
	case gcerrors.PermissionDenied:
		return http.StatusForbidden
	case gcerrors.Unimplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, status int, code gcerrors.ErrorCode, msg string) {
	w.Header().Set(headerContentType, "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Code: codes[code], Message: msg})
}

// checkKey refuses, with Dir set, a key whose path in Dir passes through a
// symbolic link (the object itself included), so that a link planted in the
// volume cannot make the accessor read or write outside it. The bucket
// keeps a key at the path the key spells, but for characters it escapes
// (control characters, "//", "../"): the check follows the key as spelt,
// and elements the bucket would escape match no entry and are not links.
// Climbing out with ".." is refused by the bucket itself.
func (s *Server) checkKey(key string) error {
	if s.Dir == "" {
		return nil
	}
	path := s.Dir
	for _, p := range strings.Split(key, "/") {
		if p == "" || p == "." || p == ".." {
			continue
		}
		path = filepath.Join(path, p)
		fi, err := os.Lstat(path)
		if err != nil {
			// Nothing there yet (a new object): nothing to follow.
			return nil
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("key %q passes through a symbolic link in the storage volume", key)
		}
	}
	return nil
}
