package processnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
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
// hostPath or local PV) are used where they are. A pod's fsGroup is applied
// to the volumes a kubelet applies it to: all but hostPath, and claims only
// when the dev cluster's own provisioner made their volume.
func (p *Provider) volumeSources(ctx context.Context, pod *corev1.Pod, podDir string) (map[string]string, error) {
	out := make(map[string]string, len(pod.Spec.Volumes))
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(podDir, "volumes", v.Name)
		src, owned, err := p.volumeSource(ctx, pod, v, dir)
		if err != nil {
			return nil, err
		}
		if fsGroup := fsGroupOf(pod); fsGroup != nil && owned {
			if err := applyFSGroup(src, *fsGroup, isProjected(v)); err != nil {
				return nil, err
			}
		}
		out[v.Name] = src
	}
	return out, nil
}

func fsGroupOf(pod *corev1.Pod) *int64 {
	if pod.Spec.SecurityContext == nil {
		return nil
	}
	return pod.Spec.SecurityContext.FSGroup
}

// isProjected says whether a volume's files are written by the node from
// API objects: such volumes are read-only and refreshed while the pod runs.
func isProjected(v corev1.Volume) bool {
	return v.Secret != nil || v.ConfigMap != nil || v.Projected != nil || v.DownwardAPI != nil
}

// volumeSource returns the host path of one volume and whether the pod's
// fsGroup applies to it.
func (p *Provider) volumeSource(ctx context.Context, pod *corev1.Pod, v corev1.Volume, dir string) (string, bool, error) {
	switch {
	case isProjected(v):
		files, mode, err := p.volumeFiles(ctx, pod, v, true)
		if err != nil {
			return "", false, err
		}
		_, err = writeFiles(dir, files, mode)
		return dir, true, err
	case v.EmptyDir != nil:
		// World-writable whatever the umask, as a kubelet makes it, so a
		// container of any user can write to it.
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return "", false, err
		}
		return dir, true, os.Chmod(dir, 0o777)
	case v.HostPath != nil:
		return v.HostPath.Path, false, hostPath(v.HostPath)
	case v.PersistentVolumeClaim != nil:
		return p.claimPath(ctx, pod.Namespace, v.PersistentVolumeClaim.ClaimName)
	}
	return "", false, fmt.Errorf("volume %q: only emptyDir, hostPath, secret, configMap, downwardAPI, projected and persistentVolumeClaim volumes run on the process node", v.Name)
}

// volumeFiles returns the files of a Secret, ConfigMap, downward API or
// projected volume and their default mode. Without tokens, a projected
// volume holding service account tokens is not read again: errKeepTokens.
func (p *Provider) volumeFiles(ctx context.Context, pod *corev1.Pod, v corev1.Volume, tokens bool) ([]file, int32, error) {
	switch {
	case v.Secret != nil:
		files, err := p.secretFiles(ctx, pod.Namespace, v.Secret.SecretName, v.Secret.Items, ptr.Deref(v.Secret.Optional, false))
		return files, ptr.Deref(v.Secret.DefaultMode, 0o644), err
	case v.ConfigMap != nil:
		files, err := p.configMapFiles(ctx, pod.Namespace, v.ConfigMap.Name, v.ConfigMap.Items, ptr.Deref(v.ConfigMap.Optional, false))
		return files, ptr.Deref(v.ConfigMap.DefaultMode, 0o644), err
	case v.DownwardAPI != nil:
		files, err := downwardFiles(pod, v.DownwardAPI.Items)
		return files, ptr.Deref(v.DownwardAPI.DefaultMode, 0o644), err
	case v.Projected != nil:
		if !tokens && hasToken(v.Projected) {
			return nil, 0, errKeepTokens
		}
		files, err := p.projectedFiles(ctx, pod, v.Projected)
		return files, ptr.Deref(v.Projected.DefaultMode, 0o644), err
	}
	return nil, 0, fmt.Errorf("volume %q is not projected from API objects", v.Name)
}

// errKeepTokens says a projected volume holds service account tokens and is
// left as it is by a periodic refresh: tokens are requested when a
// container starts, not every few seconds.
var errKeepTokens = errors.New("volume holds service account tokens")

