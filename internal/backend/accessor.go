package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"path"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A local BackupStorage (a hostPath, an NFS export, a PVC) is reachable
// only from a pod that mounts it, so its controller runs an accessor
// Deployment that mounts the volume and serves it (`stashplane storage
// serve`) to holders of a token kept in a Secret beside it.
const (
	// LabelBackupStorage names the BackupStorage an object serves.
	LabelBackupStorage = "stashplane.io/backupstorage"
	// LabelComponent says what part of Stashplane an object is.
	LabelComponent = "stashplane.io/component"
	// ComponentAccessor is the accessor's component label value.
	ComponentAccessor = "storage-accessor"

	// AccessorPort is where the accessor listens on its pod IP.
	AccessorPort = 9000
	// accessorTokenKey is the token's key in the accessor's Secret.
	accessorTokenKey = "token"
	accessorTokenDir = "/var/run/stashplane/accessor"
)

// AccessorName is the name of a BackupStorage's accessor Deployment and
// token Secret.
func AccessorName(bs *storagev1alpha1.BackupStorage) string {
	return bs.Name + "-accessor"
}

func accessorLabels(bs *storagev1alpha1.BackupStorage) map[string]string {
	return map[string]string{LabelBackupStorage: bs.Name, LabelComponent: ComponentAccessor}
}

// NewAccessorToken returns a fresh random token.
func NewAccessorToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cannot generate accessor token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// AccessorSecret is the Secret holding the accessor's token.
func AccessorSecret(bs *storagev1alpha1.BackupStorage, token string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: AccessorName(bs), Namespace: bs.Namespace, Labels: accessorLabels(bs)},
		Data:       map[string][]byte{accessorTokenKey: []byte(token)},
	}
}

// AccessorRoot is the directory the accessor serves: the volume's mount
// path and the storage's subPath.
func AccessorRoot(l *storagev1alpha1.LocalSpec) string {
	return path.Join(l.MountPath, l.SubPath)
}

// AccessorDeployment is the Deployment that mounts a local storage's volume
// and serves it.
func AccessorDeployment(bs *storagev1alpha1.BackupStorage, image string) (*appsv1.Deployment, error) {
	l := bs.Spec.Storage.Local
	if l == nil {
		return nil, fmt.Errorf("cannot run an accessor for %q storage", bs.Spec.Storage.Provider)
	}
	labels := accessorLabels(bs)
	pod := corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:  "accessor",
			Image: image,
			Args: []string{"storage", "serve",
				"--root", AccessorRoot(l),
				"--listen", "$(POD_IP):" + strconv.Itoa(AccessorPort),
				"--token-file", path.Join(accessorTokenDir, accessorTokenKey)},
			Env: []corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "storage", MountPath: l.MountPath},
				{Name: "token", MountPath: accessorTokenDir, ReadOnly: true},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "storage", VolumeSource: l.VolumeSource},
			{Name: "token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: AccessorName(bs)}}},
		},
	}
	podLabels, podAnnotations := map[string]string{}, map[string]string(nil)
	if rs := bs.Spec.RuntimeSettings; rs != nil {
		applyRuntimeSettings(&pod, rs)
		if rs.Pod != nil {
			for k, v := range rs.Pod.PodLabels {
				podLabels[k] = v
			}
			podAnnotations = rs.Pod.PodAnnotations
		}
	}
	for k, v := range labels {
		podLabels[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: AccessorName(bs), Namespace: bs.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: podAnnotations}, Spec: pod},
		},
	}, nil
}

// AccessorEndpoint returns the address and token of a local storage's
// running accessor.
func AccessorEndpoint(ctx context.Context, c client.Client, bs *storagev1alpha1.BackupStorage) (string, string, error) {
	s := &corev1.Secret{}
	err := c.Get(ctx, types.NamespacedName{Namespace: bs.Namespace, Name: AccessorName(bs)}, s)
	if kerrors.IsNotFound(err) {
		return "", "", &ErrAccessorNotReady{Reason: "its token secret does not exist yet"}
	}
	if err != nil {
		return "", "", fmt.Errorf("cannot get accessor secret: %w", err)
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(bs.Namespace), client.MatchingLabels(accessorLabels(bs))); err != nil {
		return "", "", fmt.Errorf("cannot list accessor pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && ready(&p) {
			return "http://" + net.JoinHostPort(p.Status.PodIP, strconv.Itoa(AccessorPort)), string(s.Data[accessorTokenKey]), nil
		}
	}
	return "", "", &ErrAccessorNotReady{Reason: fmt.Sprintf("no running pod of deployment %q", AccessorName(bs))}
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
