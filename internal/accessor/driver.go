package accessor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// OpenBucket returns a bucket served by the accessor at baseURL
// (http://host:port).
func OpenBucket(baseURL, token string, client *http.Client) (*blob.Bucket, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("cannot parse accessor address %q", baseURL)
	}
	if client == nil {
		// restic writes and reads several packs at once through one
		// bucket: keep a connection for each, not the default two, so
		// that none is closed and dialled again between requests.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32
		client = &http.Client{Timeout: 10 * time.Minute, Transport: t}
	}
	return blob.NewBucket(&bucket{base: u, token: token, client: client}), nil
}

// bucket is the client side of the accessor protocol.
type bucket struct {
	base   *url.URL
	token  string
	client *http.Client
}

// accessorError is an error the accessor (or the way to it) reported.
type accessorError struct {
	code gcerrors.ErrorCode
	msg  string
}

func (e *accessorError) Error() string { return e.msg }

func (b *bucket) ErrorCode(err error) gcerrors.ErrorCode {
	var ae *accessorError
	if errors.As(err, &ae) {
		return ae.code
	}
	return gcerrors.Unknown
}

func (b *bucket) As(any) bool             { return false }
func (b *bucket) ErrorAs(error, any) bool { return false }
func (b *bucket) Close() error            { return nil }
func (b *bucket) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", &accessorError{code: gcerrors.Unimplemented, msg: "the storage accessor does not sign URLs"}
}

func (b *bucket) url(path string, q url.Values) string {
	u := *b.base
	u.Path = path
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends a request and turns an error response into an accessorError.
func (b *bucket) do(ctx context.Context, method, path string, q url.Values, body io.Reader, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, b.url(path, q), body)
	if err != nil {
		return nil, &accessorError{code: gcerrors.InvalidArgument, msg: fmt.Sprintf("cannot make accessor request: %v", err)}
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, &accessorError{code: gcerrors.Unknown, msg: fmt.Sprintf("cannot reach the storage accessor at %s: %v", b.base.Host, unwrapURLError(err))}
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	var eb errorBody
	if method == http.MethodHead || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&eb) != nil {
		eb = errorBody{Code: codes[codeForStatus(resp.StatusCode)], Message: resp.Status}
	}
	return nil, &accessorError{code: codeOf(eb.Code), msg: "storage accessor: " + eb.Message}
}

// unwrapURLError drops the request URL (which names the object) from a
// transport error, keeping the cause.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func codeForStatus(s int) gcerrors.ErrorCode {
	switch s {
	case http.StatusNotFound:
		return gcerrors.NotFound
	case http.StatusPreconditionFailed:
		return gcerrors.FailedPrecondition
	case http.StatusBadRequest:
		return gcerrors.InvalidArgument
	case http.StatusUnauthorized, http.StatusForbidden:
		return gcerrors.PermissionDenied
	case http.StatusNotImplemented:
		return gcerrors.Unimplemented
	}
	return gcerrors.Internal
}

func (b *bucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	resp, err := b.do(ctx, http.MethodHead, "/v1/object", url.Values{"key": {key}}, nil, nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	h := resp.Header
	size, _ := strconv.ParseInt(h.Get(headerSize), 10, 64)
	mod, _ := time.Parse(time.RFC3339Nano, h.Get(headerModTime))
	md5, _ := decodeMD5(h.Get(headerMD5))
	a, err := decodeAttrs(h.Get(headerAttrs))
	if err != nil {
		return nil, &accessorError{code: gcerrors.Internal, msg: fmt.Sprintf("cannot decode object attributes: %v", err)}
	}
	return &driver.Attributes{
		ContentType: h.Get(headerContentType), ModTime: mod, Size: size, MD5: md5, ETag: h.Get(headerETag),
		CacheControl: a.CacheControl, ContentDisposition: a.ContentDisposition,
		ContentEncoding: a.ContentEncoding, ContentLanguage: a.ContentLanguage, Metadata: a.Metadata,
	}, nil
}

func (b *bucket) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if opts.BeforeList != nil {
		if err := opts.BeforeList(noAs); err != nil {
			return nil, err
		}
	}
	q := url.Values{"prefix": {opts.Prefix}, "delimiter": {opts.Delimiter}, "pageSize": {strconv.Itoa(opts.PageSize)}}
	if len(opts.PageToken) > 0 {
		q.Set("pageToken", string(opts.PageToken))
	}
	resp, err := b.do(ctx, http.MethodGet, "/v1/list", q, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var page listPage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, &accessorError{code: gcerrors.Internal, msg: fmt.Sprintf("cannot decode accessor list: %v", err)}
	}
	out := &driver.ListPage{NextPageToken: page.Next, Objects: make([]*driver.ListObject, 0, len(page.Objects))}
	for _, o := range page.Objects {
		out.Objects = append(out.Objects, &driver.ListObject{Key: o.Key, ModTime: o.ModTime, Size: o.Size, MD5: o.MD5, IsDir: o.IsDir})
	}
	return out, nil
}

