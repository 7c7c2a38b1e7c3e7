package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func TestParseFlags(t *testing.T) {
	rendered := []string{
		"--namespace=demo", "--storage=demo/s3-storage", "--repository=app-s3",
		"--snapshot=app-s3-app-backup-hourly-1767225600", "--component=dump",
		"--paths=/var/lib/app,/etc/app", "--exclude=*.tmp", "--exclude=cache/*",
		"--storage-secret-dir=/etc/stashplane/storage",
		"--password-file=/etc/stashplane/encryption/RESTIC_PASSWORD", "--scratch-dir=/tmp/stashplane",
	}
	cases := map[string]struct {
		reason  string
		kind    string
		args    []string
		want    Options
		wantErr string
	}{
		"BackupAsRendered": {
			reason: "The arguments the workload-backup Function renders parse into the options.",
			kind:   KindBackup,
			args:   rendered,
			want: Options{
				Namespace: "demo", Storage: "demo/s3-storage", Repository: "app-s3",
				Snapshot: "app-s3-app-backup-hourly-1767225600", Component: "dump",
				Paths: []string{"/var/lib/app", "/etc/app"}, Exclude: []string{"*.tmp", "cache/*"},
				StorageSecretDir: "/etc/stashplane/storage",
				PasswordFile:     "/etc/stashplane/encryption/RESTIC_PASSWORD", ScratchDir: "/tmp/stashplane",
			},
		},
		"RestoreWithoutPaths": {
			reason: "A restore may leave out --paths (everything) and take --include and --target.",
			kind:   KindRestore,
			args: []string{"--namespace=demo", "--storage=demo/local", "--repository=r", "--snapshot=s", "--component=dump",
				"--include=*.db", "--target=/restore", "--password-file=/p", "--scratch-dir=/tmp/x"},
			want: Options{Namespace: "demo", Storage: "demo/local", Repository: "r", Snapshot: "s", Component: "dump",
				Include: []string{"*.db"}, Target: "/restore", PasswordFile: "/p", ScratchDir: "/tmp/x"},
		},
		"RestoreInto": {
			reason: "A restore may take --into, a directory that receives the backup wherever it was taken.",
			kind:   KindRestore,
			args: []string{"--namespace=demo", "--storage=demo/local", "--repository=r", "--snapshot=s", "--component=dump",
				"--into=/stashplane/data", "--password-file=/p", "--scratch-dir=/tmp/x"},
			want: Options{Namespace: "demo", Storage: "demo/local", Repository: "r", Snapshot: "s", Component: "dump",
				Into: "/stashplane/data", PasswordFile: "/p", ScratchDir: "/tmp/x"},
		},
		"IntoWithPathsOrTarget": {
			reason: "--into restores every path, so --paths or --target beside it is refused.",
			kind:   KindRestore,
			args: []string{"--namespace=demo", "--storage=demo/local", "--repository=r", "--snapshot=s", "--component=dump",
				"--into=data", "--paths=/a", "--password-file=/p", "--scratch-dir=/tmp/x"},
			wantErr: `cannot use the arguments: --into "data" is not absolute; --into restores every backed-up path, so it goes with neither --target nor --paths`,
		},
		"BackupNeedsPaths": {
			reason:  "A backup without --paths and with relative paths is refused, naming every problem.",
			kind:    KindBackup,
			args:    []string{"--namespace=demo", "--storage=demo", "--repository=r", "--snapshot=s", "--component=dump", "--password-file=/p"},
			wantErr: `cannot use the arguments: --scratch-dir is required; --storage "demo" is not namespace/name; --paths is required`,
		},
		"RelativePath": {
			reason:  "Paths are as the container sees them: absolute.",
			kind:    KindBackup,
			args:    append(append([]string{}, rendered...), "--paths=data"),
			wantErr: `cannot use the arguments: path "data" is not absolute`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var o Options
			fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
			o.AddFlags(fs, tc.kind)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate(tc.kind)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tc.wantErr, gotErr); diff != "" {
				t.Fatalf("%s\nValidate(): -want +got:\n%s", tc.reason, diff)
			}
			if tc.wantErr != "" {
				return
			}
			if diff := cmp.Diff(tc.want, o); diff != "" {
				t.Errorf("%s\noptions: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestExcludeFlagOnlyForBackup(t *testing.T) {
	var o Options
	fs := pflag.NewFlagSet("restore", pflag.ContinueOnError)
	o.AddFlags(fs, KindRestore)
	if err := fs.Parse([]string{"--exclude=*.tmp"}); err == nil {
		t.Errorf("restore accepted --exclude")
	}
}
