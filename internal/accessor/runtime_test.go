package accessor

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// TestAccessorRuntimeSettings shows a local storage's runtimeSettings
// reaching its accessor's pod and container.
func TestAccessorRuntimeSettings(t *testing.T) {
	rs := &storagev1alpha1.RuntimeSettings{
		Pod: &storagev1alpha1.PodRuntimeSettings{
			PodLabels: map[string]string{"team": "storage"}, PodAnnotations: map[string]string{"note": "x"},
			NodeSelector: map[string]string{"disk": "ssd"}, ServiceAccountName: "accessor",
			Tolerations:       []corev1.Toleration{{Key: "storage", Operator: corev1.TolerationOpExists}},
			PriorityClassName: "high", ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}},
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000)},
		},
		Container: &storagev1alpha1.ContainerRuntimeSettings{
			Resources:       corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}},
			Env:             []corev1.EnvVar{{Name: "GOMAXPROCS", Value: "2"}},
			SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true)},
		},
	}
	bs := &storagev1alpha1.BackupStorage{
		ObjectMeta: metav1.ObjectMeta{Name: "local", Namespace: "demo"},
		Spec: storagev1alpha1.BackupStorageSpec{
			Storage: storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{
				MountPath: "/backup", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/backup"}},
			}},
			RuntimeSettings: rs,
		},
	}
	for k := range labelsOf(bs) {
		rs.Pod.PodLabels[k] = "mine"
	}
	rs.Pod.PodLabels[corev1alpha1.LabelWatched] = "mine"
	d, err := Deployment(bs, "stashplane:test")
	if err != nil {
		t.Fatal(err)
	}
	p := d.Spec.Template.Spec
	type settings struct {
		NodeSelector       map[string]string
		ServiceAccountName string
		Tolerations        []corev1.Toleration
		PriorityClassName  string
		ImagePullSecrets   []corev1.LocalObjectReference
		PodSecurity        *corev1.PodSecurityContext
		Resources          corev1.ResourceRequirements
		LastEnv            corev1.EnvVar
		Security           *corev1.SecurityContext
	}
	c := p.Containers[0]
	got := settings{p.NodeSelector, p.ServiceAccountName, p.Tolerations, p.PriorityClassName, p.ImagePullSecrets, p.SecurityContext,
		c.Resources, c.Env[len(c.Env)-1], c.SecurityContext}
	want := settings{rs.Pod.NodeSelector, rs.Pod.ServiceAccountName, rs.Pod.Tolerations, rs.Pod.PriorityClassName, rs.Pod.ImagePullSecrets,
		rs.Pod.SecurityContext, rs.Container.Resources, rs.Container.Env[0], rs.Container.SecurityContext}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Deployment(...): runtime settings -want +got:\n%s", diff)
	}
	meta := d.Spec.Template.ObjectMeta
	if meta.Labels["team"] != "storage" || meta.Annotations["note"] != "x" {
		t.Errorf("Deployment(...): pod labels %v, annotations %v: want podLabels and podAnnotations", meta.Labels, meta.Annotations)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if meta.Labels[k] != v {
			t.Errorf("Deployment(...): pod label %s=%q, want the selector's %q whatever podLabels say", k, meta.Labels[k], v)
		}
	}
	if got := meta.Labels[corev1alpha1.LabelWatched]; got != "true" {
		t.Errorf("Deployment(...): pod label %s=%q, want \"true\" whatever podLabels say: the provider's cache holds only the pods that carry it", corev1alpha1.LabelWatched, got)
	}
}
