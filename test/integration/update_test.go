/*
Copyright 2026 The Stashplane Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package integration

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestUpdate(t *testing.T) {
	type want struct {
		invalid  bool
		messages []string
	}
	cases := map[string]struct {
		reason   string
		manifest string
		obj      client.Object
		// change modifies the stored object before it is written back.
		change func(client.Object)
		// status writes through the status subresource.
		status bool
		want   want
	}{
		"BackupVerificationSessionSpecImmutable": {
			reason:   "The spec of a BackupVerificationSession should not change once created.",
			manifest: backupVerificationSession,
			obj:      &corev1alpha1.BackupVerificationSession{},
			change: func(o client.Object) {
				o.(*corev1alpha1.BackupVerificationSession).Spec.Snapshot = "another-snapshot"
			},
			want: want{invalid: true, messages: []string{"spec", "spec is immutable"}},
		},
		"BackupVerificationSessionStatusMutable": {
			reason:   "The status of a BackupVerificationSession should still be written.",
			manifest: backupVerificationSession,
			obj:      &corev1alpha1.BackupVerificationSession{},
			status:   true,
			change: func(o client.Object) {
				o.(*corev1alpha1.BackupVerificationSession).Status.Phase = corev1alpha1.VerificationSessionRunning
			},
		},
		"SnapshotVerificationStatus": {
			reason:   "A Snapshot's verification verdict should be written through the status subresource.",
			manifest: snapshot,
			obj:      &storagev1alpha1.Snapshot{},
			status:   true,
			change: func(o client.Object) {
				s := o.(*storagev1alpha1.Snapshot)
				s.Status.Phase = storagev1alpha1.SnapshotSucceeded
				s.Status.VerificationStatus = storagev1alpha1.SnapshotVerified
				s.Status.VerificationSession = "demo-repo-frequent-1700000000"
				s.Status.Components = map[string]storagev1alpha1.Component{
					storagev1alpha1.ComponentDump: {Phase: storagev1alpha1.ComponentSucceeded, Driver: storagev1alpha1.DriverRestic, Size: "12 MiB"},
				}
			},
		},
		"SnapshotBadVerificationStatus": {
			reason:   "A verification verdict outside Verified, NotVerified and VerificationFailed should be rejected.",
			manifest: snapshot,
			obj:      &storagev1alpha1.Snapshot{},
			status:   true,
			change: func(o client.Object) {
				o.(*storagev1alpha1.Snapshot).Status.VerificationStatus = "Maybe"
			},
			want: want{invalid: true, messages: []string{"status.verificationStatus", `Unsupported value: "Maybe"`}},
		},
		"BackupSessionBadPhase": {
			reason:   "A BackupSession phase outside the enum should be rejected.",
			manifest: backupSession,
			obj:      &corev1alpha1.BackupSession{},
			status:   true,
			change: func(o client.Object) {
				o.(*corev1alpha1.BackupSession).Status.Phase = "Done"
			},
			want: want{invalid: true, messages: []string{"status.phase"}},
		},
		"RepositoryPathImmutable": {
			reason:   "A Repository's path should not change once created: the broker grants a path to the Repository made with it.",
			manifest: repository,
			obj:      &storagev1alpha1.Repository{},
			change: func(o client.Object) {
				o.(*storagev1alpha1.Repository).Spec.Path = "other-team/db"
			},
			want: want{invalid: true, messages: []string{"spec.path", "path cannot change"}},
		},
		"RepositoryStorageRefImmutable": {
			reason:   "A Repository's storage should not change once created.",
			manifest: repository,
			obj:      &storagev1alpha1.Repository{},
			change: func(o client.Object) {
				o.(*storagev1alpha1.Repository).Spec.StorageRef.Name = "another-storage"
			},
			want: want{invalid: true, messages: []string{"spec.storageRef", "storageRef cannot change"}},
		},
		"RepositoryOtherFieldsMutable": {
			reason:   "The rest of a Repository's spec still changes.",
			manifest: repository,
			obj:      &storagev1alpha1.Repository{},
			change: func(o client.Object) {
				r := o.(*storagev1alpha1.Repository)
				r.Spec.Paused = true
				r.Spec.DeletionPolicy = storagev1alpha1.DeletionPolicyWipeOut
			},
		},
		"RepositoryBadPhase": {
			reason:   "A Repository phase outside NotReady and Ready should be rejected.",
			manifest: repository,
			obj:      &storagev1alpha1.Repository{},
			status:   true,
			change: func(o client.Object) {
				o.(*storagev1alpha1.Repository).Status.Phase = "Initializing"
			},
			want: want{invalid: true, messages: []string{"status.phase"}},
		},
	}

	requireControlPlane(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			u := object(t, "update-"+name, tc.manifest)
			if err := kube.Create(ctx, u); err != nil {
				t.Fatalf("\n%s\nCreate(...): %v", tc.reason, err)
			}
			if err := kube.Get(ctx, client.ObjectKeyFromObject(u), tc.obj); err != nil {
				t.Fatalf("\n%s\nGet(...): %v", tc.reason, err)
			}
			tc.change(tc.obj)

			var err error
			if tc.status {
				err = kube.Status().Update(ctx, tc.obj)
			} else {
				err = kube.Update(ctx, tc.obj)
			}
			if !tc.want.invalid {
				if err != nil {
					t.Fatalf("\n%s\nUpdate(...): want no error, got %v", tc.reason, err)
				}
				return
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("\n%s\nUpdate(...): want an Invalid error, got %v", tc.reason, err)
			}
			for _, msg := range tc.want.messages {
				if !strings.Contains(err.Error(), msg) {
					t.Errorf("\n%s\nUpdate(...): want an error mentioning %q, got %v", tc.reason, msg, err)
				}
			}
		})
	}
}
