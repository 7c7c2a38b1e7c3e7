package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/verify"
)

func TestPlannedRestore(t *testing.T) {
	now := time.Unix(1796354700, 0)
	snap := func(kind string, phase storagev1alpha1.SnapshotPhase, components ...string) *storagev1alpha1.Snapshot {
		s := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-nightly-1", Namespace: "recovered"}}
		s.Spec.Repository = "app"
		if kind != "" {
			s.Spec.AppRef = &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: kind, Namespace: "default", Name: "app"}
		}
		s.Status.Phase = phase
		s.Status.Components = map[string]storagev1alpha1.Component{}
		for _, c := range components {
			s.Status.Components[c] = storagev1alpha1.Component{Phase: storagev1alpha1.ComponentSucceeded}
		}
		return s
	}
	session := func(ns string, tasks ...corev1alpha1.TaskReference) *corev1alpha1.RestoreSession {
		rs := &corev1alpha1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "restore-app-nightly-1-1796354700", Namespace: ns}}
		rs.Spec.Target = &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "app"}
		rs.Spec.DataSource = corev1alpha1.RestoreDataSource{Repository: "app", Snapshot: "app-nightly-1"}
		rs.Spec.Addon = &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: tasks}
		return rs
	}
	recreate := corev1alpha1.TaskReference{Name: "manifest-restore"}
	data := corev1alpha1.TaskReference{Name: "logical-backup-restore"}
	crossNS := func(rs *corev1alpha1.RestoreSession) *corev1alpha1.RestoreSession {
		rs.Spec.DataSource.Namespace = "recovered"
		rs.Spec.DataSource.EncryptionSecret = &storagev1alpha1.ObjectReference{Name: "pw"}
		return rs
	}
	cases := map[string]struct {
		reason  string
		snap    *storagev1alpha1.Snapshot
		req     restoreRequest
		want    *corev1alpha1.RestoreSession
		wantErr string
	}{
		"InPlace": {
			reason: "A Snapshot of data alone is restored into its workload, in the Snapshot's namespace.",
			snap:   snap("Deployment", storagev1alpha1.SnapshotSucceeded, "dump"),
			want:   session("recovered", data),
		},
		"Recreate": {
			reason: "A Snapshot with resource manifests recreates the objects and restores the data, in another namespace with the password given.",
			snap:   snap("Deployment", storagev1alpha1.SnapshotSucceeded, "dump", "manifest"),
			req:    restoreRequest{ToNamespace: "shop", PasswordSecret: "pw"},
			want:   crossNS(session("shop", recreate, data)),
		},
		"DryRun": {
			reason: "A dry run checks the objects and restores no data.",
			snap:   snap("Deployment", storagev1alpha1.SnapshotSucceeded, "dump", "manifest"),
			req:    restoreRequest{ToNamespace: "shop", PasswordSecret: "pw", DryRun: true},
			want: crossNS(session("shop", corev1alpha1.TaskReference{Name: "manifest-restore",
				Params: &runtime.RawExtension{Raw: []byte(`{"dryRun":true,"overwriteResources":false}`)}})),
		},
		"Namespace": {
			reason: "A namespace's dump is restored with the kubedump-addon into the namespace restored into.",
			snap: func() *storagev1alpha1.Snapshot {
				s := snap("Namespace", storagev1alpha1.SnapshotSucceeded, "manifest")
				s.Spec.AppRef.APIGroup = ""
				return s
			}(),
			req: restoreRequest{ToNamespace: "shop", PasswordSecret: "pw"},
			want: func() *corev1alpha1.RestoreSession {
				rs := crossNS(session("shop", recreate))
				rs.Spec.Target = &storagev1alpha1.TypedObjectReference{Kind: "Namespace", Name: "shop"}
				rs.Spec.Addon.Name = "kubedump-addon"
				return rs
			}(),
		},
		"NoPassword": {
			reason:  "Another namespace needs its own password Secret.",
			snap:    snap("Deployment", storagev1alpha1.SnapshotSucceeded, "dump"),
			req:     restoreRequest{ToNamespace: "shop"},
			wantErr: "--password-secret",
		},
		"NotSucceeded": {
			reason:  "A Snapshot that did not succeed is refused.",
			snap:    snap("Deployment", storagev1alpha1.SnapshotFailed, "dump"),
			wantErr: "it is Failed, not Succeeded",
		},
		"NoApp": {
			reason:  "A Snapshot that names no workload is refused.",
			snap:    snap("", storagev1alpha1.SnapshotSucceeded, "dump"),
			wantErr: "names no workload",
		},
		"UnknownKind": {
			reason:  "A kind no built-in addon restores needs --addon.",
			snap:    snap("Cluster", storagev1alpha1.SnapshotSucceeded, "dump"),
			wantErr: "--addon",
		},
		"DryRunWithoutManifests": {
			reason:  "A dry run needs resource manifests to check.",
			snap:    snap("Deployment", storagev1alpha1.SnapshotSucceeded, "dump"),
			req:     restoreRequest{DryRun: true},
			wantErr: "holds no resource manifests",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tc.req.Now = now
			got, err := plannedRestore(tc.snap, tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\nplannedRestore(...): error %v, want one saying %q", tc.reason, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\nplannedRestore(...): %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nplannedRestore(...): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestEnsurePassword(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		reason   string
		existing []client.Object
		wantErr  string
	}{
		"Made":     {reason: "The namespace and the Secret are made."},
		"Same":     {reason: "A Secret with the same password is used.", existing: []client.Object{secretWith("s3cret")}},
		"Conflict": {reason: "A Secret with another password is refused, not changed.", existing: []client.Object{secretWith("other")}, wantErr: "holds another RESTIC_PASSWORD"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(tc.existing...).Build()
			var out bytes.Buffer
			err := ensurePassword(context.Background(), c, "shop", "pw", file, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s\nensurePassword: error %v, want one saying %q", tc.reason, err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("%s\nensurePassword: %v", tc.reason, err)
			}
			if strings.Contains(out.String()+errString(err), "s3cret") {
				t.Errorf("%s\nthe password was printed: %q %v", tc.reason, out.String(), err)
			}
			s := &corev1.Secret{}
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "pw"}, s); err != nil {
				t.Fatal(err)
			}
			want := "s3cret"
			if len(tc.existing) > 0 {
				want = string(tc.existing[0].(*corev1.Secret).Data["RESTIC_PASSWORD"])
			}
			if diff := cmp.Diff(want, string(s.Data["RESTIC_PASSWORD"])); diff != "" {
				t.Errorf("%s\nthe Secret's password: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func secretWith(password string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pw", Namespace: "shop"}, Data: map[string][]byte{"RESTIC_PASSWORD": []byte(password)}}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestRestoreProgress(t *testing.T) {
	rs := &corev1alpha1.RestoreSession{}
	rs.Status.Phase = corev1alpha1.RestoreRunning
	rs.Status.Components = map[string]corev1alpha1.ComponentRestoreStatus{
		"manifest": {Phase: corev1alpha1.RestoreFailed, Error: "ObjectsRefused", FilesRestored: 1, Resources: []corev1alpha1.ResourceOutcome{
			{Kind: "Role", Name: "r", Result: corev1alpha1.ResourceRefused, Message: "Forbidden: escalation"},
			{Kind: "ConfigMap", Name: "c", Result: corev1alpha1.ResourceCreated},
			{Kind: "Secret", Name: "s", Result: corev1alpha1.ResourceCreated},
		}},
		"dump": {Phase: corev1alpha1.RestoreRunning, FilesRestored: 3, BytesRestored: 2048},
	}
	want := []string{
		"component dump Running (3 files, 2 KiB restored)",
		`  refused Role "r": Forbidden: escalation`,
		"component manifest Failed: ObjectsRefused (objects: 2 Created, 1 Refused)",
		"phase Running",
	}
	if diff := cmp.Diff(want, restoreProgress(rs)); diff != "" {
		t.Errorf("restoreProgress: -want +got:\n%s", diff)
	}
}

func TestLatestSucceeded(t *testing.T) {
	at := func(h int) *metav1.Time { return &metav1.Time{Time: time.Date(2026, 12, 1, h, 0, 0, 0, time.UTC)} }
	snap := func(name string, phase storagev1alpha1.SnapshotPhase, taken *metav1.Time) storagev1alpha1.Snapshot {
		s := storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: *at(23)}}
		s.Spec.Repository, s.Status.Phase, s.Status.SnapshotTime = "app", phase, taken
		return s
	}
	cases := map[string]struct {
		reason string
		snaps  []storagev1alpha1.Snapshot
		want   string
	}{
		"None": {reason: "No Succeeded snapshot: none.", snaps: []storagev1alpha1.Snapshot{snap("a", storagev1alpha1.SnapshotFailed, at(5))}},
		"ByTimeTaken": {reason: "The one taken last, not the one made last (a rebuilt catalogue makes them all at once); a newer failed one is passed over.",
			snaps: []storagev1alpha1.Snapshot{snap("early", storagev1alpha1.SnapshotSucceeded, at(1)), snap("late", storagev1alpha1.SnapshotSucceeded, at(3)),
				snap("failed", storagev1alpha1.SnapshotFailed, at(4))},
			want: "late"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := ""
			if s := verify.Latest(tc.snaps, "app"); s != nil {
				got = s.Name
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nverify.Latest: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
