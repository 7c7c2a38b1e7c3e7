package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/internal/restic"
)

func TestPrunePodOf(t *testing.T) {
	long := "a-repository-with-a-name-long-enough-to-be-cut-x-prune" // 54 characters
	cases := map[string]struct {
		reason string
		host   string
		job    string
		want   bool
	}{
		"PodOfTheJob":    {"a pod the Job made", "db-prune-x7k2q", "db-prune", true},
		"OtherJob":       {"a pod of another Repository's prune Job", "dbx-prune-x7k2q", "db-prune", false},
		"LongerName":     {"a prune pod of Repository db-prune-ab, whose Job has this one's as a prefix", "db-prune-ab-prune-x7k2q", "db-prune", false},
		"BackupPod":      {"a backup pod", "db-backup-1700000000-x7k2q", "db-prune", false},
		"ShortSuffix":    {"four characters are not a generated suffix", "db-prune-x7k2", "db-prune", false},
		"Vowel":          {"generated names have no vowels", "db-prune-x7a2q", "db-prune", false},
		"Workstation":    {"a restic run on a workstation", "laptop", "db-prune", false},
		"TruncatedBase":  {"the Job's name cut to 58 characters", long + "-prune-bcdfg"[:58-len(long)] + "bcdfg", long + "-prune", true},
		"NotTruncated":   {"the whole name of a long Job is not what the pod carries", long + "-prune-bcdfg", long + "-prune", false},
		"EmptyHost":      {"a lock without a host", "", "db-prune", false},
		"SuffixOnlyHost": {"only the suffix", "x7k2q", "db-prune", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, prunePodOf(tc.host, tc.job)); diff != "" {
				t.Errorf("%s: prunePodOf(%q, %q): -want +got:\n%s", tc.reason, tc.host, tc.job, diff)
			}
		})
	}
}

