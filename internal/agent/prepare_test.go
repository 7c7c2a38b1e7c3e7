package agent

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob/memblob"
)

// TestPrepareRepositoryOverLeftovers: a restic repository without a
// config whose directory holds files is never initialised over; restic
// is not even run.
func TestPrepareRepositoryOverLeftovers(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	defer b.Close()
	if err := b.WriteAll(ctx, "default/app/repository/v1/nightly/dump/data/ab/abcdef", []byte("a pack of a wiped repository"), nil); err != nil {
		t.Fatal(err)
	}
	r := &Runner{Log: logr.Discard()}
	tgt := &target{bucket: b, resticPath: "default/app/repository/v1/nightly/dump/"}
	_, err := r.prepareRepository(ctx, tgt, nil)
	var re *reasonError
	if !errors.As(err, &re) {
		t.Fatalf("prepareRepository over leftovers: %v, want a %s error", err, ReasonRepositoryNotEmpty)
	}
	if diff := cmp.Diff(ReasonRepositoryNotEmpty, re.reason); diff != "" {
		t.Errorf("reason: -want +got:\n%s", diff)
	}
	t.Log(re.msg)
}
