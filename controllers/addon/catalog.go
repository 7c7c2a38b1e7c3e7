package addon

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	"github.com/stashplane/stashplane/functions/render"
)

// Catalog reads the installed Addons and Functions into the catalog the
// sessions render their tasks from.
func Catalog(ctx context.Context, c client.Reader) (*render.Catalog, error) {
	addons, fns := &addonsv1alpha1.AddonList{}, &addonsv1alpha1.FunctionList{}
	if err := c.List(ctx, addons); err != nil {
		return nil, fmt.Errorf("cannot list addons: %w", err)
	}
	if err := c.List(ctx, fns); err != nil {
		return nil, fmt.Errorf("cannot list functions: %w", err)
	}
	objs := make([]client.Object, 0, len(addons.Items)+len(fns.Items))
	for i := range addons.Items {
		objs = append(objs, &addons.Items[i])
	}
	for i := range fns.Items {
		objs = append(objs, &fns.Items[i])
	}
	return render.NewCatalog(objs...)
}
