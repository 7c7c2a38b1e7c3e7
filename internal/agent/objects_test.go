package agent

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/stashplane/stashplane/internal/agentapi"
)

func TestFromNamespace(t *testing.T) {
	obj := func(kind, ns, name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind(kind)
		u.SetNamespace(ns)
		u.SetName(name)
		return u
	}
	one := []*unstructured.Unstructured{obj("ConfigMap", "shop", "a"), obj("Secret", "shop", "b")}
	cluster := []*unstructured.Unstructured{obj("Namespace", "", "shop"), obj("ConfigMap", "shop", "a"), obj("ConfigMap", "web", "c"), obj("ClusterRole", "", "r")}
	cases := map[string]struct {
		reason   string
		objs     []*unstructured.Unstructured
		source   string
		dryRun   bool
		want     []string
		wantFrom string
		wantErr  string
	}{
		"OneNamespace": {reason: "A dump of one namespace is recreated whole.", objs: one,
			want: []string{"ConfigMap shop/a", "Secret shop/b"}, wantFrom: "shop"},
		"OneNamespaceNamed": {reason: "Naming its namespace changes nothing.", objs: one, source: "shop",
			want: []string{"ConfigMap shop/a", "Secret shop/b"}, wantFrom: "shop"},
		"ClusterPicked": {reason: "Of a dump of the cluster, the objects of the named namespace; no cluster-scoped object.", objs: cluster, source: "web",
			want: []string{"ConfigMap web/c"}, wantFrom: "web"},
		"ClusterNotPicked": {reason: "A dump of several namespaces without a source is refused, naming them.", objs: cluster,
			wantErr: "the resource manifests hold the objects of 2 namespaces (shop, web): name the one to recreate here with the task's sourceNamespace parameter"},
		"ClusterDryRun": {reason: "A dry run (a verification's) of a dump of the cluster checks every object, naming no namespace: each is checked in the session's.", objs: cluster, dryRun: true,
			want: []string{"Namespace /shop", "ConfigMap shop/a", "ConfigMap web/c", "ClusterRole /r"}},
		"WholeCluster": {reason: "Recreating a whole dump of the cluster keeps every object, in its own namespace.", objs: cluster, source: agentapi.SourceNamespaceAll,
			want: []string{"Namespace /shop", "ConfigMap shop/a", "ConfigMap web/c", "ClusterRole /r"}},
		"Unknown": {reason: "A source the dump does not hold is refused, naming what it holds.", objs: cluster, source: "gone",
			wantErr: `the resource manifests hold no object of namespace "gone" (sourceNamespace); they hold shop, web`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, from, err := fromNamespace(tc.objs, tc.source, tc.dryRun)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\nfromNamespace: %v, want an error saying %q", tc.reason, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, u := range got {
				names = append(names, u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName())
			}
			if diff := cmp.Diff(tc.want, names); diff != "" || from != tc.wantFrom {
				t.Errorf("%s\nfromNamespace: from %q (want %q), objects -want +got:\n%s", tc.reason, from, tc.wantFrom, diff)
			}
		})
	}
}
