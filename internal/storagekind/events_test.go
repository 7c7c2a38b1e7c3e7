package storagekind

import (
	"testing"

	"github.com/crossplane/crossplane-runtime/v2/pkg/event"
	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/record"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A quiet kind records no event for each record created or updated as
// asked; its warnings and other events are recorded, annotated or not.
func TestQuietRecords(t *testing.T) {
	cases := map[string]struct {
		reason string
		quiet  bool
		want   []string
	}{
		"Quiet": {reason: "Routine creates and updates go unrecorded.", quiet: true, want: []string{
			"Warning CannotCreateExternalResource cannot write the record",
			"Normal DeletedExternalResource Successfully requested deletion of external resource",
			"Warning CannotObserveExternalResource gone map[external-name:s]",
		}},
		"Default": {reason: "Other kinds record everything.", want: []string{
			"Normal CreatedExternalResource Successfully requested creation of external resource",
			"Normal UpdatedExternalResource Successfully requested update of external resource",
			"Warning CannotCreateExternalResource cannot write the record",
			"Normal DeletedExternalResource Successfully requested deletion of external resource",
			"Normal CreatedExternalResource Successfully requested creation of external resource map[external-name:s]",
			"Warning CannotObserveExternalResource gone map[external-name:s]",
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			fake := record.NewFakeRecorder(10)
			r := recorder(event.NewAPIRecorder(fake), tc.quiet)
			obj := &storagev1alpha1.Snapshot{}
			r.Event(obj, event.Normal("CreatedExternalResource", "Successfully requested creation of external resource"))
			r.Event(obj, event.Normal("UpdatedExternalResource", "Successfully requested update of external resource"))
			r.Event(obj, event.Warning("CannotCreateExternalResource", errString("cannot write the record")))
			r.Event(obj, event.Normal("DeletedExternalResource", "Successfully requested deletion of external resource"))
			annotated := r.WithAnnotations("external-name", "s")
			annotated.Event(obj, event.Normal("CreatedExternalResource", "Successfully requested creation of external resource"))
			annotated.Event(obj, event.Warning("CannotObserveExternalResource", errString("gone")))
			close(fake.Events)
			var got []string
			for e := range fake.Events {
				got = append(got, e)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nevents: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }
