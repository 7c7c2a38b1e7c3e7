// Package trigger makes the BackupSession that starts one run of a
// BackupConfiguration's session: the CronJob's pod (`stashplane trigger`)
// does it on schedule, and the configuration's controller does it once
// for the first backup.
package trigger

import (
	"context"
	"fmt"
	"time"

	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// Session returns the BackupSession of a run of session started at now.
func Session(bc *corev1alpha1.BackupConfiguration, session string, now time.Time) (*corev1alpha1.BackupSession, error) {
	var s *corev1alpha1.Session
	for i := range bc.Spec.Sessions {
		if bc.Spec.Sessions[i].Name == session {
			s = &bc.Spec.Sessions[i]
		}
	}
	if s == nil {
		return nil, fmt.Errorf("cannot find session %q in backupconfiguration %q", session, bc.Name)
	}
	bs := &corev1alpha1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{
			Name:      naming.SessionName(bc.Name, session, now.Unix()),
			Namespace: bc.Namespace,
			Labels:    map[string]string{corev1alpha1.LabelInvokerName: bc.Name, corev1alpha1.LabelSession: session},
		},
		Spec: corev1alpha1.BackupSessionSpec{
			Invoker: storagev1alpha1.TypedObjectReference{
				APIGroup: corev1alpha1.GroupVersion.Group, Kind: "BackupConfiguration", Name: bc.Name,
			},
			Session:       session,
			BackupTimeout: s.BackupTimeout,
		},
	}
	if s.RetryConfig != nil {
		bs.Spec.RetryLeft = s.RetryConfig.MaxRetry
	}
	return bs, nil
}

// Create makes the BackupSession of a run of session now. A second trigger
// in the same second finds the first and does nothing.
func Create(ctx context.Context, c client.Client, bc *corev1alpha1.BackupConfiguration, session string, now time.Time) (*corev1alpha1.BackupSession, error) {
	bs, err := Session(bc, session, now)
	if err != nil {
		return nil, err
	}
	if err := c.Create(ctx, bs); err != nil && !kerrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("cannot create backupsession %q: %w", bs.Name, err)
	}
	return bs, nil
}