func hasToken(v *corev1.ProjectedVolumeSource) bool {
	for _, s := range v.Sources {
		if s.ServiceAccountToken != nil {
			return true
		}
	}
	return false
}

// refreshVolumes writes the pod's Secret, ConfigMap, downward API and
// projected volumes again from the API objects they come from, as a kubelet
// does while a pod runs, so that running containers see the change and a
// container that starts later sees what an earlier one put in a Secret.
// With tokens, service account tokens are requested anew too. A volume
// whose source cannot be read keeps its last content.
func (p *Provider) refreshVolumes(ctx context.Context, pod *corev1.Pod, podDir string, tokens bool) error {
	var errs []error
	for _, v := range pod.Spec.Volumes {
		if !isProjected(v) {
			continue
		}
		files, mode, err := p.volumeFiles(ctx, pod, v, tokens)
		if errors.Is(err, errKeepTokens) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("volume %q: %w", v.Name, err))
			continue
		}
		dir := filepath.Join(podDir, "volumes", v.Name)
		changed, err := writeFiles(dir, files, mode)
		if err == nil && changed && fsGroupOf(pod) != nil {
			err = applyFSGroup(dir, *fsGroupOf(pod), true)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("volume %q: %w", v.Name, err))
		}
	}
	return errors.Join(errs...)
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
	// owner, when set, owns the file (a service account token).
	owner *int64
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
		var (
			v   string
			err error
		)
		switch {
		case it.FieldRef != nil:
			v, err = fieldValue(pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			v, err = resourceValue(pod, it.ResourceFieldRef.ContainerName, it.ResourceFieldRef)
		default:
			err = fmt.Errorf("downward API file %q needs a fieldRef or a resourceFieldRef", it.Path)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, file{path: it.Path, data: []byte(v), mode: it.Mode})
	}
	return out, nil
}

