package sessionjob

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

func TestEnsure(t *testing.T) {
	owner := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: "team", UID: "u1"}}
	type want struct {
		labels    map[string]string
		podLabels map[string]string
		image     string
	}
	cases := map[string]struct {
		reason   string
		existing *batchv1.Job
		job      *batchv1.Job
		want     want
		// wantErr is the error Ensure returns, wrapping ErrNotOwned.
		wantErr string
	}{
		"Created": {
			reason: "A new Job lands in the owner's namespace with its own and the session's labels; it and its pods are marked as the provider's, so that the provider's cache holds its pods.",
			job:    job("j", map[string]string{"app": "x"}, "new"),
			want: want{labels: map[string]string{"app": "x", "session": "s", corev1alpha1.LabelWatched: "true"},
				podLabels: map[string]string{corev1alpha1.LabelWatched: "true"}, image: "new"},
		},
		"ExistingKept": {
			reason:   "A Job the owner already controls is left as it is, not an error.",
			existing: owned(job("j", nil, "old"), "owner", "u1"),
			job:      job("j", nil, "new"),
			want:     want{image: "old"},
		},
		"OtherOwner": {
			reason:   "A Job of the same name that another object controls is not adopted: the error names its controller.",
			existing: owned(job("j", nil, "old"), "owner", "u0"),
			job:      job("j", nil, "new"),
			want:     want{image: "old"},
			wantErr:  `cannot create job "j": job belongs to another owner: CronJob "owner" (uid u0) controls it`,
		},
		"NoOwner": {
			reason:   "A Job of the same name that nothing controls is not adopted either.",
			existing: job("j", nil, "old"),
			job:      job("j", nil, "new"),
			want:     want{image: "old"},
			wantErr:  `cannot create job "j": job belongs to another owner: it has no controller`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := runtime.NewScheme()
			if err := clientgoscheme.AddToScheme(s); err != nil {
				t.Fatal(err)
			}
			b := fake.NewClientBuilder().WithScheme(s)
			if tc.existing != nil {
				tc.existing.Namespace = "team"
				b = b.WithObjects(tc.existing)
			}
			c := b.Build()
			err := Ensure(context.Background(), c, c, owner, tc.job, map[string]string{"session": "s"})
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tc.wantErr, gotErr); diff != "" {
				t.Errorf("%s\nEnsure(): -want +got error:\n%s", tc.reason, diff)
			}
			if tc.wantErr != "" && !errors.Is(err, ErrNotOwned) {
				t.Errorf("%s\nEnsure(): %v does not wrap ErrNotOwned", tc.reason, err)
			}
			got := &batchv1.Job{}
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: "team", Name: "j"}, got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, want{labels: got.Labels, podLabels: got.Spec.Template.Labels, image: got.Spec.Template.Spec.Containers[0].Image}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
			if tc.existing == nil && !metav1.IsControlledBy(got, owner) {
				t.Errorf("%s\nthe created Job is not controlled by its owner: %+v", tc.reason, got.OwnerReferences)
			}
		})
	}
}

func owned(j *batchv1.Job, name string, uid types.UID) *batchv1.Job {
	j.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: name, UID: uid, Controller: ptr.To(true)}}
	return j
}

func job(name string, labels map[string]string, image string) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	j.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: image}}
	return j
}

