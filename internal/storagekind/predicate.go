package storagekind

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// ChangedIn passes the updates of a T whose view differs between the old
// and the new object, compared semantically, and every other event. A
// controller hands it what it acts on of the object (or the object less
// what it writes itself), so that updates which change nothing it reads do
// not queue a reconcile. A view is only compared: it may share maps and
// slices with the object it was taken from.
func ChangedIn[T client.Object](view func(T) any) predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		was, wasT := e.ObjectOld.(T)
		is, isT := e.ObjectNew.(T)
		if !wasT || !isT {
			return true
		}
		return !equality.Semantic.DeepEqual(view(was), view(is))
	}}
}