func (b *bucket) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	if opts != nil && opts.BeforeRead != nil {
		if err := opts.BeforeRead(noAs); err != nil {
			return nil, err
		}
	}
	q := url.Values{"key": {key}, "offset": {strconv.FormatInt(offset, 10)}, "length": {strconv.FormatInt(length, 10)}}
	resp, err := b.do(ctx, http.MethodGet, "/v1/object", q, nil, nil)
	if err != nil {
		return nil, err
	}
	size, _ := strconv.ParseInt(resp.Header.Get(headerSize), 10, 64)
	mod, _ := time.Parse(time.RFC3339Nano, resp.Header.Get(headerModTime))
	return &reader{body: resp.Body, attrs: driver.ReaderAttributes{ContentType: resp.Header.Get(headerContentType), ModTime: mod, Size: size}}, nil
}

type reader struct {
	body  io.ReadCloser
	attrs driver.ReaderAttributes
}

func (r *reader) Read(p []byte) (int, error)           { return r.body.Read(p) }
func (r *reader) Close() error                         { return r.body.Close() }
func (r *reader) Attributes() *driver.ReaderAttributes { return &r.attrs }
func (r *reader) As(any) bool                          { return false }

// NewTypedWriter streams the object to the accessor as it is written; the
// accessor commits it only when the whole body arrived.
func (b *bucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	if opts != nil && opts.BeforeWrite != nil {
		if err := opts.BeforeWrite(noAs); err != nil {
			return nil, err
		}
	}
	pr, pw := io.Pipe()
	q := url.Values{"key": {key}}
	if opts != nil && opts.IfNotExist {
		q.Set("ifNotExist", "true")
	}
	h := http.Header{headerContentType: {contentType}}
	if opts != nil {
		h.Set(headerAttrs, attrs{
			CacheControl: opts.CacheControl, ContentDisposition: opts.ContentDisposition,
			ContentEncoding: opts.ContentEncoding, ContentLanguage: opts.ContentLanguage, Metadata: opts.Metadata,
		}.encode())
		if len(opts.ContentMD5) > 0 {
			h.Set(headerMD5, encodeMD5(opts.ContentMD5))
		}
	}
	w := &writer{ctx: ctx, pw: pw, done: make(chan error, 1)}
	go func() {
		resp, err := b.do(ctx, http.MethodPut, "/v1/object", q, pr, h)
		if err == nil {
			resp.Body.Close()
		}
		pr.CloseWithError(err)
		w.done <- err
	}()
	return w, nil
}

type writer struct {
	ctx  context.Context
	pw   *io.PipeWriter
	done chan error
}

func (w *writer) Write(p []byte) (int, error) { return w.pw.Write(p) }

// Close ends the upload. A writer whose context ended breaks the body off
// instead of finishing it, so the accessor never commits a canceled write,
// however the cancellation and the close race.
func (w *writer) Close() error {
	if err := w.ctx.Err(); err != nil {
		w.pw.CloseWithError(err)
		<-w.done
		return &accessorError{code: gcerrors.Canceled, msg: "storage accessor: write canceled"}
	}
	if err := w.pw.Close(); err != nil {
		return err
	}
	return <-w.done
}

func (b *bucket) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	if opts != nil && opts.BeforeCopy != nil {
		if err := opts.BeforeCopy(noAs); err != nil {
			return err
		}
	}
	resp, err := b.do(ctx, http.MethodPost, "/v1/copy", url.Values{"src": {srcKey}, "dst": {dstKey}}, nil, nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

func (b *bucket) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	if opts != nil && opts.BeforeDelete != nil {
		if err := opts.BeforeDelete(noAs); err != nil {
			return err
		}
	}
	resp, err := b.do(ctx, http.MethodDelete, "/v1/object", url.Values{"key": {key}}, nil, nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// noAs is the As function of the hooks: the accessor exposes no
// provider-specific types.
func noAs(any) bool { return false }

func encodeMD5(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func decodeMD5(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// IsAccessorError says whether err came from an accessor or the way to it.
// Its message names no credential, so it may be shown to users.
func IsAccessorError(err error) bool {
	var ae *accessorError
	return errors.As(err, &ae)
}
