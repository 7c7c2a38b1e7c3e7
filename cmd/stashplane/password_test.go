package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stashplane/stashplane/apis"
	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	"github.com/stashplane/stashplane/apis/naming"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/functions/plan"
	"github.com/stashplane/stashplane/internal/agent"
)

func TestReadNewPassword(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    string
		wantErr string
	}{
		"LineEnd":     {in: "s3cret pass\n", want: "s3cret pass"},
		"CRLF":        {in: "s3cret\r\n", want: "s3cret"},
		"Empty":       {in: "\n", wantErr: "it is empty"},
		"Spaces":      {in: " s3cret\n", wantErr: "white space"},
		"TwoLines":    {in: "one\ntwo\n", wantErr: "more than one line"},
		"NoLineEnd":   {in: "s3cret", want: "s3cret"},
		"TabAtTheEnd": {in: "s3cret\t", wantErr: "white space"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := readNewPassword("-", strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readNewPassword(%q): %v, want an error saying %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("readNewPassword(%q): -want +got:\n%s", tc.in, diff)
			}
		})
	}
}

// TestPasswordRefused: what `stashplane password` refuses before any Job,
// leaving neither a hold nor a change Secret behind.
func TestPasswordRefused(t *testing.T) {
	repo := &storagev1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "demo", Labels: map[string]string{corev1alpha1.LabelInvokerName: "app-backup"}},
		Spec: storagev1alpha1.RepositorySpec{Path: "demo/app", EncryptionSecret: storagev1alpha1.ObjectReference{Name: "pw"},
			StorageRef: storagev1alpha1.ObjectReference{Namespace: "demo", Name: "local"}},
	}
	st := &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "local", Namespace: "demo"}}
	enc := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pw", Namespace: "demo"}, Data: map[string][]byte{storagev1alpha1.SecretKeyResticPassword: []byte("current")}}
	pending := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: naming.PasswordSecret("app"), Namespace: "demo"},
		Data: map[string][]byte{plan.PasswordSecretNew: []byte("pending"), plan.PasswordSecretPrevious: []byte("current")}}
	running := &storagev1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "demo", Labels: map[string]string{storagev1alpha1.LabelRepository: "app"}},
		Spec: storagev1alpha1.SnapshotSpec{Repository: "app"}, Status: storagev1alpha1.SnapshotStatus{Phase: storagev1alpha1.SnapshotRunning}}
	cases := map[string]struct {
		reason      string
		objs        []client.Object
		action      string
		newPassword string
		wantErr     string
		// wantChange says the pending change's Secret is still there.
		wantChange bool
	}{
		"SamePassword": {reason: "A new password the Secret already holds changes nothing.",
			action: agent.PasswordAdd, newPassword: "current", wantErr: "already holds this one"},
		"NoPassword": {reason: "An add with no change pending needs the new password.",
			action: agent.PasswordAdd, wantErr: "give the new one with --password-file"},
		"OtherPending": {reason: "A change to another password must be finished first.",
			objs: []client.Object{pending}, action: agent.PasswordAdd, newPassword: "third", wantErr: "a change to another password is unfinished", wantChange: true},
		"RemoveWhilePending": {reason: "No key goes while a change is unfinished: the old password may still be the only one some data opens with.",
			objs: []client.Object{pending}, action: agent.PasswordRemove, wantErr: "finish it first", wantChange: true},
		"Busy": {reason: "Nothing starts while a backup writes to the repository.",
			objs: []client.Object{running}, action: agent.PasswordAdd, newPassword: "next", wantErr: "the backup of snapshot demo/app-1 is Running"},
		"BusyRemove": {reason: "Nor a remove.",
			objs: []client.Object{running}, action: agent.PasswordRemove, wantErr: "the backup of snapshot demo/app-1 is Running"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := apis.Scheme()
			if err != nil {
				t.Fatal(err)
			}
			c := fake.NewClientBuilder().WithScheme(s).WithObjects(append([]client.Object{repo, st, enc}, tc.objs...)...).Build()
			p := &passwordRun{c: c, namespace: "demo", name: "app", image: "stashplane", progress: io.Discard}
			_, err = p.run(context.Background(), tc.action, tc.newPassword)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("%s\nrun: %v, want an error saying %q", tc.reason, err, tc.wantErr)
			}
			jobs := &batchv1.JobList{}
			if err := c.List(context.Background(), jobs); err != nil || len(jobs.Items) != 0 {
				t.Errorf("%s\na refused command left %d jobs (%v)", tc.reason, len(jobs.Items), err)
			}
			err = c.Get(context.Background(), client.ObjectKeyFromObject(pending), &corev1.Secret{})
			if got := err == nil; got != tc.wantChange {
				t.Errorf("%s\nthe change's secret exists: %t, want %t", tc.reason, got, tc.wantChange)
			}
			got := &corev1.Secret{}
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(enc), got); err != nil || string(got.Data[storagev1alpha1.SecretKeyResticPassword]) != "current" {
				t.Errorf("%s\nthe encryption secret changed: %v", tc.reason, err)
			}
		})
	}
}
