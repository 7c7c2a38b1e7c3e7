package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

func TestRestoreComponent(t *testing.T) {
	start := time.Unix(1000, 0)
	cases := map[string]struct {
		reason   string
		end      time.Time
		why, msg string
		res      *restoreResult
		want     corev1alpha1.ComponentRestoreStatus
	}{
		"Running": {reason: "Without an end the component is Running.",
			want: corev1alpha1.ComponentRestoreStatus{Phase: corev1alpha1.RestoreRunning}},
		"Succeeded": {reason: "An end without a reason is Succeeded, with the duration.",
			end:  start.Add(1500 * time.Millisecond),
			want: corev1alpha1.ComponentRestoreStatus{Phase: corev1alpha1.RestoreSucceeded, Duration: "1.5s"}},
		"Failed": {reason: "A reason makes it Failed, the error naming restic's reason.",
			end: start.Add(time.Second), why: "WrongPassword", msg: "Fatal: wrong password or no key found",
			want: corev1alpha1.ComponentRestoreStatus{Phase: corev1alpha1.RestoreFailed, Duration: "1s",
				Error: "WrongPassword: Fatal: wrong password or no key found"}},
		"Measured": {reason: "What the restore measured and found is reported with its end.",
			end: start.Add(time.Second), why: ReasonRestoreMismatch, msg: "1 of the 2 files ...",
			res: &restoreResult{filesRestored: 2, bytesRestored: 2048, filesChecked: 2, totalDiffs: 1, dataChecked: "10%",
				diffs: []corev1alpha1.RestoreDifference{{Path: "/a", Kind: corev1alpha1.DifferenceMissing, Want: "1 bytes, sha256 00000000", Got: "not restored"}}},
			want: corev1alpha1.ComponentRestoreStatus{Phase: corev1alpha1.RestoreFailed, Duration: "1s", Error: "RestoreMismatch: 1 of the 2 files ...",
				FilesRestored: 2, BytesRestored: 2048, FilesChecked: 2, TotalDifferences: 1, DataChecked: "10%",
				Differences: []corev1alpha1.RestoreDifference{{Path: "/a", Kind: corev1alpha1.DifferenceMissing, Want: "1 bytes, sha256 00000000", Got: "not restored"}}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, restoreComponent(start, tc.end, tc.why, tc.msg, tc.res)); diff != "" {
				t.Errorf("%s\nrestoreComponent(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRestoreComponentPatch(t *testing.T) {
	b, err := restoreComponentPatch("demo", "app-restore", "dump", corev1alpha1.ComponentRestoreStatus{Phase: corev1alpha1.RestoreRunning})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "core.stashplane.io/v1alpha1", "kind": "RestoreSession",
		"metadata": map[string]any{"name": "app-restore", "namespace": "demo"},
		"status":   map[string]any{"components": map[string]any{"dump": map[string]any{"phase": "Running"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the apply patch names only the component: -want +got:\n%s", diff)
	}
}

func TestRestoreSessionFlag(t *testing.T) {
	var o Options
	fs := pflag.NewFlagSet("restore", pflag.ContinueOnError)
	o.AddFlags(fs, KindRestore)
	if err := fs.Parse([]string{"--restore-session=app-restore"}); err != nil {
		t.Fatal(err)
	}
	if o.RestoreSession != "app-restore" {
		t.Errorf("--restore-session parsed into %q", o.RestoreSession)
	}
	fs = pflag.NewFlagSet("backup", pflag.ContinueOnError)
	o.AddFlags(fs, KindBackup)
	if err := fs.Parse([]string{"--restore-session=x"}); err == nil {
		t.Errorf("backup accepted --restore-session")
	}
}

func TestDamagedPack(t *testing.T) {
	cases := map[string]struct {
		reason string
		msg    string
		want   string
	}{
		"Decrypt": {reason: "restore names the pack a blob failed to decrypt from.",
			msg:  "Fatal: There were 2 errors: decrypting blob <data/0f80fcc7> from 88aca2c9 failed: ciphertext verification failed",
			want: "88aca2c9"},
		"Load": {reason: "a pack that cannot be loaded is named in its handle.",
			msg:  "Load(<data/e4a900c920>, 0, 0) returned error: file does not exist",
			want: "e4a900c9"},
		"Check": {reason: "check names packs in full; the short ID is kept.",
			msg:  "pack 88aca2c9e43fa0f8152373f2eb037e2265ca2634a828dc5717d3996a4582ace3 contains 3 errors",
			want: "88aca2c9"},
		"None": {reason: "a message without a pack names none.",
			msg: "Fatal: wrong password or no key found"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, damagedPack(tc.msg)); diff != "" {
				t.Errorf("%s\ndamagedPack(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRecordDifferences(t *testing.T) {
	res := &restoreResult{}
	for i := range corev1alpha1.MaxDifferences + 5 {
		res.record(corev1alpha1.RestoreDifference{Path: fmt.Sprintf("/f%d", i), Kind: corev1alpha1.DifferenceChanged,
			Want: describe(4, HashSHA256, "0123456789abcdef"), Got: describe(5, HashSHA256, "fedcba9876543210")})
	}
	if len(res.diffs) != corev1alpha1.MaxDifferences || res.totalDiffs != corev1alpha1.MaxDifferences+5 {
		t.Errorf("kept %d of %d differences, want %d of %d", len(res.diffs), res.totalDiffs, corev1alpha1.MaxDifferences, corev1alpha1.MaxDifferences+5)
	}
	want := "15 of the 20 files in the backup's content manifest did not restore as backed up: " +
		"Changed /f0 (want 4 bytes, sha256 01234567, got 5 bytes, sha256 fedcba98); " +
		"Changed /f1 (want 4 bytes, sha256 01234567, got 5 bytes, sha256 fedcba98); " +
		"Changed /f2 (want 4 bytes, sha256 01234567, got 5 bytes, sha256 fedcba98); and 12 more"
	if diff := cmp.Diff(want, res.mismatchMessage(20)); diff != "" {
		t.Errorf("mismatchMessage(): -want +got:\n%s", diff)
	}
}

func TestReportRunning(t *testing.T) {
	// A session deleted meanwhile: a refusal no further attempt mends.
	refused := apierrors.NewNotFound(corev1alpha1.GroupVersion.WithResource("restoresessions").GroupResource(), "rs")
	cases := map[string]struct {
		reason   string
		reporter bool
		patchErr error
		wantErr  bool
	}{
		"NoSession": {reason: "Without a RestoreSession nothing is written and there is nothing to wait for."},
		"Written":   {reason: "A Running write that lands lets the restore go on.", reporter: true},
		"Refused": {reason: "A Running write that fails stops the restore, as often as it is asked.",
			reporter: true, patchErr: refused, wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			patches := 0
			kube := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
				SubResourcePatch: func(context.Context, client.Client, string, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
					patches++
					return tc.patchErr
				},
			}).Build()
			var rep *restoreReporter
			if tc.reporter {
				rep = &restoreReporter{kube: kube, namespace: "default", session: "rs", component: "dump", start: time.Unix(0, 0)}
			}
			wait := rep.reportRunning(context.Background())
			first, second := wait(), wait()
			if diff := cmp.Diff(tc.wantErr, first != nil); diff != "" {
				t.Errorf("%s\nerror %v: -want +got:\n%s", tc.reason, first, diff)
			}
			if diff := cmp.Diff(errors.Is(first, refused), errors.Is(second, refused)); diff != "" {
				t.Errorf("%s\nsecond wait: -first +second:\n%s", tc.reason, diff)
			}
			wantPatches := 0
			if tc.reporter {
				wantPatches = 1
			}
			if diff := cmp.Diff(wantPatches, patches); diff != "" {
				t.Errorf("%s\nstatus writes: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
