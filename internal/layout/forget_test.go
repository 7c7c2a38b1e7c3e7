package layout

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
)

func TestForgetResticSnapshot(t *testing.T) {
	const (
		a = "aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"
		b = "aaaa1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb9999"
		c = "cccc1111bbbb2222cccc3333dddd4444eeee5555ffff6666aaaa7777bbbb8888"
	)
	prefix := "demo/app/repository/v1/nightly/dump/"
	other := "demo/app/repository/v1/nightly/dump-pod-1/"
	cases := map[string]struct {
		reason string
		id     string
		// locks are written beside the snapshots; the forget runs later
		// than them by after.
		locks   []string
		after   time.Duration
		want    []string
		wantErr error
	}{
		"FullID": {
			reason: "A full id removes that snapshot's file only; data, index and the other component stay.",
			id:     c,
			want:   []string{other + "snapshots/" + c, prefix + "data/00/00", prefix + "snapshots/" + a, prefix + "snapshots/" + b},
		},
		"ShortID": {
			reason: "A unique short id, as restic prints it, removes its snapshot.",
			id:     "cccc1111",
			want:   []string{other + "snapshots/" + c, prefix + "data/00/00", prefix + "snapshots/" + a, prefix + "snapshots/" + b},
		},
		"Gone": {
			reason: "A snapshot already forgotten is no error.",
			id:     "dddd0000",
			want:   []string{other + "snapshots/" + c, prefix + "data/00/00", prefix + "snapshots/" + a, prefix + "snapshots/" + b, prefix + "snapshots/" + c},
		},
		"Ambiguous": {
			reason:  "A short id matching two snapshots removes neither.",
			id:      "aaaa1111",
			want:    []string{other + "snapshots/" + c, prefix + "data/00/00", prefix + "snapshots/" + a, prefix + "snapshots/" + b, prefix + "snapshots/" + c},
			wantErr: errAny,
		},
		"NotAnID": {
			reason:  "Anything but hex is refused, so no other key can be named.",
			id:      "../../dump",
			want:    []string{other + "snapshots/" + c, prefix + "data/00/00", prefix + "snapshots/" + a, prefix + "snapshots/" + b, prefix + "snapshots/" + c},
			wantErr: errAny,
		},
		"Locked": {
			reason:  "While the restic repository holds a lock that is not stale, nothing is forgotten: restic's forget would wait for it too.",
			id:      c,
			locks:   []string{prefix + "locks/1234"},
			after:   ResticStaleLock - time.Minute,
			want:    []string{other + "snapshots/" + c, prefix + "data/00/00", prefix + "locks/1234", prefix + "snapshots/" + a, prefix + "snapshots/" + b, prefix + "snapshots/" + c},
			wantErr: ErrResticLocked,
		},
		"StaleLock": {
			reason: "A lock older than restic's stale time holds nothing back, as in restic.",
			id:     c,
			locks:  []string{prefix + "locks/1234"},
			after:  ResticStaleLock + time.Minute,
			want:   []string{other + "snapshots/" + c, prefix + "data/00/00", prefix + "locks/1234", prefix + "snapshots/" + a, prefix + "snapshots/" + b},
		},
		"OtherComponentLocked": {
			reason: "A lock in another component's restic repository is not this one's.",
			id:     c,
			locks:  []string{other + "locks/1234"},
			want:   []string{other + "locks/1234", other + "snapshots/" + c, prefix + "data/00/00", prefix + "snapshots/" + a, prefix + "snapshots/" + b},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			bucket := memblob.OpenBucket(nil)
			defer bucket.Close()
			for _, k := range append([]string{prefix + "snapshots/" + a, prefix + "snapshots/" + b, prefix + "snapshots/" + c, prefix + "data/00/00", other + "snapshots/" + c}, tc.locks...) {
				if err := bucket.WriteAll(ctx, k, []byte("x"), nil); err != nil {
					t.Fatal(err)
				}
			}
			err := ForgetResticSnapshot(ctx, bucket, strings.TrimSuffix(prefix, "/"), tc.id, time.Now().Add(tc.after))
			if tc.wantErr == errAny && err == nil {
				t.Errorf("%s\nForgetResticSnapshot(%q): no error, want one", tc.reason, tc.id)
			} else if diff := cmp.Diff(tc.wantErr, err, cmpopts.EquateErrors()); tc.wantErr != errAny && diff != "" {
				t.Errorf("%s\nForgetResticSnapshot(%q): error -want +got:\n%s", tc.reason, tc.id, diff)
			}
			if diff := cmp.Diff(tc.want, keys(t, bucket)); diff != "" {
				t.Errorf("%s\nkeys left: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// errAny stands for any error.
var errAny = errors.New("any error")

func keys(t *testing.T, b *blob.Bucket) []string {
	t.Helper()
	var out []string
	it := b.List(nil)
	for {
		obj, err := it.Next(context.Background())
		if err != nil {
			break
		}
		out = append(out, obj.Key)
	}
	sort.Strings(out)
	return out
}
