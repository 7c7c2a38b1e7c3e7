package processnode

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
}

func exited(code int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}
}

func waitingState() corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
}

func TestPhase(t *testing.T) {
	cases := map[string]struct {
		reason     string
		policy     corev1.RestartPolicy
		podReason  string
		init, main []corev1.ContainerState
		want       corev1.PodPhase
	}{
		"Creating":      {reason: "Nothing started yet.", policy: corev1.RestartPolicyNever, main: []corev1.ContainerState{waitingState()}, want: corev1.PodPending},
		"InitRunning":   {reason: "Init containers not done keep the pod Pending.", policy: corev1.RestartPolicyNever, init: []corev1.ContainerState{running()}, main: []corev1.ContainerState{waitingState()}, want: corev1.PodPending},
		"InitFailed":    {reason: "A failed init container fails a pod that never restarts.", policy: corev1.RestartPolicyNever, init: []corev1.ContainerState{exited(1)}, main: []corev1.ContainerState{waitingState()}, want: corev1.PodFailed},
		"Running":       {reason: "One running container makes the pod Running.", policy: corev1.RestartPolicyNever, main: []corev1.ContainerState{running(), exited(0)}, want: corev1.PodRunning},
		"Succeeded":     {reason: "All exited zero.", policy: corev1.RestartPolicyNever, main: []corev1.ContainerState{exited(0), exited(0)}, want: corev1.PodSucceeded},
		"Failed":        {reason: "One exited non-zero with Never.", policy: corev1.RestartPolicyNever, main: []corev1.ContainerState{exited(0), exited(3)}, want: corev1.PodFailed},
		"OnFailure":     {reason: "A failed container that will restart keeps the pod Running.", policy: corev1.RestartPolicyOnFailure, main: []corev1.ContainerState{exited(3)}, want: corev1.PodRunning},
		"Always":        {reason: "Exited containers restart under Always.", policy: corev1.RestartPolicyAlways, main: []corev1.ContainerState{exited(0)}, want: corev1.PodRunning},
		"SetupFailed":   {reason: "A pod-level failure reason fails the pod.", policy: corev1.RestartPolicyAlways, podReason: "ImageNotMapped", main: []corev1.ContainerState{exited(128)}, want: corev1.PodFailed},
		"VolumeWaiting": {reason: "Waiting for a volume is not a failure.", policy: corev1.RestartPolicyNever, podReason: "ContainerCreating", main: []corev1.ContainerState{waitingState()}, want: corev1.PodPending},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: tc.policy}}
			pod.Status.Reason = tc.podReason
			for _, s := range tc.init {
				pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, corev1.ContainerStatus{State: s})
			}
			for _, s := range tc.main {
				pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{State: s})
			}
			if diff := cmp.Diff(tc.want, phase(pod)); diff != "" {
				t.Errorf("%s\nphase(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestIPPool(t *testing.T) {
	p, err := newIPPool(netip.MustParsePrefix("127.42.0.0/30"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 {
		a, err := p.take()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	if diff := cmp.Diff([]string{"127.42.0.1", "127.42.0.2", "127.42.0.3"}, got); diff != "" {
		t.Errorf("addresses taken: -want +got:\n%s", diff)
	}
	if _, err := p.take(); err == nil {
		t.Errorf("take() from an exhausted range: want an error")
	}
	p.give(netip.MustParseAddr("127.42.0.2"))
	if a, err := p.take(); err != nil || a.String() != "127.42.0.2" {
		t.Errorf("take() after give: got %v, %v; want the returned address", a, err)
	}
	if _, err := newIPPool(netip.MustParsePrefix("10.0.0.0/8")); err == nil {
		t.Errorf("newIPPool(10.0.0.0/8): want an error, pod IPs must stay on loopback")
	}
}
