package agent

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
)

func TestRestoreComponent(t *testing.T) {
	start := time.Unix(1000, 0)
	cases := map[string]struct {
		reason   string
		end      time.Time
		why, msg string
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
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, restoreComponent(start, tc.end, tc.why, tc.msg)); diff != "" {
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

func TestRestoreRules(t *testing.T) {
	got := RestoreRules()
	if len(got) != 1 || got[0].Resources[0] != "restoresessions/status" || len(got[0].Verbs) != 1 || got[0].Verbs[0] != "patch" {
		t.Errorf("RestoreRules() = %+v, want only patch of restoresessions/status", got)
	}
}
