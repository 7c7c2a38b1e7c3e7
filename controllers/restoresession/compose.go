package restoresession

import (
	"context"
	"fmt"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/functions/render"
	"github.com/stashplane/stashplane/internal/agentapi"
	"github.com/stashplane/stashplane/internal/sessionjob"
	"github.com/stashplane/stashplane/internal/sessionrun"
)

// fieldOwner applies a session's access objects.
const fieldOwner = client.FieldOwner("stashplane-restoresession")

// passwordKey is the key of the encryption Secret restic reads.
const passwordKey = "RESTIC_PASSWORD"

// source gets the Repository the session restores from and its
// BackupStorage into in, and checks that the session's namespace may use
// that storage. For a Repository in another namespace, a missing
// Repository or storage and a usage policy that does not admit the
// session's namespace all give the same refusal, so a namespace the
// policy does not admit learns nothing of what the other one holds; the
// details go to the controller's log.
func (r *reconciler) source(ctx context.Context, rs *corev1alpha1.RestoreSession, in *plan.Inputs) (*storagev1alpha1.Repository, xpv2.ConditionReason, string, error) {
	ds := rs.Spec.DataSource
	repoNS := repositoryNamespace(rs)
	remote := repoNS != rs.Namespace
	hidden := func(why string) (*storagev1alpha1.Repository, xpv2.ConditionReason, string, error) {
		r.log.V(1).Info("refused a restore from another namespace", "restoresession", rs.Namespace+"/"+rs.Name, "why", why)
		return nil, corev1alpha1.ReasonRestoreNamespaceNotAllowed,
			fmt.Sprintf("repository %q in namespace %q does not exist or may not be used from namespace %q", ds.Repository, repoNS, rs.Namespace), nil
	}
	repo := &storagev1alpha1.Repository{}
	err := sessionrun.Get(ctx, r.kube, r.reader, client.ObjectKey{Namespace: repoNS, Name: ds.Repository}, repo)
	switch {
	case kerrors.IsNotFound(err) && remote:
		return hidden("the repository does not exist")
	case kerrors.IsNotFound(err):
		return nil, corev1alpha1.ReasonRestoreRepositoryNotFound, fmt.Sprintf("repository %q does not exist in namespace %q", ds.Repository, repoNS), nil
	case err != nil:
		return nil, "", "", fmt.Errorf("cannot get repository %q: %w", ds.Repository, err)
	}
	in.Repository = repo

	ref := repo.StorageKey()
	st := &storagev1alpha1.BackupStorage{}
	err = sessionrun.Get(ctx, r.kube, r.reader, ref, st)
	if kerrors.IsNotFound(err) && remote {
		return hidden(fmt.Sprintf("backupstorage %s/%s does not exist", ref.Namespace, ref.Name))
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("cannot get backupstorage %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	in.Storages = map[string]*storagev1alpha1.BackupStorage{ref.Namespace + "/" + ref.Name: st}
	reason, msg, err := r.checkStorageUse(ctx, rs, st)
	if reason == corev1alpha1.ReasonRestoreNamespaceNotAllowed && remote {
		return hidden(msg)
	}
	if err == nil && reason == "" && remote && st.Brokered() && repoNS != st.Namespace {
		// A brokered storage holds each namespace's backups apart: Jobs
		// of one namespace are granted the Repositories of their own, or
		// the platform's shared in the storage's namespace, never those of
		// a third.
		return hidden(fmt.Sprintf("backupstorage %s/%s is brokered, and the repository is of neither the session's namespace nor the storage's", st.Namespace, st.Name))
	}
	return repo, reason, msg, err
}

// resolveSnapshot finds the Snapshot a restore reads: the one named, or
// for "latest" the newest Succeeded Snapshot of the repository. It says
// why when there is none to restore.
func resolveSnapshot(name, repository string, snaps []storagev1alpha1.Snapshot) (*storagev1alpha1.Snapshot, xpv2.ConditionReason, string) {
	if name == corev1alpha1.SnapshotLatest {
		var found *storagev1alpha1.Snapshot
		for i := range snaps {
			s := &snaps[i]
			if s.Spec.Repository != repository || s.Status.Phase != storagev1alpha1.SnapshotSucceeded {
				continue
			}
			if found == nil || snapshotTime(s).After(snapshotTime(found)) {
				found = s
			}
		}
		if found == nil {
			return nil, corev1alpha1.ReasonRestoreSnapshotNotFound, fmt.Sprintf("repository %q has no Succeeded snapshot", repository)
		}
		return found, "", ""
	}
	for i := range snaps {
		s := &snaps[i]
		if s.Name != name {
			continue
		}
		if s.Spec.Repository != repository {
			return nil, corev1alpha1.ReasonRestoreSnapshotNotFound, fmt.Sprintf("snapshot %q belongs to repository %q, not %q", name, s.Spec.Repository, repository)
		}
		if s.Status.Phase != storagev1alpha1.SnapshotSucceeded {
			phase := string(s.Status.Phase)
			if phase == "" {
				phase = "not finished"
			}
			return nil, corev1alpha1.ReasonRestoreSnapshotNotSucceeded, fmt.Sprintf("snapshot %q is %s, not Succeeded", name, phase)
		}
		return s, "", ""
	}
	return nil, corev1alpha1.ReasonRestoreSnapshotNotFound, fmt.Sprintf("snapshot %q does not exist", name)
}

// snapshotTime is when a Snapshot was taken, else when it was made.
func snapshotTime(s *storagev1alpha1.Snapshot) time.Time {
	if s.Status.SnapshotTime != nil {
		return s.Status.SnapshotTime.Time
	}
	return s.CreationTimestamp.Time
}

// planRestore plans the restore's tasks, one per task and component,
// before any access is granted. A plan that cannot be made (a component
// the target has no part for, a task the addon lacks) will not be made by
// trying again: it refuses the restore as invalid.
func planRestore(rs *corev1alpha1.RestoreSession, in plan.Inputs) ([]render.Input, xpv2.ConditionReason, string) {
	inputs, err := plan.Restore(rs, in)
	if err != nil {
		return nil, corev1alpha1.ReasonRestoreSpecInvalid, err.Error()
	}
	return inputs, "", ""
}

// ensureJobs renders the planned restore tasks and creates the Jobs,
// owned by the session. A storageSecret replaces the storage's own
// Secret, which lives in another namespace.
func (r *reconciler) ensureJobs(ctx context.Context, rs *corev1alpha1.RestoreSession, inputs []render.Input, storageSecret string) error {
	components := map[string]bool{}
	for _, input := range inputs {
		components[input.Context.Component] = true
		if storageSecret != "" {
			input.Context.Storage = input.Context.Storage.From(rs.Namespace, storageSecret)
		}
		res, err := r.renderer.Render(ctx, input)
		if err != nil {
			return fmt.Errorf("cannot render task %q: %w", input.Task, err)
		}
		jobs, err := res.Jobs()
		if err != nil {
			return err
		}
		labels := map[string]string{corev1alpha1.LabelRestoreSession: rs.Name, corev1alpha1.LabelComponent: input.Context.Component}
		for _, j := range jobs {
			if j.Spec.Template.Spec.ServiceAccountName == "" {
				j.Spec.Template.Spec.ServiceAccountName = naming.RestoreServiceAccount(rs.Name)
			}
			withReadDataSubset(&j.Spec.Template.Spec, rs.Spec.ReadDataSubset)
			if _, verifying := rs.Labels[corev1alpha1.LabelBackupVerificationSession]; verifying && input.Context.Component == storagev1alpha1.ComponentManifest {
				// A verification checks objects; it never makes one.
				for i := range j.Spec.Template.Spec.Containers {
					j.Spec.Template.Spec.Containers[i].Env = append(j.Spec.Template.Spec.Containers[i].Env, corev1.EnvVar{Name: agentapi.EnvObjectsDryRun, Value: "true"})
				}
			}
			if err := sessionjob.Ensure(ctx, r.kube, r.reader, rs, j, labels); err != nil {
				return err
			}
		}
	}
	if rs.Status.Components == nil {
		rs.Status.Components = map[string]corev1alpha1.ComponentRestoreStatus{}
	}
	// Data planned after its target was recreated adds to the components
	// already under way.
	for c := range rs.Status.Components {
		components[c] = true
	}
	rs.Status.TotalComponents = int32(len(components))
	for c := range components {
		if _, ok := rs.Status.Components[c]; !ok {
			rs.Status.Components[c] = corev1alpha1.ComponentRestoreStatus{Phase: corev1alpha1.RestorePending}
		}
	}
	if rs.Spec.RestoreTimeout != nil && rs.Status.RestoreDeadline == nil {
		rs.Status.RestoreDeadline = ptr.To(metav1.NewTime(r.clock.Now().Add(rs.Spec.RestoreTimeout.Duration)))
	}
	return nil
}

// withReadDataSubset hands spec.readDataSubset to the agents of a Job
// through the environment variable their --read-data-subset defaults to,
// so that every addon's restore task passes it on without a parameter.
func withReadDataSubset(spec *corev1.PodSpec, subset string) {
	if subset == "" {
		return
	}
	for i := range spec.Containers {
		spec.Containers[i].Env = append(spec.Containers[i].Env, corev1.EnvVar{Name: agentapi.EnvReadDataSubset, Value: subset})
	}
}

// watchExecution takes each component's phase from what its agent reported,
// else from its Job, and ends a restore whose Jobs failed, vanished or ran
// past the deadline.
func (r *reconciler) watchExecution(ctx context.Context, rs *corev1alpha1.RestoreSession) (ctrl.Result, error) {
	// Each component still restoring has a Job: one missing from the cache
	// is asked of the API server before the component is told it is gone.
	jobs, err := sessionjob.List(ctx, r.kube, r.reader, rs.Namespace, map[string]string{corev1alpha1.LabelRestoreSession: rs.Name},
		func(jobs []batchv1.Job) bool { return !missingJob(rs.Status.Components, jobs) })
	if err != nil {
		return ctrl.Result{}, err
	}
	now := r.clock.Now()
	settled := ensuredLongAgo(rs, now)
	stuck := map[string]string{}
	for i := range jobs {
		j := &jobs[i]
		if sessionjob.Ended(j) {
			continue
		}
		if why := sessionjob.Unstartable(sessionjob.NewestPod(ctx, r.kube, r.reader, j), now, sessionjob.UnstartableGrace); why != "" {
			stuck[j.Name] = why
		}
	}
	components, reason, msg := observe(rs.Status.Components, jobs, settled, stuck)
	rs.Status.Components = components
	if d := rs.Status.RestoreDeadline; reason == "" && d != nil && now.After(d.Time) {
		reason, msg = corev1alpha1.ReasonRestoreTimedOut, fmt.Sprintf("the restore did not finish within its timeout of %s", rs.Spec.RestoreTimeout.Duration)
		for name, c := range rs.Status.Components {
			if c.Phase != corev1alpha1.RestoreSucceeded && c.Phase != corev1alpha1.RestoreFailed {
				c.Phase, c.Error = corev1alpha1.RestoreFailed, msg
				rs.Status.Components[name] = c
			}
		}
	}
	if reason != "" {
		sessionrun.SetCondition(r.clock, rs, corev1alpha1.TypeRestoreIncomplete, true, reason, msg)
	}
	for i := range jobs {
		// A Job whose pod cannot start would wait for ever: it goes, as
		// every Job does once the restore timed out.
		if reason != corev1alpha1.ReasonRestoreTimedOut && stuck[jobs[i].Name] == "" {
			continue
		}
		if err := r.kube.Delete(ctx, &jobs[i], client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("cannot delete job %q: %w", jobs[i].Name, err)
		}
	}
	wait := 10 * time.Second
	if d := rs.Status.RestoreDeadline; d != nil && d.Sub(now) > 0 && d.Sub(now) < wait {
		wait = d.Sub(now) + time.Second
	}
	return ctrl.Result{RequeueAfter: wait}, nil
}

// ensuredLongAgo says whether the Jobs were created long enough ago that
// their absence from the cache means they are gone.
func ensuredLongAgo(rs *corev1alpha1.RestoreSession, now time.Time) bool {
	c := rs.GetCondition(corev1alpha1.TypeRestoreExecutorEnsured)
	// The Jobs of a recreated target's data are made when it is found.
	t := rs.GetCondition(corev1alpha1.TypeRestoreTargetFound)
	return c.Status == corev1.ConditionTrue && now.Sub(c.LastTransitionTime.Time) > 5*time.Second &&
		(t.Status != corev1.ConditionTrue || now.Sub(t.LastTransitionTime.Time) > 5*time.Second)
}

// missingJob says whether a component still restoring has no Job among
// jobs.
func missingJob(components map[string]corev1alpha1.ComponentRestoreStatus, jobs []batchv1.Job) bool {
	have := map[string]bool{}
	for i := range jobs {
		have[jobs[i].Labels[corev1alpha1.LabelComponent]] = true
	}
	for name, c := range components {
		if c.Phase != corev1alpha1.RestoreSucceeded && c.Phase != corev1alpha1.RestoreFailed && !have[name] {
			return true
		}
	}
	return false
}
