package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// wrapped is the driver every bucket from Open goes through. It sits on top
// of the provider's bucket and
//   - bounds the operations in flight to the spec's maxConnections: a slot is
//     held from the start of a call to its end, and for readers and writers
//     until they are closed;
//   - removes every value of the credential Secret from the errors it
//     passes on, so that no error, log or condition built from them can leak
//     a credential whatever the backend's SDK put in its message;
//   - releases what the opener made beside the bucket when it is closed.
type wrapped struct {
	inner   *blob.Bucket
	slots   chan struct{} // nil: unbounded
	secrets [][]byte
	closers []func()
	// shared buckets (ProviderMem) outlive the wrapper.
	shared bool
}

var _ driver.Bucket = (*wrapped)(nil)

// newWrapped wraps b; maxConnections < 1 means unbounded.
func newWrapped(b *blob.Bucket, maxConnections int64, secret map[string][]byte, closers ...func()) *wrapped {
	w := &wrapped{inner: b, closers: closers, secrets: secretValues(secret)}
	if maxConnections > 0 {
		w.slots = make(chan struct{}, maxConnections)
	}
	return w
}

// secretValues lists the values worth redacting: short values (a region, a
// "true") would make every message unreadable and reveal nothing.
func secretValues(secret map[string][]byte) [][]byte {
	var vs [][]byte
	for _, v := range secret {
		v = bytes.TrimSpace(v)
		if len(v) >= 6 {
			vs = append(vs, v)
		}
		// A multi-line value (a key file) is also redacted line by line, so
		// that a message quoting one line of it leaks nothing.
		for _, line := range bytes.Split(v, []byte("\n")) {
			if line = bytes.TrimSpace(line); len(line) >= 16 {
				vs = append(vs, line)
			}
		}
	}
	return vs
}

func (w *wrapped) acquire(ctx context.Context) error {
	if w.slots == nil {
		return nil
	}
	select {
	case w.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *wrapped) release() {
	if w.slots != nil {
		<-w.slots
	}
}

func (w *wrapped) redact(err error) error {
	if err == nil || len(w.secrets) == 0 {
		return err
	}
	return redactValues(err, w.secrets)
}

// ErrorCode reports the code of an error the inner bucket returned.
func (w *wrapped) ErrorCode(err error) gcerrors.ErrorCode {
	if errors.Is(err, context.Canceled) {
		return gcerrors.Canceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return gcerrors.DeadlineExceeded
	}
	return gcerrors.Code(err)
}

func (w *wrapped) As(i any) bool { return w.inner.As(i) }

func (w *wrapped) ErrorAs(err error, i any) bool { return w.inner.ErrorAs(err, i) }

func (w *wrapped) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	if err := w.acquire(ctx); err != nil {
		return nil, err
	}
	defer w.release()
	a, err := w.inner.Attributes(ctx, key)
	if err != nil {
		return nil, w.redact(err)
	}
	return &driver.Attributes{
		CacheControl:       a.CacheControl,
		ContentDisposition: a.ContentDisposition,
		ContentEncoding:    a.ContentEncoding,
		ContentLanguage:    a.ContentLanguage,
		ContentType:        a.ContentType,
		Metadata:           a.Metadata,
		CreateTime:         a.CreateTime,
		ModTime:            a.ModTime,
		Size:               a.Size,
		MD5:                a.MD5,
		ETag:               a.ETag,
		AsFunc:             a.As,
	}, nil
}

// defaultPageSize is used when a lister asks for "the driver's default".
const defaultPageSize = 1000

func (w *wrapped) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if err := w.acquire(ctx); err != nil {
		return nil, err
	}
	defer w.release()
	token := opts.PageToken
	if len(token) == 0 {
		token = blob.FirstPageToken
	}
	size := opts.PageSize
	if size <= 0 {
		size = defaultPageSize
	}
	objs, next, err := w.inner.ListPage(ctx, token, size, &blob.ListOptions{
		Prefix:     opts.Prefix,
		Delimiter:  opts.Delimiter,
		BeforeList: opts.BeforeList,
	})
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, w.redact(notFoundMeansBucket(err))
	}
	page := &driver.ListPage{NextPageToken: next}
	for _, o := range objs {
		page.Objects = append(page.Objects, &driver.ListObject{
			Key: o.Key, ModTime: o.ModTime, Size: o.Size, MD5: o.MD5, IsDir: o.IsDir, AsFunc: o.As,
		})
	}
	return page, nil
}

func (w *wrapped) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	if err := w.acquire(ctx); err != nil {
		return nil, err
	}
	r, err := w.inner.NewRangeReader(ctx, key, offset, length, &blob.ReaderOptions{BeforeRead: opts.BeforeRead})
	if err != nil {
		w.release()
		return nil, w.redact(err)
	}
	return &wrappedReader{r: r, w: w}, nil
}

