package backupconfiguration

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// A repository's deletionPolicy as KubeStash writes it becomes the composed
// Repository's: Retain, a Repository that outlives its configuration with
// its data, is a Repository whose deletion keeps the data.
func TestDesiredRepositoryDeletionPolicy(t *testing.T) {
	cases := map[string]struct {
		reason string
		policy corev1alpha1.RepositoryDeletionPolicy
		want   storagev1alpha1.DeletionPolicy
	}{
		"Unset":   {reason: "The schema defaults to Delete; unset keeps the data too.", want: storagev1alpha1.DeletionPolicyDelete},
		"Delete":  {reason: "Delete keeps the data when the Repository goes.", policy: corev1alpha1.RepositoryDeletionPolicyDelete, want: storagev1alpha1.DeletionPolicyDelete},
		"WipeOut": {reason: "WipeOut removes the data with the Repository.", policy: corev1alpha1.RepositoryDeletionPolicyWipeOut, want: storagev1alpha1.DeletionPolicyWipeOut},
		"Retain":  {reason: "Retain keeps the Repository and its data.", policy: corev1alpha1.RepositoryDeletionPolicyRetain, want: storagev1alpha1.DeletionPolicyDelete},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bc := config(func(s *corev1alpha1.BackupConfigurationSpec) {
				s.Backends[0].StorageRef = &storagev1alpha1.ObjectReference{Name: "shared"}
				s.Sessions[0].Repositories[0].DeletionPolicy = tc.policy
			})
			bc.Namespace = "team"
			repos := desiredRepositories(bc)
			if diff := cmp.Diff(tc.want, repos[0].Spec.DeletionPolicy); diff != "" {
				t.Errorf("%s\ndeletionPolicy: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(storagev1alpha1.ObjectReference{Namespace: "team", Name: "shared"}, repos[0].Spec.StorageRef); diff != "" {
				t.Errorf("storageRef: -want +got:\n%s", diff)
			}
		})
	}
}
