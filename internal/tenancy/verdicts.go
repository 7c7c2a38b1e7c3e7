package tenancy

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// VerdictPolicyName names the ValidatingAdmissionPolicy, and its binding,
// that keep a Snapshot's verdict the provider's to write.
const VerdictPolicyName = "stashplane-snapshot-verdicts"

// verdictFields are the Snapshot status fields only the provider writes:
// a verification's outcome, and the damage that overrides it. A backup
// Job may write its own run's Snapshots (their components), never these.
var verdictFields = []string{"verificationStatus", "verificationSession", "verificationTime", "restoreDuration", "bytesRestored", "damage"}

// VerdictPolicy returns the policy and binding that refuse a change of a
// Snapshot's verdict fields by anyone but provider (a user name, as
// authenticated) and the system:masters group (a cluster's break glass).
// RBAC cannot say this: a backup Job's account must write its own
// Snapshots' status while its run lasts, and status is one subresource.
func VerdictPolicy(provider string) (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	same := make([]string, 0, len(verdictFields))
	for _, f := range verdictFields {
		same = append(same, fmt.Sprintf("object.?status.?%s == oldObject.?status.?%s", f, f))
	}
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: VerdictPolicyName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
						Rule: admissionregistrationv1.Rule{
							APIGroups:   []string{"storage.stashplane.io"},
							APIVersions: []string{"*"},
							Resources:   []string{"snapshots", "snapshots/status"},
						},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf("request.userInfo.username == %s || 'system:masters' in request.userInfo.groups || (%s)",
					strconv.Quote(provider), strings.Join(same, " && ")),
				Message: "only the Stashplane provider may change a Snapshot's verdict (status." + strings.Join(verdictFields, ", status.") + "); a verification records it",
				Reason:  ptr.To(metav1.StatusReasonForbidden),
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: VerdictPolicyName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        VerdictPolicyName,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	return policy, binding
}

// GuardVerdicts applies VerdictPolicy for the user cs authenticates as
// (a SelfSubjectReview tells which), and returns that user.
func GuardVerdicts(ctx context.Context, cs kubernetes.Interface, kube client.Client) (string, error) {
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("cannot learn the provider's user name: %w", err)
	}
	user := review.Status.UserInfo.Username
	if user == "" {
		return "", fmt.Errorf("cannot learn the provider's user name: the API server named none")
	}
	policy, binding := VerdictPolicy(user)
	for _, o := range []client.Object{policy, binding} {
		if err := kube.Patch(ctx, o, client.Apply, client.FieldOwner("stashplane-provider"), client.ForceOwnership); err != nil {
			return "", fmt.Errorf("cannot apply %s %q: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
	}
	return user, nil
}
