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
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	addonsv1alpha1 "github.com/stashplane/stashplane/apis/addons/v1alpha1"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// AddToScheme adds the kinds of every Stashplane API group to s.
func AddToScheme(s *runtime.Scheme) error {
	for _, add := range []func(*runtime.Scheme) error{
		storagev1alpha1.AddToScheme,
		corev1alpha1.AddToScheme,
		addonsv1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return fmt.Errorf("cannot add Stashplane API types to scheme: %w", err)
		}
	}
	return nil
}

// Scheme knows the Kubernetes kinds and Stashplane's: the one scheme of the
// provider's manager and of the CLI's clients.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("cannot add Kubernetes kinds to scheme: %w", err)
	}
	if err := AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}