func (w *wrapped) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	if err := w.acquire(ctx); err != nil {
		return nil, err
	}
	return &wrappedWriter{ctx: ctx, key: key, w: w, opts: &blob.WriterOptions{
		BufferSize:         opts.BufferSize,
		MaxConcurrency:     opts.MaxConcurrency,
		CacheControl:       opts.CacheControl,
		ContentDisposition: opts.ContentDisposition,
		ContentEncoding:    opts.ContentEncoding,
		ContentLanguage:    opts.ContentLanguage,
		ContentType:        contentType,
		// ContentMD5 stays with the outer writer, which checks it and
		// aborts this one on a mismatch: given to the inner writer it would
		// turn Upload back into the Write path.
		Metadata:                    opts.Metadata,
		DisableContentTypeDetection: opts.DisableContentTypeDetection,
		BeforeWrite:                 opts.BeforeWrite,
		IfNotExist:                  opts.IfNotExist,
	}}, nil
}

func (w *wrapped) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	if err := w.acquire(ctx); err != nil {
		return err
	}
	defer w.release()
	return w.redact(w.inner.Copy(ctx, dstKey, srcKey, &blob.CopyOptions{BeforeCopy: opts.BeforeCopy}))
}

func (w *wrapped) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	if err := w.acquire(ctx); err != nil {
		return err
	}
	defer w.release()
	return w.redact(w.inner.DeleteWithOptions(ctx, key, &blob.DeleteOptions{BeforeDelete: opts.BeforeDelete}))
}

func (w *wrapped) SignedURL(ctx context.Context, key string, opts *driver.SignedURLOptions) (string, error) {
	u, err := w.inner.SignedURL(ctx, key, &blob.SignedURLOptions{
		Expiry:                   opts.Expiry,
		Method:                   opts.Method,
		ContentType:              opts.ContentType,
		EnforceAbsentContentType: opts.EnforceAbsentContentType,
		BeforeSign:               opts.BeforeSign,
	})
	return u, w.redact(err)
}

func (w *wrapped) Close() error {
	var err error
	if !w.shared {
		err = w.inner.Close()
	}
	for _, c := range w.closers {
		c()
	}
	return w.redact(err)
}

// wrappedReader holds its slot until it is closed.
type wrappedReader struct {
	r      *blob.Reader
	w      *wrapped
	closed bool
}

func (r *wrappedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = r.w.redact(err)
	}
	return n, err
}

func (r *wrappedReader) Close() error {
	err := r.r.Close()
	if !r.closed {
		r.closed = true
		r.w.release()
	}
	return r.w.redact(err)
}

func (r *wrappedReader) Attributes() *driver.ReaderAttributes {
	return &driver.ReaderAttributes{ContentType: r.r.ContentType(), ModTime: r.r.ModTime(), Size: r.r.Size()}
}

func (r *wrappedReader) As(i any) bool { return r.r.As(i) }

// wrappedWriter holds its slot until it is closed. It always hands the
// inner bucket one reader to upload (Bucket.Upload): written bytes go
// through a pipe. That is the path every driver streams best, and it keeps
// clear of drivers whose Write path mishandles a failed upload (azureblob
// in gocloud v0.47.0 dereferences a nil pipe when the upload fails).
type wrappedWriter struct {
	ctx  context.Context
	key  string
	opts *blob.WriterOptions
	w    *wrapped

	pw     *io.PipeWriter
	done   chan struct{}
	err    error // of the upload, valid once done is closed
	closed bool
}

func (w *wrappedWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if w.pw == nil {
		pr, pw := io.Pipe()
		w.pw, w.done = pw, make(chan struct{})
		go func() {
			defer close(w.done)
			w.err = notFoundMeansBucket(w.w.inner.Upload(w.ctx, w.key, pr, w.opts))
			// Unblock a Write the uploader will never read.
			if w.err != nil {
				pr.CloseWithError(w.err)
			} else {
				pr.CloseWithError(io.ErrClosedPipe)
			}
		}()
	}
	n, err := w.pw.Write(p)
	if err != nil {
		return n, w.w.redact(err)
	}
	return n, nil
}

// Upload streams r as the whole object.
func (w *wrappedWriter) Upload(r io.Reader) error {
	w.done = make(chan struct{})
	w.err = notFoundMeansBucket(w.w.inner.Upload(w.ctx, w.key, r, w.opts))
	close(w.done)
	return w.w.redact(w.err)
}

func (w *wrappedWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	defer w.w.release()
	switch {
	case w.pw != nil:
		// An aborted write must not end in a complete object: the uploader
		// sees an error, not the end of the data.
		if err := w.ctx.Err(); err != nil {
			_ = w.pw.CloseWithError(err)
		} else {
			_ = w.pw.Close()
		}
		<-w.done
	case w.done == nil:
		// Nothing was written: the object is empty.
		if err := w.ctx.Err(); err != nil {
			return err
		}
		w.err = notFoundMeansBucket(w.w.inner.Upload(w.ctx, w.key, bytes.NewReader(nil), w.opts))
	}
	return w.w.redact(w.err)
}

// redactedError is an error whose message had secret values removed. It
// still unwraps to the original, so that Reason can inspect it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

const redactedMark = "[redacted]"

func redactValues(err error, secrets [][]byte) error {
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		clean = strings.ReplaceAll(clean, string(s), redactedMark)
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// redactError removes the values of secret from err's message.
func redactError(err error, secret map[string][]byte) error {
	if err == nil {
		return nil
	}
	return redactValues(err, secretValues(secret))
}
