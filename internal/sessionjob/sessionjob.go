// Package sessionjob creates the Jobs a session composes from its rendered
// tasks: in the session's namespace, labelled, owned by the session, and
// created once (a Job that already exists is left as it is, since a Job's
// template cannot change).
package sessionjob

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// Ensure puts j in owner's namespace, adds labels, makes owner its
// controller and creates it unless it exists.
func Ensure(ctx context.Context, c client.Client, owner client.Object, j *batchv1.Job, labels map[string]string) error {
	j.Namespace = owner.GetNamespace()
	if j.Labels == nil {
		j.Labels = map[string]string{}
	}
	for k, v := range labels {
		j.Labels[k] = v
	}
	if err := controllerutil.SetControllerReference(owner, j, c.Scheme()); err != nil {
		return fmt.Errorf("cannot own job %q: %w", j.Name, err)
	}
	if err := c.Create(ctx, j); err != nil && !kerrors.IsAlreadyExists(err) {
		return fmt.Errorf("cannot create job %q: %w", j.Name, err)
	}
	return nil
}
