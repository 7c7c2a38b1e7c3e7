package processnode

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestIdentityOf(t *testing.T) {
	pod := func(psc *corev1.PodSecurityContext, csc *corev1.SecurityContext) (*corev1.Pod, corev1.Container) {
		c := corev1.Container{Name: "main", SecurityContext: csc}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Spec: corev1.PodSpec{SecurityContext: psc, Containers: []corev1.Container{c}}}, c
	}
	cases := map[string]struct {
		reason  string
		psc     *corev1.PodSecurityContext
		csc     *corev1.SecurityContext
		want    *identity
		wantErr error
	}{
		"Root": {
			reason: "Without a securityContext the container runs as root, as the process node's images do.",
		},
		"PodUser": {
			reason: "The pod's runAsUser and runAsGroup apply to its containers.",
			psc:    &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](999), RunAsGroup: ptr.To[int64](999)},
			want:   &identity{UID: 999, GID: 999},
		},
		"ContainerOverPod": {
			reason: "A container's own runAsUser and runAsGroup win over the pod's.",
			psc:    &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](999), RunAsGroup: ptr.To[int64](999)},
			csc:    &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1001)},
			want:   &identity{UID: 1000, GID: 1001},
		},
		"Groups": {
			reason: "Supplemental groups and the fsGroup join the container's groups, each once.",
			psc: &corev1.PodSecurityContext{
				RunAsUser: ptr.To[int64](999), RunAsGroup: ptr.To[int64](999),
				SupplementalGroups: []int64{2000, 3000}, FSGroup: ptr.To[int64](2000),
			},
			want: &identity{UID: 999, GID: 999, Groups: []uint32{2000, 3000}},
		},
		"RootWithFSGroup": {
			reason: "Root with an fsGroup gets the group too.",
			psc:    &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000)},
			want:   &identity{UID: 0, GID: 0, Groups: []uint32{2000}},
		},
		"NonRootRefused": {
			reason:  "runAsNonRoot without a user would run as root: refused, as a kubelet does.",
			psc:     &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
			wantErr: errRunAsRoot,
		},
		"NonRootOnContainer": {
			reason:  "A container's runAsNonRoot is enforced too.",
			csc:     &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](0)},
			wantErr: errRunAsRoot,
		},
		"NonRootWithUser": {
			reason: "runAsNonRoot with a non-root user runs.",
			psc:    &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534), RunAsGroup: ptr.To[int64](65534)},
			want:   &identity{UID: 65534, GID: 65534},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, c := pod(tc.psc, tc.csc)
			got, err := identityOf(p, c)
			if diff := cmp.Diff(tc.wantErr, err, cmpopts.EquateErrors()); diff != "" {
				t.Fatalf("%s\nidentityOf(...): -want error, +got error:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nidentityOf(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestApplyFSGroup(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "file"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := applyFSGroup(dir, 2000, false); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		GID  uint32
		Mode os.FileMode
	}
	got := map[string]entry{}
	for _, p := range []string{"sub", "sub/file"} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		got[p] = entry{GID: fi.Sys().(*syscall.Stat_t).Gid, Mode: fi.Mode()}
	}
	want := map[string]entry{
		"sub":      {GID: 2000, Mode: os.ModeDir | os.ModeSetgid | 0o770},
		"sub/file": {GID: 2000, Mode: 0o660},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a volume given to fsGroup 2000: -want +got:\n%s", diff)
	}
}

func TestFSUserOf(t *testing.T) {
	user := func(uid int64) *corev1.SecurityContext { return &corev1.SecurityContext{RunAsUser: ptr.To(uid)} }
	cases := map[string]struct {
		pod  corev1.PodSpec
		want *int64
	}{
		"NoUser": {pod: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}},
		"PodUser": {
			pod:  corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](65532)}, Containers: []corev1.Container{{Name: "a"}}},
			want: ptr.To[int64](65532),
		},
		"SameUserInitToo": {
			pod:  corev1.PodSpec{InitContainers: []corev1.Container{{Name: "i", SecurityContext: user(65532)}}, Containers: []corev1.Container{{Name: "a", SecurityContext: user(65532)}}},
			want: ptr.To[int64](65532),
		},
		"UsersDiffer": {
			pod: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "i", SecurityContext: user(1000)}}, Containers: []corev1.Container{{Name: "a", SecurityContext: user(65532)}}},
		},
		"OneWithoutUser": {
			pod: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", SecurityContext: user(65532)}, {Name: "b"}}},
		},
		"ContainerOverPod": {
			pod: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1)},
				Containers: []corev1.Container{{Name: "a", SecurityContext: user(65532)}}},
			want: ptr.To[int64](65532),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, fsUserOf(&corev1.Pod{Spec: tc.pod})); diff != "" {
				t.Errorf("fsUserOf (-want +got):\n%s", diff)
			}
		})
	}
}
