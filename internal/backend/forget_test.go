package backend

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
		reason  string
		id      string
		want    []string
		wantErr bool
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
			wantErr: true,
		},
		"NotAnID": {
			reason:  "Anything but hex is refused, so no other key can be named.",
			id:      "../../dump",
			want:    []string{other + "snapshots/" + c, prefix + "data/00/00", prefix + "snapshots/" + a, prefix + "snapshots/" + b, prefix + "snapshots/" + c},
			wantErr: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			bucket := memblob.OpenBucket(nil)
			defer bucket.Close()
			for _, k := range []string{prefix + "snapshots/" + a, prefix + "snapshots/" + b, prefix + "snapshots/" + c, prefix + "data/00/00", other + "snapshots/" + c} {
				if err := bucket.WriteAll(ctx, k, []byte("x"), nil); err != nil {
					t.Fatal(err)
				}
			}
			err := ForgetResticSnapshot(ctx, bucket, strings.TrimSuffix(prefix, "/"), tc.id)
			if (err != nil) != tc.wantErr {
				t.Errorf("%s\nForgetResticSnapshot(%q): error %v, want error %t", tc.reason, tc.id, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, keys(t, bucket)); diff != "" {
				t.Errorf("%s\nkeys left: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

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