// fieldValue resolves a fieldRef of the pod's metadata or spec, including
// a single label or annotation, written metadata.labels['key'].
func fieldValue(pod *corev1.Pod, path string) (string, error) {
	if m := keyedField.FindStringSubmatch(path); m != nil {
		if m[1] == "labels" {
			return pod.Labels[m[2]], nil
		}
		return pod.Annotations[m[2]], nil
	}
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

// keyedField matches metadata.labels['key'] and metadata.annotations['key'].
var keyedField = regexp.MustCompile(`^metadata\.(labels|annotations)\['([^']+)'\]$`)

// nodeAllocatable is what the process node offers; a resourceFieldRef to a
// limit a container does not set resolves to it, as on a kubelet.
var nodeAllocatable = corev1.ResourceList{
	corev1.ResourceCPU:              resource.MustParse("32"),
	corev1.ResourceMemory:           resource.MustParse("128Gi"),
	corev1.ResourcePods:             resource.MustParse("500"),
	corev1.ResourceEphemeralStorage: resource.MustParse("500Gi"),
}

// resourceValue resolves a resourceFieldRef (limits.cpu, requests.memory,
// ...) of one of the pod's containers, divided by the divisor and rounded
// up as a kubelet does: CPU in whole cores unless the divisor says
// otherwise, memory and ephemeral storage in bytes.
func resourceValue(pod *corev1.Pod, container string, ref *corev1.ResourceFieldSelector) (string, error) {
	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == container {
			c = &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == container {
			c = &pod.Spec.InitContainers[i]
		}
	}
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef names container %q, which the pod does not have", container)
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || kind != "limits" && kind != "requests" {
		return "", fmt.Errorf("resourceFieldRef %q is not limits.<name> or requests.<name>", ref.Resource)
	}
	rn := corev1.ResourceName(name)
	var q resource.Quantity
	if kind == "requests" {
		// Unset requests are zero (the API server copies set limits into
		// unset requests before the node sees the pod).
		q = c.Resources.Requests[rn]
	} else if l, ok := c.Resources.Limits[rn]; ok {
		q = l
	} else if q, ok = nodeAllocatable[rn]; !ok {
		return "", fmt.Errorf("resourceFieldRef %q names a resource the process node does not know", ref.Resource)
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if rn == corev1.ResourceCPU {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
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
	// As a kubelet writes it: with the volume's mode, unless the pod's
	// containers all run as one user or the pod has an fsGroup; then
	// readable by that user (or group) alone.
	f := file{path: s.Path, data: []byte(tr.Status.Token), owner: fsUserOf(pod)}
	if f.owner != nil || fsGroupOf(pod) != nil {
		f.mode = ptr.To[int32](0o600)
	}
	return []file{f}, nil
}

// dataLink is the entry of a projected volume (Secret, ConfigMap, downward
// API, projected) that names the directory holding its current files; every
// top-level entry of the volume is a link through it.
const dataLink = "..data"

// writeFiles writes a volume's files into dir as a kubelet does, so that a
// container already running sees an update whole and at once: the files are
// written to a new hidden directory, dataLink is switched to it with a
// rename, and the top-level links are added or removed to match. It does
// nothing when the files are what the volume holds already, and says whether
// it changed the volume.
func writeFiles(dir string, files []file, defaultMode int32) (bool, error) {
	for _, f := range files {
		if filepath.IsAbs(f.path) || strings.Contains(f.path, "..") || f.path == "" {
			return false, fmt.Errorf("volume file path %q must be relative and stay in the volume", f.path)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	if old != "" && sameFiles(filepath.Join(dir, old), files, defaultMode) {
		return false, nil
	}
	data, err := os.MkdirTemp(dir, "..data_")
	if err != nil {
		return false, err
	}
	if err := os.Chmod(data, 0o755); err != nil {
		return false, err
	}
	top := map[string]bool{}
	for _, f := range files {
		path := filepath.Join(data, f.path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return false, err
		}
		mode := os.FileMode(ptr.Deref(f.mode, defaultMode))
		if err := os.WriteFile(path, f.data, mode); err != nil {
			return false, err
		}
		if err := os.Chmod(path, mode); err != nil {
			return false, err
		}
		if f.owner != nil {
			if err := os.Chown(path, int(*f.owner), -1); err != nil {
				return false, err
			}
		}
		top[strings.Split(filepath.Clean(f.path), string(filepath.Separator))[0]] = true
	}
	link := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(link)
	if err := os.Symlink(filepath.Base(data), link); err != nil {
		return false, err
	}
	if err := os.Rename(link, filepath.Join(dir, dataLink)); err != nil {
		return false, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") && !top[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return false, err
			}
		}
	}
	for name := range top {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(dataLink, name), filepath.Join(dir, name)); err != nil {
			return false, err
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// sameFiles says whether the directory data holds exactly files, with their
// modes.
func sameFiles(data string, files []file, defaultMode int32) bool {
	want := make(map[string]file, len(files))
	for _, f := range files {
		want[filepath.Clean(f.path)] = f
	}
	n := 0
	err := filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(data, path)
		f, ok := want[rel]
		if !ok {
			return errDifferent
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm() != os.FileMode(ptr.Deref(f.mode, defaultMode)).Perm() {
			return errDifferent
		}
		b, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(b, f.data) {
			return errDifferent
		}
		n++
		return nil
	})
	return err == nil && n == len(want)
}

var errDifferent = errors.New("different")

// claimPath returns the host directory of a bound claim's volume and
// whether the dev cluster's provisioner made it.
func (p *Provider) claimPath(ctx context.Context, ns, name string) (string, bool, error) {
	pvc, err := p.cfg.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", false, &errVolumeNotReady{msg: fmt.Sprintf("cannot get persistentvolumeclaim %q: %v", name, err)}
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", false, &errVolumeNotReady{msg: fmt.Sprintf("persistentvolumeclaim %q is not bound", name)}
	}
	pv, err := p.cfg.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", false, &errVolumeNotReady{msg: fmt.Sprintf("cannot get persistentvolume %q: %v", pvc.Spec.VolumeName, err)}
	}
	ours := pv.Annotations[annProvisionedBy] == ProvisionerName
	switch {
	case pv.Spec.HostPath != nil:
		return pv.Spec.HostPath.Path, ours, hostPath(pv.Spec.HostPath)
	case pv.Spec.Local != nil:
		return pv.Spec.Local.Path, ours, nil
	}
	return "", false, fmt.Errorf("persistentvolume %q: only hostPath and local volumes run on the process node", pv.Name)
}
