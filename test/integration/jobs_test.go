package integration

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/sessionjob"
)

// TestMarkEarlierJobs shows the provider's start-up step on a real API
// server: the Jobs an earlier provider or CLI made are labelled watched,
// so that a cache selecting Jobs by that label sees the runs under way;
// other Jobs, and their pod templates, are left as they are.
func TestMarkEarlierJobs(t *testing.T) {
	requireControlPlane(t)
	ctx := testContext(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "mark-earlier-"}}
	if err := kube.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.Delete(ctx, ns) })
	job := func(name string, labels, podLabels map[string]string, owner *metav1.OwnerReference) {
		j := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name, Labels: labels},
			Spec: batchv1.JobSpec{Suspend: ptr.To(true), Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: podLabels}, Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}},
		}
		if owner != nil {
			j.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		if err := kube.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	job("session-run", nil, nil, &metav1.OwnerReference{APIVersion: "core.stashplane.io/v1alpha1", Kind: "BackupSession", Name: "nightly", UID: "u1", Controller: ptr.To(true)})
	job("cli-unlock", map[string]string{"storage.stashplane.io/unlock-of": "data"}, nil, nil)
	job("others", map[string]string{"app": "web"}, map[string]string{"app": "web"}, &metav1.OwnerReference{APIVersion: "batch/v1", Kind: "CronJob", Name: "report", UID: "u2", Controller: ptr.To(true)})
	marked := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "marked"}, Spec: batchv1.JobSpec{Suspend: ptr.To(true)}}
	sessionjob.Mark(marked)
	job("marked", marked.Labels, marked.Spec.Template.Labels, nil)

	n, err := sessionjob.MarkEarlier(ctx, kube)
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Errorf("MarkEarlier(): labelled %d jobs, want at least this test's 2", n)
	}
	got := map[string]string{}
	templates := map[string]string{}
	for _, name := range []string{"session-run", "cli-unlock", "others", "marked"} {
		j := &batchv1.Job{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: name}, j); err != nil {
			t.Fatal(err)
		}
		got[name] = j.Labels[corev1alpha1.LabelWatched]
		templates[name] = j.Spec.Template.Labels[corev1alpha1.LabelWatched]
	}
	want := map[string]string{"session-run": "true", "cli-unlock": "true", "others": "", "marked": "true"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("MarkEarlier(): the jobs' %s label, -want +got:\n%s", corev1alpha1.LabelWatched, diff)
	}
	// A labelled Job's pods still lack the label: NewestPod reads them past
	// the cache because its template does.
	wantTemplates := map[string]string{"session-run": "", "cli-unlock": "", "others": "", "marked": "true"}
	if diff := cmp.Diff(wantTemplates, templates); diff != "" {
		t.Errorf("MarkEarlier(): the pod templates' %s label, -want +got:\n%s", corev1alpha1.LabelWatched, diff)
	}
}
