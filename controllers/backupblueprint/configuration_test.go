package backupblueprint

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestConfiguration(t *testing.T) {
	bp := func(dir, params string) *corev1alpha1.BackupBlueprint {
		return &corev1alpha1.BackupBlueprint{
			ObjectMeta: metav1.ObjectMeta{Namespace: "platform", Name: "workloads"},
			Spec: corev1alpha1.BackupBlueprintSpec{BackupConfigurationTemplate: corev1alpha1.BackupConfigurationTemplate{
				Backends: []corev1alpha1.BackendReference{{Name: "b", StorageRef: &storagev1alpha1.ObjectReference{Name: "s", Namespace: "platform"}}},
				Sessions: []corev1alpha1.Session{{Name: "nightly",
					Repositories: []corev1alpha1.RepositoryInfo{{Name: "${targetName}-repo", Backend: "b", Directory: dir}},
					Addon: &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup",
						Params: &runtime.RawExtension{Raw: []byte(params)}}}},
				}},
			}},
		}
	}
	dep := workload{Kind: "Deployment", Group: "apps", Version: "v1", Meta: metav1.ObjectMeta{
		Namespace: "shop", Name: "web", UID: "u1",
		Annotations: map[string]string{"variables.stashplane.io/paths": "/data,/conf", "variables.stashplane.io/targetName": "not-me"},
	}}
	cases := map[string]struct {
		reason  string
		bp      *corev1alpha1.BackupBlueprint
		w       workload
		wantErr string
		// want is the filled directory and params.
		wantDir, wantParams string
	}{
		"Filled": {
			reason: "The workload's own variables and its annotated ones are written into every string, params included; an annotation cannot replace the workload's own.",
			bp:     bp("${namespace}/${targetKind}/${targetName}", `{"paths":"${paths}","note":"${STASHPLANE_SESSION}"}`), w: dep,
			wantDir: "shop/Deployment/web", wantParams: `{"note":"${STASHPLANE_SESSION}","paths":"/data,/conf"}`,
		},
		"Unfilled": {
			reason: "A reference no variable fills refuses the configuration, naming each and the annotation to add.",
			bp:     bp("${cluster}/${targetName}", `{"paths":"${dirs}"}`), w: dep,
			wantErr: "backupblueprint platform/workloads uses variables cluster, dirs that Deployment shop/web does not give: annotate it with variables.stashplane.io/<name>",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bc, err := configuration(tc.bp, tc.w)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("%s\nerror %v, want %q", tc.reason, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\n%v", tc.reason, err)
			}
			got := struct{ Name, Repo, Dir, Params string }{bc.Name, bc.Spec.Sessions[0].Repositories[0].Name, bc.Spec.Sessions[0].Repositories[0].Directory,
				string(bc.Spec.Sessions[0].Addon.Tasks[0].Params.Raw)}
			want := struct{ Name, Repo, Dir, Params string }{"deployment-web", "web-repo", tc.wantDir, tc.wantParams}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
			wantMeta := metav1.ObjectMeta{Namespace: "shop", Name: "deployment-web",
				Labels:          map[string]string{corev1alpha1.LabelBlueprintName: "workloads", corev1alpha1.LabelBlueprintNamespace: "platform"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "u1", BlockOwnerDeletion: ptr.To(false)}}}
			if diff := cmp.Diff(wantMeta, bc.ObjectMeta); diff != "" {
				t.Errorf("%s\nmetadata (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(&storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "web"}, bc.Spec.Target); diff != "" {
				t.Errorf("%s\ntarget (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestConfigurationName(t *testing.T) {
	cases := map[string]struct{ kind, name, want string }{
		"PVC":  {"PersistentVolumeClaim", "data", "persistentvolumeclaim-data"},
		"Long": {"StatefulSet", "a-name-long-enough-to-go-past-what-kubernetes-allows-for-names", "statefulset-a-name-long-enough-to-go-past-what-kuberne-19075d11"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := ConfigurationName(tc.kind, tc.name); got != tc.want || len(got) > 63 {
				t.Errorf("ConfigurationName(%q, %q) = %q, want %q", tc.kind, tc.name, got, tc.want)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	meta := func(group, kind string) client.Object {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: "v1", Kind: kind})
		return m
	}
	cases := map[string]struct {
		reason string
		obj    client.Object
		want   string
	}{
		"DeploymentAsMetadata": {
			reason: "The cache holds Deployments as metadata: their events carry the kind in the object's type meta.",
			obj:    meta("apps", "Deployment"),
			want:   "Deployment",
		},
		"ClaimAsMetadata": {
			reason: "So do claims.",
			obj:    meta("", "PersistentVolumeClaim"),
			want:   "PersistentVolumeClaim",
		},
		"StatefulSet": {
			reason: "StatefulSets are held whole, for their claim templates.",
			obj:    &appsv1.StatefulSet{},
			want:   "StatefulSet",
		},
		"Namespace": {
			reason: "A Namespace is no workload: it names no configuration.",
			obj:    meta("", "Namespace"),
			want:   "",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, kindOf(tc.obj)); diff != "" {
				t.Errorf("%s\nkindOf(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
