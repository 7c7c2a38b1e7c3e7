package provider

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	stashpkg "github.com/stashplane/stashplane/package"
)

// InstallBuiltins applies the built-in Addons and Functions shipped in the
// package, as the package manager does when Stashplane is installed.
func InstallBuiltins(ctx context.Context, c client.Client) error {
	objs, err := stashpkg.Addons()
	if err != nil {
		return err
	}
	for _, o := range objs {
		gvk, err := apiutil.GVKForObject(o, c.Scheme())
		if err != nil {
			return fmt.Errorf("cannot find kind of built-in %q: %w", o.GetName(), err)
		}
		setKind(o, gvk)
		o.SetResourceVersion("")
		if err := c.Patch(ctx, o, client.Apply, client.FieldOwner("stashplane-package"), client.ForceOwnership); err != nil {
			return fmt.Errorf("cannot apply built-in %s %q: %w", gvk.Kind, o.GetName(), err)
		}
	}
	return nil
}

func setKind(o client.Object, gvk schema.GroupVersionKind) {
	o.GetObjectKind().SetGroupVersionKind(gvk)
}
