package accessor

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/gcerrors"
)

func TestMint(t *testing.T) {
	exp := time.Date(2026, 12, 13, 0, 0, 0, 0, time.UTC).Unix()
	cases := map[string]struct {
		reason string
		key    string
		grant  Grant
		ok     bool
	}{
		"Repository": {
			reason: "A grant over a repository's clean prefix is minted.",
			key:    "k", grant: Grant{Prefixes: []string{"tenant/app/"}, Expires: exp}, ok: true,
		},
		"NoPrefix": {
			reason: "A grant over no prefix would be meaningless and is refused.",
			key:    "k", grant: Grant{Expires: exp},
		},
		"WholeStorage": {
			reason: "A grant over the storage's root is refused: it would reach every tenant.",
			key:    "k", grant: Grant{Prefixes: []string{"/"}, Expires: exp},
		},
		"Climbs": {
			reason: "A prefix that climbs out is refused.",
			key:    "k", grant: Grant{Prefixes: []string{"tenant/../other/"}, Expires: exp},
		},
		"NoSlash": {
			reason: "A prefix without its trailing slash would also reach its siblings (app/ and app-2/) and is refused.",
			key:    "k", grant: Grant{Prefixes: []string{"tenant/app"}, Expires: exp},
		},
		"NoKey": {
			reason: "Without the accessor's token nothing is signed.",
			grant:  Grant{Prefixes: []string{"tenant/app/"}, Expires: exp},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tok, err := Mint(tc.key, tc.grant)
			if (err == nil) != tc.ok {
				t.Fatalf("\n%s\nMint(...): error %v, want ok %t", tc.reason, err, tc.ok)
			}
			if err != nil {
				return
			}
			g, err := verifyGrant(tc.key, tok, time.Unix(exp-1, 0))
			if err != nil {
				t.Fatalf("\n%s\nverifyGrant(minted): %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.grant, *g); diff != "" {
				t.Errorf("\n%s\nverifyGrant(minted): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestGrantExpiry(t *testing.T) {
	a := GrantExpiry(time.Date(2026, 12, 5, 0, 0, 1, 0, time.UTC))
	b := GrantExpiry(time.Date(2026, 12, 5, 23, 59, 0, 0, time.UTC))
	c := GrantExpiry(time.Date(2026, 12, 6, 0, 0, 1, 0, time.UTC))
	if !a.Equal(b) || !c.Equal(a.Add(GrantRenewal)) {
		t.Errorf("GrantExpiry: same day %v and %v, next day %v; want equal within a day and a day apart across one", a, b, c)
	}
	if got := a.Sub(time.Date(2026, 12, 5, 0, 0, 1, 0, time.UTC)); got < GrantLifetime-GrantRenewal {
		t.Errorf("GrantExpiry: a grant minted now lasts %v, want at least %v", got, GrantLifetime-GrantRenewal)
	}
}

// TestGrantServed drives the accessor through its client with scoped
// tokens: the grant's repository is served whole, everything else of the
// storage is refused as PermissionDenied.
func TestGrantServed(t *testing.T) {
	files, err := fileblob.OpenBucket(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	const key = "accessor-token"
	srv := httptest.NewServer(&Server{Bucket: files, Token: key, Now: func() time.Time { return now }})
	defer srv.Close()
	ctx := context.Background()
	for _, k := range []string{"tenant/app/repository.yaml", "other/db/repository.yaml", "tenant/app-2/repository.yaml", "metadata.yaml"} {
		if err := files.WriteAll(ctx, k, []byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	mint := func(g Grant) string {
		tok, err := Mint(key, g)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := mint(Grant{Prefixes: []string{"tenant/app/"}, Expires: now.Add(time.Hour).Unix(), Subject: "demo/app"})
	forged := mint(Grant{Prefixes: []string{"tenant/app/"}, Expires: now.Add(time.Hour).Unix()})
	forged = strings.Replace(forged, forged[len(grantPrefix):len(grantPrefix)+4], "AAAA", 1)
	otherKey, err := Mint("another-storage", Grant{Prefixes: []string{"tenant/app/"}, Expires: now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	expired := mint(Grant{Prefixes: []string{"tenant/app/"}, Expires: now.Unix()})
	readOnly := mint(Grant{Prefixes: []string{"tenant/app/"}, Expires: now.Add(time.Hour).Unix(), Subject: "demo/restore", ReadOnly: true})
	lock := "tenant/app/repository/v1/s/c/locks/" + strings.Repeat("0f", 32)

	open := func(tok string) *blob.Bucket {
		b, err := OpenBucket(srv.URL, tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	list := func(b *blob.Bucket, prefix string) error {
		_, err := b.List(&blob.ListOptions{Prefix: prefix}).Next(ctx)
		if err == io.EOF {
			return nil
		}
		return err
	}
	cases := map[string]struct {
		reason string
		token  string
		do     func(b *blob.Bucket) error
		want   gcerrors.ErrorCode
	}{
		"ReadOwn": {
			reason: "The grant's repository is readable.",
			token:  valid,
			do:     func(b *blob.Bucket) error { _, err := b.ReadAll(ctx, "tenant/app/repository.yaml"); return err },
			want:   gcerrors.OK,
		},
		"WriteListDeleteOwn": {
			reason: "Under its prefix a grant writes, lists, copies and deletes as restic needs.",
			token:  valid,
			do: func(b *blob.Bucket) error {
				if err := b.WriteAll(ctx, "tenant/app/repository/v1/s/c/config", []byte("x"), nil); err != nil {
					return err
				}
				if err := list(b, "tenant/app/repository/v1/"); err != nil {
					return err
				}
				if err := b.Copy(ctx, "tenant/app/x", "tenant/app/repository/v1/s/c/config", nil); err != nil {
					return err
				}
				return b.Delete(ctx, "tenant/app/x")
			},
			want: gcerrors.OK,
		},
		"ReadOther": {
			reason: "Another tenant's repository is refused.",
			token:  valid,
			do:     func(b *blob.Bucket) error { _, err := b.ReadAll(ctx, "other/db/repository.yaml"); return err },
			want:   gcerrors.PermissionDenied,
		},
		"ReadSibling": {
			reason: "A sibling whose name starts like the grant's repository is refused.",
			token:  valid,
			do:     func(b *blob.Bucket) error { _, err := b.ReadAll(ctx, "tenant/app-2/repository.yaml"); return err },
			want:   gcerrors.PermissionDenied,
		},
		"ReadStorageRecord": {
			reason: "The storage's own record is beyond a repository's grant.",
			token:  valid,
			do:     func(b *blob.Bucket) error { _, err := b.ReadAll(ctx, "metadata.yaml"); return err },
			want:   gcerrors.PermissionDenied,
		},
		"Climb": {
			reason: "A key that climbs out of the grant's prefix is refused.",
			token:  valid,
			do: func(b *blob.Bucket) error {
				_, err := b.ReadAll(ctx, "tenant/app/../../other/db/repository.yaml")
				return err
			},
			want: gcerrors.PermissionDenied,
		},
		"ListAll": {
			reason: "Listing the whole storage is refused.",
			token:  valid,
			do:     func(b *blob.Bucket) error { return list(b, "") },
			want:   gcerrors.PermissionDenied,
		},
		"ListParent": {
			reason: "Listing the grant's parent, which holds its siblings, is refused.",
			token:  valid,
			do:     func(b *blob.Bucket) error { return list(b, "tenant/") },
			want:   gcerrors.PermissionDenied,
		},
		"CopyOut": {
			reason: "Copying the grant's data to a key beyond it is refused.",
			token:  valid,
			do:     func(b *blob.Bucket) error { return b.Copy(ctx, "other/db/stolen", "tenant/app/repository.yaml", nil) },
			want:   gcerrors.PermissionDenied,
		},
		"CopyIn": {
			reason: "Copying another tenant's data into the grant's prefix is refused.",
			token:  valid,
			do:     func(b *blob.Bucket) error { return b.Copy(ctx, "tenant/app/stolen", "other/db/repository.yaml", nil) },
			want:   gcerrors.PermissionDenied,
		},
		"Forged": {
			reason: "A grant whose claims were changed after signing is refused.",
			token:  forged,
			do:     func(b *blob.Bucket) error { _, err := b.ReadAll(ctx, "tenant/app/repository.yaml"); return err },
			want:   gcerrors.PermissionDenied,
		},
		"SignedByAnother": {
			reason: "A grant signed for another storage is refused.",
			token:  otherKey,
			do:     func(b *blob.Bucket) error { _, err := b.ReadAll(ctx, "tenant/app/repository.yaml"); return err },
			want:   gcerrors.PermissionDenied,
		},
		"Expired": {
			reason: "An expired grant is refused.",
			token:  expired,
			do:     func(b *blob.Bucket) error { _, err := b.ReadAll(ctx, "tenant/app/repository.yaml"); return err },
			want:   gcerrors.PermissionDenied,
		},
		"ReadOnlyReads": {
			reason: "A read-only grant reads and lists its repository.",
			token:  readOnly,
			do: func(b *blob.Bucket) error {
				if _, err := b.ReadAll(ctx, "tenant/app/repository.yaml"); err != nil {
					return err
				}
				return list(b, "tenant/app/")
			},
			want: gcerrors.OK,
		},
		"ReadOnlyLocks": {
			reason: "A read-only grant takes and releases restic's lock, as restic's restore does.",
			token:  readOnly,
			do: func(b *blob.Bucket) error {
				if err := b.WriteAll(ctx, lock, []byte("lock"), nil); err != nil {
					return err
				}
				return b.Delete(ctx, lock)
			},
			want: gcerrors.OK,
		},
		"ReadOnlyWrite": {
			reason: "A read-only grant may not write its repository's data.",
			token:  readOnly,
			do: func(b *blob.Bucket) error {
				return b.WriteAll(ctx, "tenant/app/repository/v1/s/c/snapshots/"+strings.Repeat("0f", 32), []byte("x"), nil)
			},
			want: gcerrors.PermissionDenied,
		},
		"ReadOnlyDelete": {
			reason: "A read-only grant may not delete its repository's data.",
			token:  readOnly,
			do:     func(b *blob.Bucket) error { return b.Delete(ctx, "tenant/app/repository.yaml") },
			want:   gcerrors.PermissionDenied,
		},
		"ReadOnlyCopy": {
			reason: "A read-only grant may not copy, even within its prefix.",
			token:  readOnly,
			do: func(b *blob.Bucket) error {
				return b.Copy(ctx, "tenant/app/repository/v1/s/c/locks/"+strings.Repeat("1f", 32), "tenant/app/repository.yaml", nil)
			},
			want: gcerrors.PermissionDenied,
		},
		"AccessorToken": {
			reason: "The accessor's own token (the provider's) still reaches everything.",
			token:  key,
			do:     func(b *blob.Bucket) error { return list(b, "") },
			want:   gcerrors.OK,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.do(open(tc.token))
			if got := gcerrors.Code(err); got != tc.want {
				t.Errorf("\n%s\ngot code %v (%v), want %v", tc.reason, got, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), tc.token) {
				t.Errorf("\n%s\nthe error quotes the token: %v", tc.reason, err)
			}
		})
	}
	if _, err := files.ReadAll(ctx, "other/db/stolen"); gcerrors.Code(err) != gcerrors.NotFound {
		t.Errorf("a refused copy left other/db/stolen behind: %v", err)
	}
	if got, err := files.ReadAll(ctx, "tenant/app/repository.yaml"); err != nil || string(got) != "tenant/app/repository.yaml" {
		t.Errorf("a read-only grant changed tenant/app/repository.yaml: %q, %v", got, err)
	}
}

// FuzzGrantReaches asks the grant check about arbitrary keys, copies and
// listings under a grant over tenant/app/: whatever it lets through names
// only plain keys under that prefix and lists only under it.
func FuzzGrantReaches(f *testing.F) {
	for _, seed := range []string{
		"tenant/app/config", "tenant/app/", "tenant/app", "tenant/app-2/x", "tenant/app/../other/x", "tenant/app//x",
		"/tenant/app/x", "tenant/app/./x", "other/x", "", "tenant/app/%2e%2e/x", "tenant/app/\x00",
	} {
		f.Add(uint8(0), seed, "")
		f.Add(uint8(1), seed, "tenant/app/x")
		f.Add(uint8(2), seed, "")
	}
	g := &Grant{Prefixes: []string{"tenant/app/"}}
	f.Fuzz(func(t *testing.T, op uint8, key, other string) {
		path := []string{"/v1/object", "/v1/copy", "/v1/list"}[op%3]
		q := url.Values{}
		switch path {
		case "/v1/copy":
			q.Set("src", key)
			q.Set("dst", other)
		case "/v1/list":
			q.Set("prefix", key)
		default:
			q.Set("key", key)
		}
		r := httptest.NewRequest(http.MethodGet, "http://accessor"+path+"?"+q.Encode(), nil)
		if grantReaches(g, r) != nil {
			return
		}
		for _, p := range []string{"key", "src", "dst"} {
			if k, ok := r.URL.Query()[p]; ok && (!strings.HasPrefix(k[0], "tenant/app/") || !plainKey(k[0])) {
				t.Fatalf("the grant let %s %q through", p, k[0])
			}
		}
		if r.URL.Path == "/v1/list" && !strings.HasPrefix(r.URL.Query().Get("prefix"), "tenant/app/") {
			t.Fatalf("the grant let a listing of %q through", r.URL.Query().Get("prefix"))
		}
		if r.URL.Path != "/v1/list" && len(r.URL.Query()) == 0 {
			t.Fatalf("the grant let a request naming no key through")
		}
	})
}
