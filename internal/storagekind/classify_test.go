package storagekind

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gocloud.dev/gcerrors"

	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/storage"
)

// TestClassify: every storage error a condition shows goes through one
// classifier, whatever path it took.
func TestClassify(t *testing.T) {
	// An accessor that refuses every token answers PermissionDenied.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad token", http.StatusUnauthorized)
	}))
	defer srv.Close()
	b, err := accessor.OpenBucket(srv.URL, "wrong", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, accessorErr := b.ReadAll(context.Background(), "metadata.yaml")
	if accessorErr == nil {
		t.Fatal("the refusing accessor answered")
	}

	cases := map[string]struct {
		reason string
		err    error
		want   string
	}{
		"None": {
			reason: "No error has no reason.",
		},
		"AccessorNotReady": {
			reason: "A local storage whose accessor has no ready pod says so.",
			err:    &accessor.ErrNotReady{Reason: "no ready pod"},
			want:   ReasonAccessorNotReady,
		},
		"AccessorRefused": {
			reason: "An accessor's refusal is a permission problem.",
			err:    accessorErr,
			want:   storage.ReasonPermissionDenied,
		},
		"Unknown": {
			reason: "What no backend explains is Unknown, not a guess.",
			err:    errors.New("something else"),
			want:   storage.ReasonUnknown,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, msg := Classify(tc.err)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nClassify(%v): -want +got:\n%s", tc.reason, tc.err, diff)
			}
			if tc.err != nil && msg == "" {
				t.Errorf("%s\nClassify(%v) gave no message", tc.reason, tc.err)
			}
			if strings.Contains(msg, "wrong") {
				t.Errorf("%s\nClassify(%v): the message quotes the token: %q", tc.reason, tc.err, msg)
			}
		})
	}
	if diff := cmp.Diff(gcerrors.PermissionDenied, gcerrors.Code(accessorErr)); diff != "" {
		t.Errorf("the accessor's refusal: -want +got code:\n%s", diff)
	}
}
