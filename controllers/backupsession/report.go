package backupsession

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/lru"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/tenancy"
)

// The backup Jobs run as their configuration's ServiceAccount, whose Role
// lets them read but not write Snapshots. A run grants that account the
// right to write the status of its own Snapshots, by name, just before its
// Jobs are made, and revokes it once it has an outcome: a Job never writes
// to a Snapshot of another run, nor to its own after the run ended.

// fieldOwner applies what a session composes besides its Jobs.
const fieldOwner = client.FieldOwner("stashplane-backupsession")

// reportGrant is the Role and RoleBinding of a run's report right.
// The Jobs run as the configuration's ServiceAccount, or as the one the
// session's jobTemplate names (jobAccount).
func reportGrant(bs *corev1alpha1.BackupSession, snaps []*storagev1alpha1.Snapshot, jobAccount string) []client.Object {
	names := make([]string, 0, len(snaps))
	for _, s := range snaps {
		names = append(names, s.Name)
	}
	subjects := tenancy.ServiceAccounts(bs.Namespace, naming.ConfigurationServiceAccount(bs.Spec.Invoker.Name), jobAccount)
	labels := map[string]string{corev1alpha1.LabelBackupSession: bs.Name}
	return tenancy.Grant(naming.BackupReportGrant(bs.Name), bs.Namespace, labels, agentapi.ReportRulesFor(names), subjects...)
}

// grantReport applies the run's report grant, controlled by the session.
func (r *reconciler) grantReport(ctx context.Context, bs *corev1alpha1.BackupSession, snaps []*storagev1alpha1.Snapshot, jobAccount string) error {
	for _, o := range reportGrant(bs, snaps, jobAccount) {
		if err := tenancy.ApplyOwned(ctx, r.kube, bs, o, fieldOwner); err != nil {
			return err
		}
	}
	return nil
}

// revokeReport deletes the run's report grant once it has an outcome.
// A run that ended is reconciled on each later event (its retention, its
// Snapshots' records), so the runs whose grant this process already
// deleted are remembered and not sent the two deletes again; after a
// restart each is revoked once more, finding nothing.
func (r *reconciler) revokeReport(ctx context.Context, rn *run) (ctrl.Result, bool, error) {
	if r.revoked.has(rn.bs.UID) {
		return ctrl.Result{}, false, nil
	}
	name := naming.BackupReportGrant(rn.bs.Name)
	for _, o := range []client.Object{&rbacv1.RoleBinding{}, &rbacv1.Role{}} {
		o.SetName(name)
		o.SetNamespace(rn.bs.Namespace)
		if err := r.kube.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, false, fmt.Errorf("cannot revoke the report grant %q of backupsession %q: %w", name, rn.bs.Name, err)
		}
	}
	r.revoked.add(rn.bs.UID)
	return ctrl.Result{}, false, nil
}

// revokedRuns is how many runs whose report grant was deleted are
// remembered: more than end between two events of any one of them.
const revokedRuns = 4096

// revocations are the runs whose report grant this process deleted, the
// most recent revokedRuns of them. The zero value remembers none.
type revocations struct{ runs *lru.Cache }

func newRevocations() revocations { return revocations{runs: lru.New(revokedRuns)} }

func (v revocations) has(uid types.UID) bool {
	if v.runs == nil || uid == "" {
		return false
	}
	_, ok := v.runs.Get(uid)
	return ok
}

func (v revocations) add(uid types.UID) {
	if v.runs != nil && uid != "" {
		v.runs.Add(uid, struct{}{})
	}
}
