package accessor

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/gcerrors"
)

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection dropped")
	}
	n := min(len(p), r.n)
	for i := range n {
		p[i] = 'x'
	}
	r.n -= n
	return n, nil
}

func TestServer(t *testing.T) {
	files, err := fileblob.OpenBucket(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	srv := httptest.NewServer(&Server{Bucket: files, Token: "right"})
	defer srv.Close()
	ctx := context.Background()

	cases := map[string]struct {
		reason string
		token  string
		do     func(t *testing.T, token string) error
		want   gcerrors.ErrorCode
	}{
		"WrongToken": {
			reason: "A request with the wrong token is refused as PermissionDenied and the token is not echoed.",
			token:  "tok-9f8e7d6c",
			do: func(t *testing.T, token string) error {
				b, _ := OpenBucket(srv.URL, token, srv.Client())
				_, err := b.ReadAll(ctx, "metadata.yaml")
				if err != nil && strings.Contains(err.Error(), token) {
					t.Errorf("the error %q carries the token", err)
				}
				return err
			},
			want: gcerrors.PermissionDenied,
		},
		"Missing": {
			reason: "Reading an absent object is NotFound.",
			token:  "right",
			do: func(_ *testing.T, token string) error {
				b, _ := OpenBucket(srv.URL, token, srv.Client())
				_, err := b.ReadAll(ctx, "absent")
				return err
			},
			want: gcerrors.NotFound,
		},
		"TruncatedUpload": {
			reason: "An upload whose body breaks off leaves no object behind.",
			token:  "right",
			do: func(t *testing.T, token string) error {
				req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v1/object?key=partial", io.NopCloser(&failingReader{n: 1 << 20}))
				req.Header.Set("Authorization", "Bearer "+token)
				if resp, err := srv.Client().Do(req); err == nil {
					resp.Body.Close()
				}
				ok, err := files.Exists(ctx, "partial")
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					t.Errorf("a partial object exists after a broken upload")
				}
				return nil
			},
			want: gcerrors.OK,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.do(t, tc.token)
			if diff := cmp.Diff(tc.want, gcerrors.Code(err)); diff != "" {
				t.Errorf("%s\ncode: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
