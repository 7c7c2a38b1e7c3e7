package retention

import (
	"context"
	"fmt"
	"sort"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/usage"
)

// RepositoryPlan is what a configuration's retention policy decides for
// the Snapshots of one session in one Repository.
type RepositoryPlan struct {
	Session    string `json:"session"`
	Repository string `json:"repository"`
	// Policy applied; nil when the backend names none and its namespace
	// has no default policy (nothing is removed).
	Policy *storagev1alpha1.ObjectReference `json:"policy,omitempty"`
	// Problem says why the policy cannot be applied (nothing is removed),
	// naming the field at fault.
	Problem string `json:"problem,omitempty"`
	// Paused: the Repository is paused, so retention does not act on it.
	Paused    bool       `json:"paused,omitempty"`
	Decisions []Decision `json:"decisions,omitempty"`
}

// Plan decides, for each repository of each of the configuration's
// sessions named in sessions (all when empty), which Snapshots its
// retention policy keeps at now. It reads, and changes nothing.
func Plan(ctx context.Context, c client.Reader, bc *corev1alpha1.BackupConfiguration, now time.Time, sessions ...string) ([]RepositoryPlan, error) {
	want := map[string]bool{}
	for _, s := range sessions {
		want[s] = true
	}
	var out []RepositoryPlan
	for _, s := range bc.Spec.Sessions {
		if len(want) > 0 && !want[s.Name] {
			continue
		}
		for _, ri := range s.Repositories {
			p, err := planRepository(ctx, c, bc, s.Name, ri, now)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func planRepository(ctx context.Context, c client.Reader, bc *corev1alpha1.BackupConfiguration, session string, ri corev1alpha1.RepositoryInfo, now time.Time) (RepositoryPlan, error) {
	out := RepositoryPlan{Session: session, Repository: ri.Name}
	rp, problem, err := policyOf(ctx, c, bc, ri.Backend)
	if err != nil || rp == nil {
		return out, err
	}
	out.Policy = &storagev1alpha1.ObjectReference{Namespace: rp.Namespace, Name: rp.Name}
	if problem != "" {
		out.Problem = problem
		return out, nil
	}
	policy, err := PolicyOf(rp)
	if err != nil {
		out.Problem = fmt.Sprintf("retentionpolicy %s/%s: spec.maxRetentionPeriod: %v", rp.Namespace, rp.Name, err)
		return out, nil
	}
	repo := &storagev1alpha1.Repository{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: bc.Namespace, Name: ri.Name}, repo); client.IgnoreNotFound(err) != nil {
		return out, fmt.Errorf("cannot get repository %q: %w", ri.Name, err)
	}
	if repo.Spec.Paused {
		out.Paused = true
		return out, nil
	}
	snaps, err := snapshotsOf(ctx, c, bc, session, ri.Name)
	if err != nil {
		return out, err
	}
	out.Decisions = Evaluate(policy, snaps, now, time.UTC)
	return out, nil
}

// policyOf finds the RetentionPolicy of a configuration's backend: the one
// it names, else the default one of the configuration's namespace, else
// none. problem says why a policy found may not be used.
func policyOf(ctx context.Context, c client.Reader, bc *corev1alpha1.BackupConfiguration, backend string) (*storagev1alpha1.RetentionPolicy, string, error) {
	for i, b := range bc.Spec.Backends {
		if b.Name != backend {
			continue
		}
		if b.RetentionPolicy == nil || b.RetentionPolicy.Name == "" {
			return defaultPolicy(ctx, c, bc.Namespace)
		}
		return NamedPolicy(ctx, c, bc, i)
	}
	return nil, "", nil
}

// NamedPolicy reads the RetentionPolicy that backend i of a configuration
// names (nil when it names none). problem says, naming the field, why it
// may not be used: it does not exist, its usagePolicy does not admit the
// configuration's namespace, or its maxRetentionPeriod overflows. The
// configuration's validation and retention both judge by it.
func NamedPolicy(ctx context.Context, c client.Reader, bc *corev1alpha1.BackupConfiguration, i int) (rp *storagev1alpha1.RetentionPolicy, problem string, err error) {
	ref := bc.Spec.Backends[i].RetentionPolicy
	if ref == nil || ref.Name == "" {
		return nil, "", nil
	}
	ns := ref.Namespace
	if ns == "" {
		ns = bc.Namespace
	}
	field := fmt.Sprintf("spec.backends[%d].retentionPolicy", i)
	rp = &storagev1alpha1.RetentionPolicy{}
	err = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, rp)
	if client.IgnoreNotFound(err) != nil {
		return nil, "", fmt.Errorf("cannot get retentionpolicy %s/%s: %w", ns, ref.Name, err)
	}
	if err != nil {
		rp.Namespace, rp.Name = ns, ref.Name
		return rp, fmt.Sprintf("%s: retentionpolicy %s/%s not found", field, ns, rp.Name), nil
	}
	ok, why, err := usage.Allowed(ctx, c, rp.Spec.UsagePolicy, rp.Namespace, bc.Namespace)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return rp, fmt.Sprintf("%s: retentionpolicy %s/%s may not be used from namespace %q: %s", field, ns, rp.Name, bc.Namespace, why), nil
	}
	if _, err := PolicyOf(rp); err != nil {
		return rp, fmt.Sprintf("%s: retentionpolicy %s/%s: spec.maxRetentionPeriod: %v", field, ns, rp.Name, err), nil
	}
	return rp, "", nil
}

