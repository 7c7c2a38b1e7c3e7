package processnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// errVolumeNotReady marks a volume that cannot be set up yet (a missing
// Secret, an unbound claim) but may be later; the pod stays Pending with
// reason ContainerCreating and setup is retried, as a kubelet does.
type errVolumeNotReady struct{ msg string }

func (e *errVolumeNotReady) Error() string { return e.msg }

// volumeSources materialises the pod's volumes as host paths: emptyDir,
// Secret, ConfigMap, downward API and projected volumes are written under
// the pod's directory; hostPath and persistent volume claims (bound to a
// hostPath or local PV) are used where they are.
func (p *Provider) volumeSources(ctx context.Context, pod *corev1.Pod, podDir string) (map[string]string, error) {
	out := make(map[string]string, len(pod.Spec.Volumes))
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(podDir, "volumes", v.Name)
		src, err := p.volumeSource(ctx, pod, v, dir)
		if err != nil {
			return nil, err
		}
		out[v.Name] = src
	}
	return out, nil
}

func (p *Provider) volumeSource(ctx context.Context, pod *corev1.Pod, v corev1.Volume, dir string) (string, error) {
	switch {
	case v.EmptyDir != nil:
		return dir, os.MkdirAll(dir, 0o777)
	case v.HostPath != nil:
		return v.HostPath.Path, hostPath(v.HostPath)
	case v.Secret != nil:
		files, err := p.secretFiles(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, ptr.Deref(v.Secret.Optional, false))
		if err != nil {
			return "", err
		}
		return dir, writeFiles(dir, files, ptr.Deref(v.Secret.DefaultMode, 0o644))
	case v.ConfigMap != nil:
		files, err := p.configMapFiles(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, ptr.Deref(v.ConfigMap.Optional, false))
		if err != nil {
			return "", err
		}
		return dir, writeFiles(dir, files, ptr.Deref(v.ConfigMap.DefaultMode, 0o644))
	case v.DownwardAPI != nil:
		files, err := downwardFiles(pod, v.DownwardAPI.Items)
		if err != nil {
			return "", err
		}
		return dir, writeFiles(dir, files, ptr.Deref(v.DownwardAPI.DefaultMode, 0o644))
	case v.Projected != nil:
		files, err := p.projectedFiles(ctx, pod, v.Projected)
		if err != nil {
			return "", err
		}
		return dir, writeFiles(dir, files, ptr.Deref(v.Projected.DefaultMode, 0o644))
	case v.PersistentVolumeClaim != nil:
		return p.claimPath(ctx, pod.Namespace, v.PersistentVolumeClaim.ClaimName)
	}
	return "", fmt.Errorf("volume %q: only emptyDir, hostPath, secret, configMap, downwardAPI, projected and persistentVolumeClaim volumes run on the process node", v.Name)
}

func hostPath(h *corev1.HostPathVolumeSource) error {
	switch ptr.Deref(h.Type, corev1.HostPathUnset) {
	case corev1.HostPathDirectoryOrCreate:
		return os.MkdirAll(h.Path, 0o755)
	case corev1.HostPathFileOrCreate:
		if err := os.MkdirAll(filepath.Dir(h.Path), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	case corev1.HostPathDirectory, corev1.HostPathFile:
		if _, err := os.Stat(h.Path); err != nil {
			return &errVolumeNotReady{msg: fmt.Sprintf("hostPath %q does not exist", h.Path)}
		}
	}
	return nil
}

// file is one file of a Secret, ConfigMap, downward API or projected volume.
type file struct {
	path string
	data []byte
	mode *int32
}

func keyFiles(kind, name string, data map[string][]byte, items []corev1.KeyToPath) ([]file, error) {
	if len(items) == 0 {
		out := make([]file, 0, len(data))
		for k, d := range data {
			out = append(out, file{path: k, data: d})
		}
		return out, nil
	}
	out := make([]file, 0, len(items))
	for _, it := range items {
		d, ok := data[it.Key]
		if !ok {
			return nil, &errVolumeNotReady{msg: fmt.Sprintf("%s %q has no key %q", kind, name, it.Key)}
		}
		out = append(out, file{path: it.Path, data: d, mode: it.Mode})
	}
	return out, nil
}

func (p *Provider) secretFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional bool) ([]file, error) {
	s, err := p.cfg.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case kerrors.IsNotFound(err) && optional:
		return nil, nil
	case kerrors.IsNotFound(err):
		return nil, &errVolumeNotReady{msg: fmt.Sprintf("secret %q not found", name)}
	case err != nil:
		return nil, &errVolumeNotReady{msg: fmt.Sprintf("cannot get secret %q: %v", name, err)}
	}
	return keyFiles("secret", name, s.Data, items)
}