func TestEnded(t *testing.T) {
	cond := func(ty batchv1.JobConditionType, s corev1.ConditionStatus) batchv1.JobCondition {
		return batchv1.JobCondition{Type: ty, Status: s}
	}
	cases := map[string]struct {
		reason string
		conds  []batchv1.JobCondition
		want   bool
	}{
		"Running":        {"a Job without conditions runs", nil, false},
		"Complete":       {"a complete Job ended", []batchv1.JobCondition{cond(batchv1.JobComplete, corev1.ConditionTrue)}, true},
		"Failed":         {"a failed Job ended", []batchv1.JobCondition{cond(batchv1.JobFailed, corev1.ConditionTrue)}, true},
		"FailedFalse":    {"a Failed condition that is not true says nothing", []batchv1.JobCondition{cond(batchv1.JobFailed, corev1.ConditionFalse)}, false},
		"FailureTarget":  {"a Job whose pods are still being stopped has not ended", []batchv1.JobCondition{cond(batchv1.JobFailureTarget, corev1.ConditionTrue)}, false},
		"SuspendedAlone": {"a suspended Job has not ended", []batchv1.JobCondition{cond(batchv1.JobSuspended, corev1.ConditionTrue)}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			j := &batchv1.Job{Status: batchv1.JobStatus{Conditions: tc.conds}}
			if diff := cmp.Diff(tc.want, Ended(j)); diff != "" {
				t.Errorf("%s: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestUnstartable(t *testing.T) {
	created := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	waiting := func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: `secret "absent" not found`}}
	}
	pod := func(phase corev1.PodPhase, init, main corev1.ContainerState) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "backup-x", CreationTimestamp: metav1.NewTime(created)},
			Status: corev1.PodStatus{
				Phase:                 phase,
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: init}},
				ContainerStatuses:     []corev1.ContainerStatus{{Name: "agent", State: main}},
			},
		}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	cases := map[string]struct {
		reason string
		pod    *corev1.Pod
		after  time.Duration
		want   string
	}{
		"NoPod":           {"a Job without a pod says nothing", nil, time.Hour, ""},
		"Starting":        {"a pod still creating its containers can start", pod(corev1.PodPending, running, waiting("ContainerCreating")), time.Hour, ""},
		"ConfigErrorSoon": {"a missing Secret may still be created within the grace", pod(corev1.PodPending, running, waiting("CreateContainerConfigError")), 30 * time.Second, ""},
		"ConfigErrorLate": {"past the grace a missing Secret stops the pod", pod(corev1.PodPending, running, waiting("CreateContainerConfigError")), 2 * time.Minute,
			`pod backup-x cannot start container "agent" (CreateContainerConfigError): secret "absent" not found`},
		"InitImage": {"an init container that cannot pull its image stops the pod", pod(corev1.PodPending, waiting("ImagePullBackOff"), waiting("PodInitializing")), 2 * time.Minute,
			`pod backup-x cannot start container "init" (ImagePullBackOff): secret "absent" not found`},
		"Running": {"a pod past Pending is not judged here", pod(corev1.PodRunning, running, waiting("CreateContainerConfigError")), time.Hour, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Unstartable(tc.pod, created.Add(tc.after), time.Minute)); diff != "" {
				t.Errorf("%s: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestNewestPod(t *testing.T) {
	podOf := func(name string, age time.Duration) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1000, 0).Add(-age)),
			Labels: map[string]string{batchv1.ControllerUidLabel: "j1"}}}
	}
	marked := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "j", UID: "j1"}}
	Mark(marked)
	earlier := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "j", UID: "j1"}}
	labelledSince := earlier.DeepCopy()
	labelledSince.Labels = map[string]string{corev1alpha1.LabelWatched: "true"}
	cases := map[string]struct {
		reason string
		job    *batchv1.Job
		cached []client.Object
		api    []client.Object
		want   string
	}{
		"MarkedFromCache": {
			reason: "The pods of a Job Mark labelled are in the provider's cache: the newest of them is read there.",
			job:    marked,
			cached: []client.Object{podOf("old", time.Hour), podOf("new", time.Minute)},
			api:    []client.Object{podOf("other", 0)},
			want:   "new",
		},
		"EarlierProviderPastCache": {
			reason: "A Job an earlier provider made carries no mark, so the cache holds none of its pods: they are read past it.",
			job:    earlier,
			cached: []client.Object{podOf("cached", 0)},
			api:    []client.Object{podOf("old", time.Hour), podOf("new", time.Minute)},
			want:   "new",
		},
		"LabelledSince": {
			reason: "A Job of an earlier provider that MarkEarlier labelled still has pods without the label: they are read past the cache.",
			job:    labelledSince,
			cached: []client.Object{podOf("cached", 0)},
			api:    []client.Object{podOf("new", time.Minute)},
			want:   "new",
		},
		"None": {
			reason: "A Job with no pod yet has no newest pod.",
			job:    marked,
			want:   "",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cached := fake.NewClientBuilder().WithObjects(tc.cached...).Build()
			api := fake.NewClientBuilder().WithObjects(tc.api...).Build()
			got := ""
			if p := NewestPod(context.Background(), cached, api, tc.job); p != nil {
				got = p.Name
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nNewestPod(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestMadeByStashplane(t *testing.T) {
	cases := map[string]struct {
		reason string
		owner  *metav1.OwnerReference
		labels map[string]string
		want   bool
	}{
		"SessionControls": {
			reason: "A Job a BackupSession controls is Stashplane's.",
			owner:  &metav1.OwnerReference{APIVersion: "core.stashplane.io/v1alpha1", Kind: "BackupSession", Name: "s", UID: "u", Controller: ptr.To(true)},
			want:   true,
		},
		"LabelledByTheCLI": {
			reason: "A Job the CLI made carries a label of a stashplane.io domain.",
			labels: map[string]string{"storage.stashplane.io/unlock-of": "data"},
			want:   true,
		},
		"OthersJob": {
			reason: "Another controller's Job, whatever its labels, is not.",
			owner:  &metav1.OwnerReference{APIVersion: "batch/v1", Kind: "CronJob", Name: "c", UID: "u", Controller: ptr.To(true)},
			labels: map[string]string{"app": "stashplane.io", "notstashplane.io/x": "y"},
			want:   false,
		},
		"ScheduleTrigger": {
			reason: "A Job a schedule's CronJob started carries the configuration's labels, but the CronJob controls it: the provider never reads it.",
			owner:  &metav1.OwnerReference{APIVersion: "batch/v1", Kind: "CronJob", Name: "nightly", UID: "u", Controller: ptr.To(true)},
			labels: map[string]string{"core.stashplane.io/invoker-name": "app"},
			want:   false,
		},
		"OwnedNotControlled": {
			reason: "An owner that is not the controller does not make it Stashplane's.",
			owner:  &metav1.OwnerReference{APIVersion: "core.stashplane.io/v1alpha1", Kind: "BackupSession", Name: "s", UID: "u"},
			want:   false,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			j := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Labels: tc.labels}}
			if tc.owner != nil {
				j.OwnerReferences = []metav1.OwnerReference{*tc.owner}
			}
			if diff := cmp.Diff(tc.want, madeByStashplane(j)); diff != "" {
				t.Errorf("%s\nmadeByStashplane(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestList: a session's Jobs come from the cache when it holds what the
// kind expects, and from the API server when it does not; other sessions'
// Jobs are never among them.
func TestList(t *testing.T) {
	jobOf := func(name, session string) *batchv1.Job {
		return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name, Labels: map[string]string{corev1alpha1.LabelBackupSession: session}}}
	}
	atLeastOne := func(jobs []batchv1.Job) bool { return len(jobs) > 0 }
	cases := map[string]struct {
		reason   string
		cached   []client.Object
		api      []client.Object
		complete func([]batchv1.Job) bool
		want     []string
	}{
		"FromCache": {
			reason:   "The cache holds what the kind expects: the API server is not asked.",
			cached:   []client.Object{jobOf("cached", "s1"), jobOf("other", "s2")},
			api:      []client.Object{jobOf("cached", "s1"), jobOf("new", "s1")},
			complete: atLeastOne,
			want:     []string{"cached"},
		},
		"PastCache": {
			reason:   "The cache does not hold a Job made a moment ago: the API server's list is taken.",
			cached:   []client.Object{jobOf("other", "s2")},
			api:      []client.Object{jobOf("new", "s1"), jobOf("other", "s2")},
			complete: atLeastOne,
			want:     []string{"new"},
		},
		"GoneEverywhere": {
			reason:   "No Job in the cache nor in the API server: none, and no error.",
			complete: atLeastOne,
			want:     []string{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cached := fake.NewClientBuilder().WithObjects(tc.cached...).Build()
			api := fake.NewClientBuilder().WithObjects(tc.api...).Build()
			jobs, err := List(context.Background(), cached, api, "team", map[string]string{corev1alpha1.LabelBackupSession: "s1"}, tc.complete)
			if err != nil {
				t.Fatalf("List(): %v", err)
			}
			got := []string{}
			for _, j := range jobs {
				got = append(got, j.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nList(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
