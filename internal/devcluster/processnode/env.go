package processnode

import (
	"context"
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// env is the container's environment, resolved as a kubelet resolves it:
// envFrom first, then env in order with $(VAR) references to earlier
// variables expanded, then the API server's address. Other Services' link
// variables are not added: pods find Services by DNS on an isolated
// network, and nothing serves a ClusterIP on the host network.
func (r *podRun) env(ctx context.Context, c corev1.Container, home string) ([]string, error) {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	if img := r.pulledImage(c.Name); img != nil {
		// An image's own variables come first; the container's replace them.
		for _, kv := range img.Config.Env {
			if k, v, ok := strings.Cut(kv, "="); ok {
				set(k, v)
			}
		}
		set("PATH", img.path())
	} else {
		set("PATH", r.p.cfg.Images.PathOf(c.Image))
	}
	if _, ok := vars["HOME"]; !ok {
		set("HOME", home)
	}
	set("HOSTNAME", r.pod.Name)
	for _, from := range c.EnvFrom {
		data, err := r.envSource(ctx, from)
		if err != nil {
			return nil, err
		}
		for k, v := range data {
			set(from.Prefix+k, v)
		}
	}
	for _, e := range c.Env {
		v, err := r.envValue(ctx, e, c.Name)
		if err != nil {
			return nil, fmt.Errorf("env %q: %w", e.Name, err)
		}
		set(e.Name, expand(v, vars))
	}
	cfg := r.p.cfg
	set("KUBERNETES_SERVICE_HOST", cfg.APIServerHost)
	set("KUBERNETES_SERVICE_PORT", cfg.APIServerPort)
	set("KUBERNETES_SERVICE_PORT_HTTPS", cfg.APIServerPort)
	set("KUBERNETES_PORT", "tcp://"+net.JoinHostPort(cfg.APIServerHost, cfg.APIServerPort))
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out, nil
}

func (r *podRun) envSource(ctx context.Context, from corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case from.SecretRef != nil:
		s, err := r.p.cfg.Client.CoreV1().Secrets(r.pod.Namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
		if kerrors.IsNotFound(err) && ptr.Deref(from.SecretRef.Optional, false) {
			return nil, nil
		}
		if err != nil {
			return nil, &errVolumeNotReady{msg: fmt.Sprintf("cannot get secret %q: %v", from.SecretRef.Name, err)}
		}
		out := make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			out[k] = string(v)
		}
		return out, nil
	case from.ConfigMapRef != nil:
		cm, err := r.p.cfg.Client.CoreV1().ConfigMaps(r.pod.Namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
		if kerrors.IsNotFound(err) && ptr.Deref(from.ConfigMapRef.Optional, false) {
			return nil, nil
		}
		if err != nil {
			return nil, &errVolumeNotReady{msg: fmt.Sprintf("cannot get configmap %q: %v", from.ConfigMapRef.Name, err)}
		}
		return cm.Data, nil
	}
	return nil, nil
}

func (r *podRun) envValue(ctx context.Context, e corev1.EnvVar, container string) (string, error) {
	vf := e.ValueFrom
	switch {
	case vf == nil:
		return e.Value, nil
	case vf.FieldRef != nil && (vf.FieldRef.FieldPath == "status.podIP" || vf.FieldRef.FieldPath == "status.podIPs"):
		return r.ip.String(), nil
	case vf.FieldRef != nil && (vf.FieldRef.FieldPath == "status.hostIP" || vf.FieldRef.FieldPath == "status.hostIPs"):
		return "127.0.0.1", nil
	case vf.FieldRef != nil:
		return fieldValue(r.snapshot(), vf.FieldRef.FieldPath)
	case vf.ResourceFieldRef != nil:
		name := vf.ResourceFieldRef.ContainerName
		if name == "" {
			name = container
		}
		return resourceValue(r.snapshot(), name, vf.ResourceFieldRef)
	case vf.SecretKeyRef != nil:
		files, err := r.p.secretFiles(ctx, r.pod.Namespace, vf.SecretKeyRef.Name,
			[]corev1.KeyToPath{{Key: vf.SecretKeyRef.Key, Path: vf.SecretKeyRef.Key}}, ptr.Deref(vf.SecretKeyRef.Optional, false))
		return firstFile(files), err
	case vf.ConfigMapKeyRef != nil:
		files, err := r.p.configMapFiles(ctx, r.pod.Namespace, vf.ConfigMapKeyRef.Name,
			[]corev1.KeyToPath{{Key: vf.ConfigMapKeyRef.Key, Path: vf.ConfigMapKeyRef.Key}}, ptr.Deref(vf.ConfigMapKeyRef.Optional, false))
		return firstFile(files), err
	}
	return "", fmt.Errorf("only value, fieldRef, resourceFieldRef, secretKeyRef and configMapKeyRef run on the process node")
}

func firstFile(files []file) string {
	if len(files) == 0 {
		return ""
	}
	return string(files[0].data)
}

// expand replaces $(VAR) references to variables defined before it; $$
// escapes a dollar, as in a kubelet.
func expand(v string, vars map[string]string) string {
	if !strings.Contains(v, "$") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '$' && i+1 < len(v) && v[i+1] == '$':
			b.WriteByte('$')
			i++
		case v[i] == '$' && i+1 < len(v) && v[i+1] == '(':
			end := strings.IndexByte(v[i:], ')')
			if end < 0 {
				b.WriteString(v[i:])
				return b.String()
			}
			name := v[i+2 : i+end]
			if val, ok := vars[name]; ok {
				b.WriteString(val)
			} else {
				b.WriteString(v[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String()
}
