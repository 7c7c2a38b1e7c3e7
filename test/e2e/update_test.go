package e2e

import (
	"context"
	"testing"

	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// update reads obj afresh, applies change and writes it, again when a
// controller's write came in between: every status write moves the
// object's resourceVersion, so a spec change made from an older read is
// refused as a conflict.
func update(t *testing.T, kube client.Client, obj client.Object, change func()) {
	t.Helper()
	ctx := context.Background()
	key := client.ObjectKeyFromObject(obj)
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := kube.Get(ctx, key, obj); err != nil {
			return err
		}
		change()
		return kube.Update(ctx, obj)
	}); err != nil {
		t.Fatalf("cannot update %T %s: %v", obj, key, err)
	}
}