// defaultPolicy is the namespace's RetentionPolicy marked default, the
// first by name when several are.
func defaultPolicy(ctx context.Context, c client.Reader, ns string) (*storagev1alpha1.RetentionPolicy, string, error) {
	list := &storagev1alpha1.RetentionPolicyList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, "", fmt.Errorf("cannot list retentionpolicies: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	for i := range list.Items {
		if list.Items[i].Spec.Default {
			return &list.Items[i], "", nil
		}
	}
	return nil, "", nil
}

// PolicyOf reads a RetentionPolicy's rules.
func PolicyOf(rp *storagev1alpha1.RetentionPolicy) (Policy, error) {
	period, err := ParsePeriod(string(rp.Spec.MaxRetentionPeriod))
	if err != nil {
		return Policy{}, err
	}
	p := Policy{MaxRetentionPeriod: period, MaxRetentionPeriodText: string(rp.Spec.MaxRetentionPeriod), FailedLast: 1}
	if s := rp.Spec.SuccessfulSnapshots; s != nil {
		p.Last, p.Hourly, p.Daily, p.Weekly, p.Monthly, p.Yearly = s.Last, s.Hourly, s.Daily, s.Weekly, s.Monthly, s.Yearly
	}
	if f := rp.Spec.FailedSnapshots; f != nil && f.Last != nil {
		p.FailedLast = *f.Last
	}
	return p, nil
}

// snapshotsOf lists the Snapshots one session of a configuration took in a
// Repository, with what uses each now.
func snapshotsOf(ctx context.Context, c client.Reader, bc *corev1alpha1.BackupConfiguration, session, repository string) ([]Snapshot, error) {
	list := &storagev1alpha1.SnapshotList{}
	if err := c.List(ctx, list, client.InNamespace(bc.Namespace), client.MatchingLabels{
		storagev1alpha1.LabelRepository: repository, corev1alpha1.LabelInvokerName: bc.Name, corev1alpha1.LabelSession: session,
	}); err != nil {
		return nil, fmt.Errorf("cannot list snapshots: %w", err)
	}
	inUse, err := usersOf(ctx, c, bc.Namespace, repository, list.Items)
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, s := range list.Items {
		if s.DeletionTimestamp != nil {
			continue
		}
		t := s.CreationTimestamp.Time
		if s.Status.SnapshotTime != nil {
			t = s.Status.SnapshotTime.Time
		}
		o := Unfinished
		switch s.Status.Phase {
		case storagev1alpha1.SnapshotSucceeded:
			o = Succeeded
		case storagev1alpha1.SnapshotFailed:
			o = Failed
		}
		out = append(out, Snapshot{Name: s.Name, Time: t, Outcome: o, Paused: s.Spec.Paused,
			Verified: s.Status.VerificationStatus == storagev1alpha1.SnapshotVerified, InUse: inUse[s.Name]})
	}
	return out, nil
}

// usersOf names, by Snapshot, the unfinished verification or restore that
// reads it. A restore of "latest" reads the newest Succeeded Snapshot.
func usersOf(ctx context.Context, c client.Reader, ns, repository string, snaps []storagev1alpha1.Snapshot) (map[string]string, error) {
	out := map[string]string{}
	vs := &corev1alpha1.BackupVerificationSessionList{}
	if err := c.List(ctx, vs, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("cannot list backupverificationsessions: %w", err)
	}
	for _, v := range vs.Items {
		switch v.Status.Phase {
		case corev1alpha1.VerificationSessionSucceeded, corev1alpha1.VerificationSessionFailed, corev1alpha1.VerificationSessionSkipped:
			continue
		}
		if v.Spec.Repository == repository && v.DeletionTimestamp == nil {
			out[v.Spec.Snapshot] = "backupverificationsession " + v.Namespace + "/" + v.Name
		}
	}
	rs := &corev1alpha1.RestoreSessionList{}
	if err := c.List(ctx, rs); err != nil {
		return nil, fmt.Errorf("cannot list restoresessions: %w", err)
	}
	for _, r := range rs.Items {
		switch r.Status.Phase {
		case corev1alpha1.RestoreSucceeded, corev1alpha1.RestoreFailed, corev1alpha1.RestoreInvalid:
			continue
		}
		src := r.Spec.DataSource
		from := src.Namespace
		if from == "" {
			from = r.Namespace
		}
		if from != ns || src.Repository != repository || r.DeletionTimestamp != nil {
			continue
		}
		name := src.Snapshot
		if name == "latest" {
			name = newestSucceeded(snaps)
		}
		out[name] = "restoresession " + r.Namespace + "/" + r.Name
	}
	return out, nil
}

func newestSucceeded(snaps []storagev1alpha1.Snapshot) string {
	var best *storagev1alpha1.Snapshot
	for i := range snaps {
		s := &snaps[i]
		if s.Status.Phase == storagev1alpha1.SnapshotSucceeded && (best == nil || best.CreationTimestamp.Before(&s.CreationTimestamp)) {
			best = s
		}
	}
	if best == nil {
		return ""
	}
	return best.Name
}