func TestDeadLocks(t *testing.T) {
	errBoom := errors.New("boom")
	notFound := kerrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "x")
	forbidden := kerrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", errors.New("no rule"))
	pod := func(phase corev1.PodPhase, deleting bool) *corev1.Pod {
		p := &corev1.Pod{Status: corev1.PodStatus{Phase: phase}}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		}
		return p
	}
	agent := func(phase corev1.PodPhase, deleting bool) *corev1.Pod {
		p := pod(phase, deleting)
		p.Labels = map[string]string{corev1alpha1.LabelComponent: "dump"}
		return p
	}
	type get struct {
		pod *corev1.Pod
		err error
	}
	lock := func(id, host string, exclusive bool) restic.Lock {
		return restic.Lock{ID: id, Hostname: host, Exclusive: exclusive, PID: 1}
	}
	cases := map[string]struct {
		reason   string
		locks    []restic.Lock
		replaced []string
		pods     map[string]get
		want     []string
		wantErr  error
	}{
		"ReplacedRunGone": {
			reason:   "the shared lock of a pod of a run this run replaced goes once the pod is gone",
			locks:    []restic.Lock{lock("a", "app-full-x7k2q", false)},
			replaced: []string{"app-full-x7k2q"},
			pods:     map[string]get{"app-full-x7k2q": {err: notFound}},
			want:     []string{"a"},
		},
		"ReplacedRunFailedExclusive": {
			reason:   "an exclusive lock of a replaced run's pod that failed goes too",
			locks:    []restic.Lock{lock("a", "app-full-x7k2q", true)},
			replaced: []string{"app-full-x7k2q"},
			pods:     map[string]get{"app-full-x7k2q": {pod: pod(corev1.PodFailed, false)}},
			want:     []string{"a"},
		},
		"ReplacedRunStillTerminating": {
			reason:   "a replaced run's pod that is still being deleted keeps its lock",
			locks:    []restic.Lock{lock("a", "app-full-x7k2q", false)},
			replaced: []string{"app-full-x7k2q"},
			pods:     map[string]get{"app-full-x7k2q": {pod: pod(corev1.PodRunning, true)}},
		},
		"NotReplacedBackup": {
			reason:   "the lock of a backup pod this run did not replace stays when that pod no longer exists: nothing shows it was an agent's",
			locks:    []restic.Lock{lock("a", "app-full-bcdfg", false)},
			replaced: []string{"app-full-x7k2q"},
		},
		"ReplacedWithoutHost": {
			reason:   "a lock without a host is never taken for a replaced pod's",
			locks:    []restic.Lock{lock("a", "", false)},
			replaced: []string{""},
		},
		"NoLocks": {
			reason: "nothing to remove",
		},
		"PodGone": {
			reason: "the lock of a prune pod that no longer exists goes",
			locks:  []restic.Lock{lock("a", "db-prune-x7k2q", true)},
			pods:   map[string]get{"db-prune-x7k2q": {err: notFound}},
			want:   []string{"a"},
		},
		"PodFailed": {
			reason: "the lock of a prune pod that failed (killed) goes",
			locks:  []restic.Lock{lock("a", "db-prune-x7k2q", true)},
			pods:   map[string]get{"db-prune-x7k2q": {pod: pod(corev1.PodFailed, false)}},
			want:   []string{"a"},
		},
		"PodSucceeded": {
			reason: "the lock of a prune pod that finished goes",
			locks:  []restic.Lock{lock("a", "db-prune-x7k2q", true)},
			pods:   map[string]get{"db-prune-x7k2q": {pod: pod(corev1.PodSucceeded, false)}},
			want:   []string{"a"},
		},
		"PodRunning": {
			reason: "a live prune's lock stays",
			locks:  []restic.Lock{lock("a", "db-prune-x7k2q", true)},
			pods:   map[string]get{"db-prune-x7k2q": {pod: pod(corev1.PodRunning, false)}},
		},
		"PodPending": {
			reason: "a pod not yet reported running may run",
			locks:  []restic.Lock{lock("a", "db-prune-x7k2q", true)},
			pods:   map[string]get{"db-prune-x7k2q": {pod: pod(corev1.PodPending, false)}},
		},
		"PodUnknown": {
			reason: "a pod on a node that stopped reporting may still run",
			locks:  []restic.Lock{lock("a", "db-prune-x7k2q", true)},
			pods:   map[string]get{"db-prune-x7k2q": {pod: pod(corev1.PodUnknown, false)}},
		},
		"PodTerminating": {
			reason: "a pod being deleted runs until it is gone",
			locks:  []restic.Lock{lock("a", "db-prune-x7k2q", true)},
			pods:   map[string]get{"db-prune-x7k2q": {pod: pod(corev1.PodRunning, true)}},
		},
		"Self": {
			reason: "this pod's own lock is restic's to judge",
			locks:  []restic.Lock{lock("a", "db-prune-self1", true)},
			pods:   map[string]get{"db-prune-self1": {err: notFound}},
		},
		"NotExclusive": {
			reason: "a prune takes only exclusive locks; any other is not its",
			locks:  []restic.Lock{lock("a", "db-prune-x7k2q", false)},
			pods:   map[string]get{"db-prune-x7k2q": {err: notFound}},
		},
		"NotAPrunePod": {
			reason: "an exclusive lock of anything but the prune Job stays (a user's restic on a workstation)",
			locks:  []restic.Lock{lock("a", "laptop", true), lock("b", "dbx-prune-x7k2q", true)},
			pods:   map[string]get{"laptop": {err: notFound}, "dbx-prune-x7k2q": {err: notFound}},
		},
		"Mixed": {
			reason: "only the dead prune pods' locks go",
			locks: []restic.Lock{
				lock("a", "db-prune-x7k2q", true),
				lock("b", "db-prune-bcdfg", true),
				lock("c", "db-backup-1-x7k2q", false),
				lock("d", "db-prune-zzzzz", true),
			},
			pods: map[string]get{
				"db-prune-x7k2q": {err: notFound},
				"db-prune-bcdfg": {pod: pod(corev1.PodRunning, false)},
				"db-prune-zzzzz": {pod: pod(corev1.PodFailed, false)},
			},
			want: []string{"a", "d"},
		},
		"Forbidden": {
			reason: "a pod the agent may not read (a restore from another namespace) keeps its lock; the other dead pod's goes",
			locks:  []restic.Lock{lock("a", "db-prune-x7k2q", true), lock("b", "db-prune-bcdfg", true)},
			pods:   map[string]get{"db-prune-x7k2q": {err: forbidden}, "db-prune-bcdfg": {err: notFound}},
			want:   []string{"b"},
		},
		"AgentPodKilled": {
			reason: "the shared lock of an agent pod that failed (killed mid-backup) goes",
			locks:  []restic.Lock{lock("a", "app-nightly-1-backup-x7k2q", false)},
			pods:   map[string]get{"app-nightly-1-backup-x7k2q": {pod: agent(corev1.PodFailed, false)}},
			want:   []string{"a"},
		},
		"AgentPodSucceeded": {
			reason: "an agent pod that finished holds nothing",
			locks:  []restic.Lock{lock("a", "app-nightly-1-backup-x7k2q", true)},
			pods:   map[string]get{"app-nightly-1-backup-x7k2q": {pod: agent(corev1.PodSucceeded, false)}},
			want:   []string{"a"},
		},
		"AgentPodRunning": {
			reason: "a live agent's lock stays",
			locks:  []restic.Lock{lock("a", "app-nightly-1-backup-x7k2q", false)},
			pods:   map[string]get{"app-nightly-1-backup-x7k2q": {pod: agent(corev1.PodRunning, false)}},
		},
		"AgentPodTerminating": {
			reason: "an agent pod being deleted may still run",
			locks:  []restic.Lock{lock("a", "app-nightly-1-backup-x7k2q", false)},
			pods:   map[string]get{"app-nightly-1-backup-x7k2q": {pod: agent(corev1.PodRunning, true)}},
		},
		"UnlabelledPodFailed": {
			reason: "a finished pod that is not an agent's (no component label) keeps its lock for restic to judge",
			locks:  []restic.Lock{lock("a", "tools-x7k2q", false)},
			pods:   map[string]get{"tools-x7k2q": {pod: pod(corev1.PodFailed, false)}},
		},
		"AgentPodGone": {
			reason: "a pod that no longer exists shows nothing: unless the prune Job or a replaced run names it, its lock stays",
			locks:  []restic.Lock{lock("a", "app-nightly-1-backup-x7k2q", false)},
		},
		"AgentPodUnreadable": {
			reason: "an error reading a pod nothing names keeps its lock and fails nothing",
			locks:  []restic.Lock{lock("a", "app-nightly-1-backup-x7k2q", false)},
			pods:   map[string]get{"app-nightly-1-backup-x7k2q": {err: errBoom}},
		},
		"GetFails": {
			reason:  "a pod that cannot be read keeps every lock",
			locks:   []restic.Lock{lock("a", "db-prune-x7k2q", true), lock("b", "db-prune-bcdfg", true)},
			pods:    map[string]get{"db-prune-x7k2q": {err: notFound}, "db-prune-bcdfg": {err: errBoom}},
			wantErr: errBoom,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			getPod := func(_ context.Context, name string) (*corev1.Pod, error) {
				g, ok := tc.pods[name]
				if !ok {
					return nil, notFound
				}
				return g.pod, g.err
			}
			dead, err := deadLocks(context.Background(), tc.locks, "db-prune", "db-prune-self1", tc.replaced, getPod)
			if diff := cmp.Diff(tc.wantErr, err, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("%s: error: -want +got:\n%s", tc.reason, diff)
			}
			var got []string
			for _, l := range dead {
				got = append(got, l.ID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: locks removed: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
