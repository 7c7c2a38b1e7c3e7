package agent

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob/memblob"
)

func TestResticRepositories(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	defer b.Close()
	for _, k := range []string{
		"demo/db/repository.yaml",
		"demo/db/repository/v1/nightly/dump-pod-0/config",
		"demo/db/repository/v1/nightly/dump-pod-0/data/00/0011",
		"demo/db/repository/v1/nightly/dump-pod-1/config",
		"demo/db/repository/v1/hourly/dump/config",
		"demo/db/repository/v1/hourly/empty/keys/k",
		"demo/dbx/repository/v1/nightly/dump/config",
		"demo/db/manifests/s/dump.json.gz",
	} {
		if err := b.WriteAll(ctx, k, []byte("12345"), nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := resticRepositories(ctx, b, "demo/db")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"demo/db/repository/v1/hourly/dump/", "demo/db/repository/v1/nightly/dump-pod-0/", "demo/db/repository/v1/nightly/dump-pod-1/"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resticRepositories: every component's restic repository of this Repository only, -want +got:\n%s", diff)
	}
	n, err := sizeUnder(ctx, b, "demo/db/repository/v1/nightly/dump-pod-0/")
	if err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Errorf("sizeUnder: got %d bytes, want 10", n)
	}
}
