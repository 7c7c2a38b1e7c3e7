package render

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestFrom(t *testing.T) {
	volumes := []corev1.Volume{{Name: "storage-local", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/backups"}}}}
	mounts := []corev1.VolumeMount{{Name: "storage-local", MountPath: "/stashplane/storage"}}
	local := Storage{Name: "disk", Namespace: "platform", Provider: "local", Volumes: volumes, VolumeMounts: mounts}
	s3 := Storage{Name: "shared", Namespace: "platform", Provider: "s3", SecretName: "creds", Volumes: []corev1.Volume{}, VolumeMounts: []corev1.VolumeMount{}}
	brokered := func(s Storage) Storage { s.Brokered = true; return s }
	cases := map[string]struct {
		reason string
		in     Storage
		ns     string
		want   Storage
	}{
		"OwnNamespace": {
			reason: "Jobs of the storage's own namespace see it whole, brokered or not.",
			in:     brokered(local), ns: "platform", want: brokered(local),
		},
		"DirectLocal": {
			reason: "A local storage reached directly is mounted from another namespace, with no Secret.",
			in:     local, ns: "team-a", want: local,
		},
		"DirectObjectStore": {
			reason: "An object store reached directly is reached with the owner's copy of its Secret.",
			in:     s3, ns: "team-a",
			want: Storage{Name: "shared", Namespace: "platform", Provider: "s3", SecretName: "owner-copy", Volumes: []corev1.Volume{}, VolumeMounts: []corev1.VolumeMount{}},
		},
		"BrokeredLocal": {
			reason: "A brokered local storage is not mounted from another namespace: its Jobs hold the grant alone.",
			in:     brokered(local), ns: "team-a",
			want: Storage{Name: "disk", Namespace: "platform", Provider: "local", SecretName: "owner-copy", Volumes: []corev1.Volume{}, VolumeMounts: []corev1.VolumeMount{}, Brokered: true},
		},
		"BrokeredAmbient": {
			reason: "A brokered object store without a Secret is reached with the grant from another namespace.",
			in:     brokered(Storage{Name: "shared", Namespace: "platform", Provider: "gcs", Volumes: []corev1.Volume{}, VolumeMounts: []corev1.VolumeMount{}}), ns: "team-a",
			want: Storage{Name: "shared", Namespace: "platform", Provider: "gcs", SecretName: "owner-copy", Volumes: []corev1.Volume{}, VolumeMounts: []corev1.VolumeMount{}, Brokered: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.in.From(tc.ns, "owner-copy")); diff != "" {
				t.Errorf("\n%s\nFrom(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
