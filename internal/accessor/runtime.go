package accessor

import (
	corev1 "k8s.io/api/core/v1"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// applyRuntimeSettings puts a storage's pod and container settings on a pod
// Stashplane runs for it.
func applyRuntimeSettings(pod *corev1.PodSpec, rs *storagev1alpha1.RuntimeSettings) {
	if p := rs.Pod; p != nil {
		pod.NodeSelector = p.NodeSelector
		pod.ServiceAccountName = p.ServiceAccountName
		pod.Tolerations = p.Tolerations
		pod.PriorityClassName = p.PriorityClassName
		pod.ImagePullSecrets = p.ImagePullSecrets
		pod.SecurityContext = p.SecurityContext
	}
	if c := rs.Container; c != nil {
		for i := range pod.Containers {
			pod.Containers[i].Resources = c.Resources
			pod.Containers[i].Env = append(pod.Containers[i].Env, c.Env...)
			pod.Containers[i].SecurityContext = c.SecurityContext
		}
	}
}
