// Package verify makes the BackupVerificationSessions that start
// verifications: a BackupVerifier's CronJob (`stashplane verify now
// --verifier`) makes one for the newest Succeeded Snapshot of every
// Repository linked to the verifier, and `stashplane verify now
// <repository>` makes one for a single Repository.
package verify

import (
	"context"
	"fmt"
	"sort"
	"time"

	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// Link is a Repository linked to a BackupVerifier by a session of a
// BackupConfiguration.
type Link struct {
	Verifier   string
	Repository string
	Session    string
}

// Links lists the Repositories of the configurations linked to a verifier,
// or to any verifier when verifier is empty, in a stable order.
func Links(configs []corev1alpha1.BackupConfiguration, verifier string) []Link {
	var out []Link
	for _, bc := range configs {
		for _, s := range bc.Spec.Sessions {
			for _, r := range s.Repositories {
				v := r.BackupVerifier
				if v == nil || v.Name == "" || (v.Namespace != "" && v.Namespace != bc.Namespace) {
					continue
				}
				if verifier == "" || v.Name == verifier {
					out = append(out, Link{Verifier: v.Name, Repository: r.Name, Session: s.Name})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Repository != out[j].Repository {
			return out[i].Repository < out[j].Repository
		}
		return out[i].Session < out[j].Session
	})
	return out
}

// Latest is the newest Succeeded Snapshot of a Repository, or nil.
func Latest(snaps []storagev1alpha1.Snapshot, repository string) *storagev1alpha1.Snapshot {
	var found *storagev1alpha1.Snapshot
	for i := range snaps {
		s := &snaps[i]
		if s.Spec.Repository != repository || s.Status.Phase != storagev1alpha1.SnapshotSucceeded {
			continue
		}
		if found == nil || taken(s).After(taken(found)) || (taken(s).Equal(taken(found)) && s.Name > found.Name) {
			found = s
		}
	}
	return found
}

func taken(s *storagev1alpha1.Snapshot) time.Time {
	if s.Status.SnapshotTime != nil {
		return s.Status.SnapshotTime.Time
	}
	return s.CreationTimestamp.Time
}

// Session is the BackupVerificationSession that verifies snap with a
// verifier, started at now: "<repository>-<session>-<unix time>".
func Session(namespace, verifier string, snap *storagev1alpha1.Snapshot, now time.Time) *corev1alpha1.BackupVerificationSession {
	session := snap.Spec.Session
	if session == "" {
		session = "manual"
	}
	return &corev1alpha1.BackupVerificationSession{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s-%s-%d", snap.Spec.Repository, session, now.Unix()),
			Namespace: namespace,
			Labels:    map[string]string{corev1alpha1.LabelBackupVerifier: verifier, storagev1alpha1.LabelRepository: snap.Spec.Repository},
		},
		Spec: corev1alpha1.BackupVerificationSessionSpec{
			Invoker:    storagev1alpha1.TypedObjectReference{APIGroup: corev1alpha1.Group, Kind: "BackupVerifier", Name: verifier},
			Session:    session,
			Repository: snap.Spec.Repository,
			Snapshot:   snap.Name,
		},
	}
}

// Now starts a verification of the newest Succeeded Snapshot of every
// Repository in namespace linked to verifier (any verifier when it is
// empty), restricted to repository when it is set. A Repository without a
// Succeeded Snapshot is left out; a second call in the same second finds
// the sessions of the first.
func Now(ctx context.Context, c client.Client, namespace, verifier, repository string, now time.Time) ([]*corev1alpha1.BackupVerificationSession, error) {
	configs := &corev1alpha1.BackupConfigurationList{}
	if err := c.List(ctx, configs, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("cannot list backupconfigurations: %w", err)
	}
	snaps := &storagev1alpha1.SnapshotList{}
	if err := c.List(ctx, snaps, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("cannot list snapshots: %w", err)
	}
	var out []*corev1alpha1.BackupVerificationSession
	seen := map[string]bool{}
	for _, l := range Links(configs.Items, verifier) {
		if (repository != "" && l.Repository != repository) || seen[l.Repository] {
			continue
		}
		seen[l.Repository] = true
		snap := Latest(snaps.Items, l.Repository)
		if snap == nil {
			continue
		}
		s := Session(namespace, l.Verifier, snap, now)
		if err := c.Create(ctx, s); err != nil && !kerrors.IsAlreadyExists(err) {
			return out, fmt.Errorf("cannot create backupverificationsession %q: %w", s.Name, err)
		}
		out = append(out, s)
	}
	if repository != "" && len(out) == 0 {
		if !seen[repository] {
			return nil, fmt.Errorf("cannot verify repository %q: no backupconfiguration in namespace %q links it to a backupverifier", repository, namespace)
		}
		return nil, fmt.Errorf("cannot verify repository %q: it has no Succeeded snapshot", repository)
	}
	return out, nil
}
