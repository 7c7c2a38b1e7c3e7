package secretcache

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// metaReader serves a Secret's metadata at a resourceVersion, or none.
type metaReader struct{ version string }

func (m *metaReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	if m.version == "" {
		return kerrors.NewNotFound(corev1.Resource("secrets"), key.Name)
	}
	obj.SetName(key.Name)
	obj.SetNamespace(key.Namespace)
	obj.SetResourceVersion(m.version)
	return nil
}

func (m *metaReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return nil
}

func TestGet(t *testing.T) {
	type read struct {
		// meta is the resourceVersion the cache's metadata shows; "":
		// the cache has not seen the Secret.
		meta string
		// data is what the API server holds; "": no Secret.
		data string
	}
	type got struct {
		Data     string
		NotFound bool
		APIReads int
	}
	cases := map[string]struct {
		reason string
		reads  []read
		want   []got
	}{
		"FirstReadAsksTheAPIServer": {
			reason: "A Secret not read before is read from the API server.",
			reads:  []read{{meta: "1", data: "a"}},
			want:   []got{{Data: "a", APIReads: 1}},
		},
		"UnchangedIsServedFromWhatWasRead": {
			reason: "While the metadata shows the version read last, the data read then is served without a request.",
			reads:  []read{{meta: "1", data: "a"}, {meta: "1", data: "a"}, {meta: "1", data: "a"}},
			want:   []got{{Data: "a", APIReads: 1}, {Data: "a", APIReads: 1}, {Data: "a", APIReads: 1}},
		},
		"ChangedIsReadAgain": {
			reason: "A newer version in the metadata makes the data be read again.",
			reads:  []read{{meta: "1", data: "a"}, {meta: "2", data: "b"}, {meta: "2", data: "b"}},
			want:   []got{{Data: "a", APIReads: 1}, {Data: "b", APIReads: 2}, {Data: "b", APIReads: 2}},
		},
		"NotYetInTheCache": {
			reason: "A Secret the cache has not seen yet (just made) is read from the API server, never reported missing.",
			reads:  []read{{meta: "", data: "a"}},
			want:   []got{{Data: "a", APIReads: 1}},
		},
		"Deleted": {
			reason: "A Secret gone from the API server is not found, and its data is no longer held.",
			reads:  []read{{meta: "1", data: "a"}, {meta: "", data: ""}},
			want:   []got{{Data: "a", APIReads: 1}, {NotFound: true, APIReads: 2}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			meta := &metaReader{}
			apiReads := 0
			var data string
			api := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
				Get: func(_ context.Context, _ client.WithWatch, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
					apiReads++
					if data == "" {
						return kerrors.NewNotFound(corev1.Resource("secrets"), key.Name)
					}
					s := obj.(*corev1.Secret)
					*s = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, ResourceVersion: meta.version},
						Data: map[string][]byte{"k": []byte(data)}}
					return nil
				},
			}).Build()
			c := Wrap(api, meta)
			var gots []got
			for _, r := range tc.reads {
				meta.version, data = r.meta, r.data
				s := &corev1.Secret{}
				err := c.Get(context.Background(), client.ObjectKey{Namespace: "app", Name: "creds"}, s)
				if err != nil && !kerrors.IsNotFound(err) {
					t.Fatal(err)
				}
				gots = append(gots, got{Data: string(s.Data["k"]), NotFound: kerrors.IsNotFound(err), APIReads: apiReads})
			}
			if diff := cmp.Diff(tc.want, gots); diff != "" {
				t.Errorf("%s\nreads (-want +got):\n%s", tc.reason, diff)
			}
			if tc.want[len(tc.want)-1].NotFound && c.Held() != 0 {
				t.Errorf("%s\nthe data of %d Secrets is still held", tc.reason, c.Held())
			}
		})
	}
}

// A read of anything but a typed Secret goes to the wrapped client as it
// is.
func TestGetOthersPassThrough(t *testing.T) {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "app"}, Data: map[string]string{"k": "v"}}
	c := Wrap(fake.NewClientBuilder().WithScheme(s).WithObjects(cm).Build(), &metaReader{})
	got := &corev1.ConfigMap{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(cm), got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cm.Data, got.Data); diff != "" {
		t.Errorf("configmap (-want +got):\n%s", diff)
	}
	if c.Held() != 0 {
		t.Errorf("%d Secrets held after reading a ConfigMap", c.Held())
	}
}

// A Secret deleted, seen by the metadata informer directly or as a
// tombstone, is no longer held.
func TestForget(t *testing.T) {
	cases := map[string]struct {
		deleted any
		want    int
	}{
		"Deleted":   {deleted: Metadata(), want: 0},
		"Tombstone": {deleted: toolscache.DeletedFinalStateUnknown{Key: "app/creds", Obj: Metadata()}, want: 0},
		"Other":     {deleted: "not an object", want: 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			meta := &metaReader{version: "1"}
			api := fake.NewClientBuilder().WithObjects(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "app"}}).Build()
			c := Wrap(api, meta)
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: "app", Name: "creds"}, &corev1.Secret{}); err != nil {
				t.Fatal(err)
			}
			if m, ok := tc.deleted.(*metav1.PartialObjectMetadata); ok {
				m.SetNamespace("app")
				m.SetName("creds")
			}
			if d, ok := tc.deleted.(toolscache.DeletedFinalStateUnknown); ok {
				d.Obj.(*metav1.PartialObjectMetadata).SetNamespace("app")
				d.Obj.(*metav1.PartialObjectMetadata).SetName("creds")
			}
			c.Forget().OnDelete(tc.deleted)
			if diff := cmp.Diff(tc.want, c.Held()); diff != "" {
				t.Errorf("Secrets held after the delete (-want +got):\n%s", diff)
			}
		})
	}
}
