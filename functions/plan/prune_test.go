package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestPruneJob(t *testing.T) {
	repo := func(labelled bool) *storagev1alpha1.Repository {
		r := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "demo"}}
		if labelled {
			r.Labels = map[string]string{corev1alpha1.LabelInvokerName: "app-backup"}
		}
		r.Spec.EncryptionSecret = storagev1alpha1.ObjectReference{Name: "restic-password"}
		return r
	}
	local := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "demo"}}
	local.Spec.Storage = storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderLocal, Local: &storagev1alpha1.LocalSpec{
		MountPath: "/stashplane", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/backups"}}}}
	s3 := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "offsite", Namespace: "platform"}}
	s3.Spec.Storage = storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{SecretName: "s3-creds"}}

	type want struct {
		Name, ServiceAccount string
		Args                 []string
		Volumes              []string
		Secrets              []string
		Err                  bool
	}
	cases := map[string]struct {
		reason  string
		repo    *storagev1alpha1.Repository
		storage *storagev1alpha1.BackupStorage
		want    want
	}{
		"Local": {
			reason:  "A local storage's volume is mounted where the agent expects it; there is no storage Secret.",
			repo:    repo(true),
			storage: local,
			want: want{Name: "app-prune", ServiceAccount: "app-backup-stashplane",
				Args: []string{"prune-agent", "--namespace=demo", "--storage=demo/shared", "--repository=app",
					"--password-file=/etc/stashplane/encryption/RESTIC_PASSWORD", "--scratch-dir=/tmp/stashplane"},
				Volumes: []string{"storage-local=/stashplane", "encryption-secret=/etc/stashplane/encryption", "scratch=/tmp/stashplane"},
				Secrets: []string{"restic-password"}},
		},
		"S3OfAnotherNamespace": {
			reason:  "A storage of another namespace is reached with the configuration's copy of its Secret.",
			repo:    repo(true),
			storage: s3,
			want: want{Name: "app-prune", ServiceAccount: "app-backup-stashplane",
				Args: []string{"prune-agent", "--namespace=demo", "--storage=platform/offsite", "--repository=app",
					"--password-file=/etc/stashplane/encryption/RESTIC_PASSWORD", "--scratch-dir=/tmp/stashplane", "--storage-secret-dir=/etc/stashplane/storage"},
				Volumes: []string{"encryption-secret=/etc/stashplane/encryption", "scratch=/tmp/stashplane", "storage-secret=/etc/stashplane/storage"},
				Secrets: []string{"restic-password", "app-backup.platform.offsite-storage"}},
		},
		"NoConfiguration": {
			reason:  "A Repository no configuration composed has no account to prune with.",
			repo:    repo(false),
			storage: local,
			want:    want{Err: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			j, err := PruneJob(tc.repo, tc.storage, "stashplane:test")
			got := want{Err: err != nil}
			if err == nil {
				pod := j.Spec.Template.Spec
				got.Name, got.ServiceAccount, got.Args = j.Name, pod.ServiceAccountName, pod.Containers[0].Args
				for _, m := range pod.Containers[0].VolumeMounts {
					got.Volumes = append(got.Volumes, m.Name+"="+m.MountPath)
				}
				if len(pod.Volumes) != len(got.Volumes) {
					t.Errorf("%d volumes for %d mounts", len(pod.Volumes), len(got.Volumes))
				}
				for _, v := range pod.Volumes {
					if v.Secret != nil {
						got.Secrets = append(got.Secrets, v.Secret.SecretName)
					}
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nPruneJob: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
