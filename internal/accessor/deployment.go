package accessor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
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
	// Component is the accessor's component label value.
	Component = "storage-accessor"

	// Port is where the accessor listens on its pod IP.
	Port = 9000
	// tokenKey is the token's key in the accessor's Secret.
	tokenKey = "token"
	tokenDir = "/var/run/stashplane/accessor"
)

// ErrNotReady says a local storage's accessor pod is not serving yet.
type ErrNotReady struct{ Reason string }

func (e *ErrNotReady) Error() string {
	return "the storage accessor is not ready: " + e.Reason
}

// Name is the name of a BackupStorage's accessor Deployment and
// token Secret.
func Name(bs *storagev1alpha1.BackupStorage) string {
	return bs.Name + "-accessor"
}

func labelsOf(bs *storagev1alpha1.BackupStorage) map[string]string {
	return map[string]string{LabelBackupStorage: bs.Name, LabelComponent: Component}
}

// NewToken returns a fresh random token.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cannot generate accessor token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// TokenSecret is the Secret holding the accessor's token, and the
// certificate and key it serves TLS with.
func TokenSecret(bs *storagev1alpha1.BackupStorage, token string, certPEM, keyPEM []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: Name(bs), Namespace: bs.Namespace, Labels: labelsOf(bs)},
		Data:       map[string][]byte{tokenKey: []byte(token), certKey: certPEM, keyKey: keyPEM},
	}
}

// HasCertificate says whether an accessor's Secret holds its certificate
// and key (one made before accessors served TLS does not).
func HasCertificate(s *corev1.Secret) bool {
	return len(s.Data[certKey]) > 0 && len(s.Data[keyKey]) > 0
}

// AddCertificate puts a certificate and key into an accessor's Secret.
func AddCertificate(s *corev1.Secret, certPEM, keyPEM []byte) {
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[certKey], s.Data[keyKey] = certPEM, keyPEM
}

// Root is the directory the accessor serves: the volume's mount
// path and the storage's subPath.
func Root(l *storagev1alpha1.LocalSpec) string {
	return path.Join(l.MountPath, l.SubPath)
}

// Runs says whether a storage runs an accessor: a local one, which only
// a pod that mounts it reaches, and any storage whose Jobs of other
// namespaces reach it through its broker (spec.access Broker).
func Runs(bs *storagev1alpha1.BackupStorage) bool {
	return bs.Spec.Storage.Provider == storagev1alpha1.ProviderLocal || bs.Brokered()
}

// secretDir is where an accessor of an object store reads its credential
// Secret, one file per key.
const secretDir = "/etc/stashplane/storage"

// Deployment is the Deployment that serves a storage: a local one's
// volume, mounted, or an object store's bucket, opened with the storage's
// own credential Secret (or ambient identity), which stays in the
// storage's namespace.
func Deployment(bs *storagev1alpha1.BackupStorage, image string) (*appsv1.Deployment, error) {
	if !Runs(bs) {
		return nil, fmt.Errorf("cannot run an accessor for %q storage that is not brokered", bs.Spec.Storage.Provider)
	}
	labels := labelsOf(bs)
	c := corev1.Container{
		Name:  "accessor",
		Image: image,
		Args: []string{"storage", "serve", "--listen", "$(POD_IP):" + strconv.Itoa(Port), "--token-file", path.Join(tokenDir, tokenKey),
			"--tls-cert-file", path.Join(tokenDir, certKey), "--tls-key-file", path.Join(tokenDir, keyKey)},
		Env:          []corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "token", MountPath: tokenDir, ReadOnly: true}},
	}
	volumes := []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: Name(bs)}}}}
	if l := bs.Spec.Storage.Local; l != nil {
		c.Args = append(c.Args, "--root", Root(l))
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "storage", MountPath: l.MountPath})
		volumes = append(volumes, corev1.Volume{Name: "storage", VolumeSource: l.VolumeSource})
	} else {
		// The backend's spec names no secret value: the Secret is mounted.
		spec, err := json.Marshal(bs.Spec.Storage)
		if err != nil {
			return nil, fmt.Errorf("cannot encode the storage's backend: %w", err)
		}
		c.Args = append(c.Args, "--backend", string(spec))
		if name := bs.Spec.Storage.SecretName(); name != "" {
			c.Args = append(c.Args, "--secret-dir", secretDir)
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "storage-secret", MountPath: secretDir, ReadOnly: true})
			volumes = append(volumes, corev1.Volume{Name: "storage-secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name}}})
		}
	}
	pod := corev1.PodSpec{Containers: []corev1.Container{c}, Volumes: volumes}
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
	podLabels[corev1alpha1.LabelWatched] = "true"
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: Name(bs), Namespace: bs.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: podAnnotations}, Spec: pod},
		},
	}, nil
}

// Credentials are what reaches a storage's accessor: the token (or a grant
// it signed) and the certificate it serves with, which the client pins.
type Credentials struct {
	Token       string
	Certificate []byte
}

// Key returns the token of a storage's accessor, which also signs the
// grants its broker honours, and its certificate.
func Key(ctx context.Context, c client.Reader, bs *storagev1alpha1.BackupStorage) (Credentials, error) {
	s := &corev1.Secret{}
	err := c.Get(ctx, types.NamespacedName{Namespace: bs.Namespace, Name: Name(bs)}, s)
	if kerrors.IsNotFound(err) {
		return Credentials{}, &ErrNotReady{Reason: "its token secret does not exist yet"}
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("cannot get accessor secret: %w", err)
	}
	if len(s.Data[tokenKey]) == 0 {
		return Credentials{}, &ErrNotReady{Reason: "its token secret holds no token"}
	}
	if !HasCertificate(s) {
		return Credentials{}, &ErrNotReady{Reason: "its token secret holds no certificate yet"}
	}
	return Credentials{Token: string(s.Data[tokenKey]), Certificate: s.Data[certKey]}, nil
}

// Endpoint returns the address (https://ip:port) and credentials of a
// storage's running accessor.
func Endpoint(ctx context.Context, c client.Client, bs *storagev1alpha1.BackupStorage) (string, Credentials, error) {
	creds, err := Key(ctx, c, bs)
	if err != nil {
		return "", Credentials{}, err
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(bs.Namespace), client.MatchingLabels(labelsOf(bs))); err != nil {
		return "", Credentials{}, fmt.Errorf("cannot list accessor pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && ready(&p) {
			return "https://" + net.JoinHostPort(p.Status.PodIP, strconv.Itoa(Port)), creds, nil
		}
	}
	return "", Credentials{}, &ErrNotReady{Reason: fmt.Sprintf("no running pod of deployment %q", Name(bs))}
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