func (p *Provider) configMapFiles(ctx context.Context, ns, name string, items []corev1.KeyToPath, optional bool) ([]file, error) {
	cm, err := p.cfg.Client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case kerrors.IsNotFound(err) && optional:
		return nil, nil
	case kerrors.IsNotFound(err):
		return nil, &errVolumeNotReady{msg: fmt.Sprintf("configmap %q not found", name)}
	case err != nil:
		return nil, &errVolumeNotReady{msg: fmt.Sprintf("cannot get configmap %q: %v", name, err)}
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles("configmap", name, data, items)
}

func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile) ([]file, error) {
	out := make([]file, 0, len(items))
	for _, it := range items {
		if it.FieldRef == nil {
			return nil, fmt.Errorf("downward API file %q: only fieldRef runs on the process node", it.Path)
		}
		v, err := fieldValue(pod, it.FieldRef.FieldPath)
		if err != nil {
			return nil, err
		}
		out = append(out, file{path: it.Path, data: []byte(v), mode: it.Mode})
	}
	return out, nil
}

func fieldValue(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	}
	return "", fmt.Errorf("field %q is not available on the process node", path)
}

func formatMap(m map[string]string) string {
	lines := make([]string, 0, len(m))
	for k, v := range m {
		lines = append(lines, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func (p *Provider) projectedFiles(ctx context.Context, pod *corev1.Pod, v *corev1.ProjectedVolumeSource) ([]file, error) {
	var out []file
	for _, s := range v.Sources {
		var (
			files []file
			err   error
		)
		switch {
		case s.Secret != nil:
			files, err = p.secretFiles(ctx, pod.Namespace, s.Secret.Name, s.Secret.Items, ptr.Deref(s.Secret.Optional, false))
		case s.ConfigMap != nil:
			files, err = p.configMapFiles(ctx, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, ptr.Deref(s.ConfigMap.Optional, false))
		case s.DownwardAPI != nil:
			files, err = downwardFiles(pod, s.DownwardAPI.Items)
		case s.ServiceAccountToken != nil:
			files, err = p.tokenFile(ctx, pod, s.ServiceAccountToken)
		default:
			err = fmt.Errorf("projected source of pod %q is not supported on the process node", pod.Name)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
	}
	return out, nil
}

// tokenFile asks the API server for a token of the pod's service account,
// bound to the pod, as a kubelet does for a projected token.
func (p *Provider) tokenFile(ctx context.Context, pod *corev1.Pod, s *corev1.ServiceAccountTokenProjection) ([]file, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: s.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if s.Audience != "" {
		req.Spec.Audiences = []string{s.Audience}
	}
	tr, err := p.cfg.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return nil, &errVolumeNotReady{msg: fmt.Sprintf("cannot request a token for service account %q: %v", sa, err)}
	}
	return []file{{path: s.Path, data: []byte(tr.Status.Token), mode: ptr.To[int32](0o600)}}, nil
}

// writeFiles writes a volume's files into dir, replacing what was there.
func writeFiles(dir string, files []file, defaultMode int32) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if filepath.IsAbs(f.path) || strings.Contains(f.path, "..") {
			return fmt.Errorf("volume file path %q must be relative and stay in the volume", f.path)
		}
		path := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(ptr.Deref(f.mode, defaultMode))
		if err := os.WriteFile(path, f.data, mode); err != nil {
			return err
		}
		if err := os.Chmod(path, mode); err != nil {
			return err
		}
	}
	return nil
}

// claimPath returns the host directory of a bound claim's volume.
func (p *Provider) claimPath(ctx context.Context, ns, name string) (string, error) {
	pvc, err := p.cfg.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", &errVolumeNotReady{msg: fmt.Sprintf("cannot get persistentvolumeclaim %q: %v", name, err)}
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", &errVolumeNotReady{msg: fmt.Sprintf("persistentvolumeclaim %q is not bound", name)}
	}
	pv, err := p.cfg.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", &errVolumeNotReady{msg: fmt.Sprintf("cannot get persistentvolume %q: %v", pvc.Spec.VolumeName, err)}
	}
	switch {
	case pv.Spec.HostPath != nil:
		return pv.Spec.HostPath.Path, hostPath(pv.Spec.HostPath)
	case pv.Spec.Local != nil:
		return pv.Spec.Local.Path, nil
	}
	return "", fmt.Errorf("persistentvolume %q: only hostPath and local volumes run on the process node", pv.Name)
}
