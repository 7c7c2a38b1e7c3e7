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

package apis

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func TestAddToScheme(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatalf("AddToScheme(...): %v", err)
	}

	type want struct {
		gvk schema.GroupVersionKind
	}
	cases := map[string]struct {
		reason string
		obj    runtime.Object
		want   want
	}{
		"BackupStorage": {
			reason: "A BackupStorage should be registered under the storage group.",
			obj:    &storagev1alpha1.BackupStorage{},
			want:   want{gvk: storagev1alpha1.BackupStorageGroupVersionKind},
		},
		"Repository": {
			reason: "A Repository should be registered under the storage group.",
			obj:    &storagev1alpha1.Repository{},
			want:   want{gvk: storagev1alpha1.RepositoryGroupVersionKind},
		},
		"Snapshot": {
			reason: "A Snapshot should be registered under the storage group.",
			obj:    &storagev1alpha1.Snapshot{},
			want:   want{gvk: storagev1alpha1.SnapshotGroupVersionKind},
		},
		"RetentionPolicy": {
			reason: "A RetentionPolicy should be registered under the storage group.",
			obj:    &storagev1alpha1.RetentionPolicy{},
			want:   want{gvk: storagev1alpha1.RetentionPolicyGroupVersionKind},
		},
		"BackupConfiguration": {
			reason: "A BackupConfiguration should be registered under the core group.",
			obj:    &corev1alpha1.BackupConfiguration{},
			want:   want{gvk: corev1alpha1.BackupConfigurationGroupVersionKind},
		},
		"BackupSession": {
			reason: "A BackupSession should be registered under the core group.",
			obj:    &corev1alpha1.BackupSession{},
			want:   want{gvk: corev1alpha1.BackupSessionGroupVersionKind},
		},
		"RestoreSession": {
			reason: "A RestoreSession should be registered under the core group.",
			obj:    &corev1alpha1.RestoreSession{},
			want:   want{gvk: corev1alpha1.RestoreSessionGroupVersionKind},
		},
		"BackupVerifier": {
			reason: "A BackupVerifier should be registered under the core group.",
			obj:    &corev1alpha1.BackupVerifier{},
			want:   want{gvk: corev1alpha1.BackupVerifierGroupVersionKind},
		},
		"BackupVerificationSession": {
			reason: "A BackupVerificationSession should be registered under the core group.",
			obj:    &corev1alpha1.BackupVerificationSession{},
			want:   want{gvk: corev1alpha1.BackupVerificationSessionGroupVersionKind},
		},
		"HookTemplate": {
			reason: "A HookTemplate should be registered under the core group.",
			obj:    &corev1alpha1.HookTemplate{},
			want:   want{gvk: corev1alpha1.HookTemplateGroupVersionKind},
		},
		"BackupBlueprint": {
			reason: "A BackupBlueprint should be registered under the core group.",
			obj:    &corev1alpha1.BackupBlueprint{},
			want:   want{gvk: corev1alpha1.BackupBlueprintGroupVersionKind},
		},
		"Addon": {
			reason: "An Addon should be registered under the addons group.",
			obj:    &addonsv1alpha1.Addon{},
			want:   want{gvk: addonsv1alpha1.AddonGroupVersionKind},
		},
		"Function": {
			reason: "A Function should be registered under the addons group.",
			obj:    &addonsv1alpha1.Function{},
			want:   want{gvk: addonsv1alpha1.FunctionGroupVersionKind},
		},
	}

	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			gvks, _, err := s.ObjectKinds(tc.obj)
			if err != nil {
				t.Fatalf("\n%s\ns.ObjectKinds(...): %v", tc.reason, err)
			}
			if diff := cmp.Diff([]schema.GroupVersionKind{tc.want.gvk}, gvks); diff != "" {
				t.Errorf("\n%s\ns.ObjectKinds(...): -want +got:\n%s", tc.reason, diff)
			}

			// The list kind must be registered too, so that clients can list.
			list := tc.want.gvk.GroupVersion().WithKind(tc.want.gvk.Kind + "List")
			if !s.Recognizes(list) {
				t.Errorf("\n%s\ns.Recognizes(%s): want true, got false", tc.reason, list)
			}

			// A round trip through the scheme must give back the same kind.
			obj, err := s.New(tc.want.gvk)
			if err != nil {
				t.Fatalf("\n%s\ns.New(...): %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.obj, obj); diff != "" {
				t.Errorf("\n%s\ns.New(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
