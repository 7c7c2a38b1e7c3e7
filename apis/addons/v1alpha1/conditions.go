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

package v1alpha1

import (
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
)

// The kinds of this group that report conditions can be handled by
// Crossplane's condition helpers.
var (
	_ resource.Conditioned = &Addon{}
	_ resource.Conditioned = &Function{}
)

// GetCondition returns the Addon's condition of the given type.
func (in *Addon) GetCondition(ct xpv2.ConditionType) xpv2.Condition {
	return in.Status.GetCondition(ct)
}

// SetConditions sets conditions of the Addon.
func (in *Addon) SetConditions(c ...xpv2.Condition) {
	in.Status.SetConditions(c...)
}

// GetCondition returns the Function's condition of the given type.
func (in *Function) GetCondition(ct xpv2.ConditionType) xpv2.Condition {
	return in.Status.GetCondition(ct)
}

// SetConditions sets conditions of the Function.
func (in *Function) SetConditions(c ...xpv2.Condition) {
	in.Status.SetConditions(c...)
}
