package backupconfiguration

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

func config(mutate func(*corev1alpha1.BackupConfigurationSpec)) *corev1alpha1.BackupConfiguration {
	bc := &corev1alpha1.BackupConfiguration{Spec: corev1alpha1.BackupConfigurationSpec{
		Backends: []corev1alpha1.BackendReference{{Name: "local"}},
		Sessions: []corev1alpha1.Session{{
			Name:         "nightly",
			Scheduler:    &corev1alpha1.SchedulerSpec{Schedule: "0 2 * * *"},
			Repositories: []corev1alpha1.RepositoryInfo{{Name: "app", Backend: "local", Directory: "ns/app"}},
		}},
	}}
	if mutate != nil {
		mutate(&bc.Spec)
	}
	return bc
}

func configIn(ns string, bc *corev1alpha1.BackupConfiguration) *corev1alpha1.BackupConfiguration {
	bc.Namespace = ns
	return bc
}

func TestShapeAndSchedules(t *testing.T) {
	cases := map[string]struct {
		reason string
		bc     *corev1alpha1.BackupConfiguration
		want   string
	}{
		"Valid": {reason: "A well-formed configuration passes.", bc: config(nil), want: ""},
		"UnknownBackend": {
			reason: "A repository must name a listed backend.",
			bc:     config(func(s *corev1alpha1.BackupConfigurationSpec) { s.Sessions[0].Repositories[0].Backend = "s3" }),
			want:   `repository "app" of session "nightly" names backend "s3", which the configuration does not list`,
		},
		"SharedDirectory": {
			reason: "Two repositories may not share a directory of one backend, however it is spelled.",
			bc: config(func(s *corev1alpha1.BackupConfigurationSpec) {
				s.Sessions[0].Repositories = append(s.Sessions[0].Repositories, corev1alpha1.RepositoryInfo{Name: "app2", Backend: "local", Directory: "/ns/app/"})
			}),
			want: `repositories "app" and "app2" share directory "/ns/app/" of backend "local"`,
		},
		"LeadingSlash": {
			reason: "A directory written with a leading slash, as KubeStash's examples write it, is valid.",
			bc:     config(func(s *corev1alpha1.BackupConfigurationSpec) { s.Sessions[0].Repositories[0].Directory = "/ns/app" }),
			want:   "",
		},
		"PasswordOfAnotherNamespace": {
			reason: "The Jobs mount the password Secret from the configuration's namespace, so one of another namespace is refused, not ignored.",
			bc: configIn("team", config(func(s *corev1alpha1.BackupConfigurationSpec) {
				s.Sessions[0].Repositories[0].EncryptionSecret = storagev1alpha1.ObjectReference{Namespace: "vault", Name: "pw"}
			})),
			want: `repository "app": encryptionSecret.namespace "vault": the backup Jobs run in the configuration's namespace "team" and mount the password Secret from there; name a Secret of that namespace`,
		},
		"PasswordOfOwnNamespaceNamed": {
			reason: "Naming the configuration's own namespace, as KubeStash's guides do, is the same as leaving it out.",
			bc: configIn("team", config(func(s *corev1alpha1.BackupConfigurationSpec) {
				s.Sessions[0].Repositories[0].EncryptionSecret = storagev1alpha1.ObjectReference{Namespace: "team", Name: "pw"}
			})),
		},
		"RootDirectory": {
			reason: "A directory of slashes only names the storage's root, which holds the storage's own record.",
			bc:     config(func(s *corev1alpha1.BackupConfigurationSpec) { s.Sessions[0].Repositories[0].Directory = "/" }),
			want:   `repository "app": directory "/" names the storage's root; name a directory in it`,
		},
		"DuplicateSession": {
			reason: "Session names are unique.",
			bc: config(func(s *corev1alpha1.BackupConfigurationSpec) {
				s.Sessions = append(s.Sessions, s.Sessions[0])
				s.Sessions[1].Repositories = []corev1alpha1.RepositoryInfo{{Name: "other", Backend: "local", Directory: "x"}}
			}),
			want: `session name "nightly" is used twice`,
		},
		"BadCron": {
			reason: "A schedule that is not cron syntax is refused with the parser's words.",
			bc:     config(func(s *corev1alpha1.BackupConfigurationSpec) { s.Sessions[0].Scheduler.Schedule = "every night" }),
			want:   `session "nightly": schedule "every night": expected exactly 5 fields, found 2: [every night]`,
		},
		"Every": {
			reason: "@every is not a CronJob schedule.",
			bc:     config(func(s *corev1alpha1.BackupConfigurationSpec) { s.Sessions[0].Scheduler.Schedule = "@every 1h" }),
			want:   `session "nightly": schedule "@every 1h": @every is not a CronJob schedule: write five fields, such as "0 */2 * * *"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			in := &input{bc: tc.bc, status: &tc.bc.Status}
			msg, _, err := checkShape(context.Background(), in)
			if err == nil && msg == "" {
				msg, _, err = checkSchedules(context.Background(), in)
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, msg); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestTarget(t *testing.T) {
	type want struct {
		msg     string
		invalid bool
		found   bool
	}
	app := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "app"}}
	other := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "app"}}
	cases := map[string]struct {
		reason string
		target *storagev1alpha1.TypedObjectReference
		// addon of the session, and the namespaces that may dump the
		// cluster.
		addon, account string
		dumps          []string
		want           want
	}{
		"SameNamespace": {
			reason: "A target in the configuration's namespace is found.",
			target: &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "app"},
			want:   want{found: true},
		},
		"SameNamespaceNamed": {
			reason: "Naming the configuration's own namespace is the same as leaving it empty.",
			target: &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Namespace: "team", Name: "app"},
			want:   want{found: true},
		},
		"AnotherNamespace": {
			reason: "A target in another namespace is refused before anything runs, even when it exists, naming the field.",
			target: &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Namespace: "other", Name: "app"},
			want: want{invalid: true, msg: `spec.target.namespace: a target in another namespace ("other") is refused: ` +
				`the backup Jobs run in the configuration's namespace "team" and cannot mount its volumes; create the configuration in "other"`},
		},
		"KindNotShipped": {
			reason: "A target kind Stashplane has no addon for (a KubeDB database, say) is refused by name, not left pending.",
			target: &storagev1alpha1.TypedObjectReference{APIGroup: "kubedb.com", Kind: "MongoDB", Name: "app"},
			want: want{invalid: true, msg: `spec.target.kind: target kind "MongoDB" is not supported: ` +
				`use Deployment, StatefulSet, DaemonSet, PersistentVolumeClaim or Namespace`},
		},
		"AnotherNamespaceDumped": {
			reason: "A namespace dump of another namespace than the configuration's is refused, naming the field.",
			target: &storagev1alpha1.TypedObjectReference{Kind: "Namespace", Name: "other"},
			want: want{invalid: true, msg: `spec.target: namespace "other" is refused: a configuration dumps only its own namespace "team", ` +
				`whose objects its Jobs may read; create the configuration in "other"`},
		},
		"NoTargetWorkloadAddon": {
			reason: "Without a target, an addon other than the kubedump-addon would back up nothing.",
			addon:  "workload-addon", dumps: []string{"team"},
			want: want{invalid: true, msg: `the configuration has no target: session "nightly" would back up nothing; ` +
				`name a workload, a claim or this namespace (spec.target), or dump the whole cluster with the kubedump-addon`},
		},
		"NoTargetNotListed": {
			reason: "A dump of the whole cluster is refused in a namespace the provider does not list, naming its flag.",
			addon:  "kubedump-addon", dumps: []string{"dr"},
			want: want{invalid: true, msg: `the configuration has no target, so it dumps the whole cluster, every Secret included; namespace "team" may not: ` +
				`the provider lets only the namespaces its --cluster-dump-namespaces flag lists (dr) do so`},
		},
		"NoTargetNoneListed": {
			reason: "No namespace may dump the cluster unless the operator lists it.",
			addon:  "kubedump-addon",
			want: want{invalid: true, msg: `the configuration has no target, so it dumps the whole cluster, every Secret included; namespace "team" may not: ` +
				`the provider lets only the namespaces its --cluster-dump-namespaces flag lists (none) do so`},
		},
		"NoTargetListed": {
			reason: "A namespace the provider lists may dump the whole cluster, as the account its jobTemplate names.",
			addon:  "kubedump-addon", account: "cluster-reader", dumps: []string{"dr", "team"},
			want: want{found: true},
		},
		"NoTargetNoAccount": {
			reason: "A dump of the whole cluster without an account of the operator's would fail on its first read: refused, naming the field.",
			addon:  "kubedump-addon", dumps: []string{"team"},
			want: want{invalid: true, msg: `session "nightly" dumps the whole cluster, which its Jobs read as the account spec.sessions[].addon.jobTemplate.spec.serviceAccountName names; ` +
				`name one the operator lets get and list the cluster (Stashplane's own account may read this namespace only)`},
		},
		"Missing": {
			reason: "A target that does not exist yet is not ready, not invalid.",
			target: &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: "gone"},
			want:   want{msg: "target Deployment team/gone not found"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := runtime.NewScheme()
			if err := clientgoscheme.AddToScheme(s); err != nil {
				t.Fatal(err)
			}
			kube := fake.NewClientBuilder().WithScheme(s).WithObjects(app.DeepCopy(), other.DeepCopy()).Build()
			bc := config(nil)
			bc.Namespace = "team"
			bc.Spec.Target = tc.target
			if tc.addon != "" {
				bc.Spec.Sessions[0].Addon = &corev1alpha1.AddonInfo{Name: tc.addon, JobTemplate: &corev1alpha1.AddonJobTemplate{}}
				bc.Spec.Sessions[0].Addon.JobTemplate.Spec.ServiceAccountName = tc.account
			}
			in := &input{kube: kube, bc: bc, status: &bc.Status, clusterDump: tc.dumps}
			msg, invalid, err := checkTarget(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			got := want{msg: msg, invalid: invalid, found: ptr.Deref(bc.Status.TargetFound, false)}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRepositoryPaths(t *testing.T) {
	cases := map[string]struct {
		reason    string
		directory string
		want      string
	}{
		"Relative":      {reason: "A relative directory is the Repository's path.", directory: "ns/app", want: "ns/app"},
		"LeadingSlash":  {reason: "KubeStash's \"/dep\" names the same place as \"dep\".", directory: "/dep", want: "dep"},
		"TrailingSlash": {reason: "A trailing slash changes nothing either.", directory: "/demo/sample-sts/", want: "demo/sample-sts"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bc := config(func(s *corev1alpha1.BackupConfigurationSpec) { s.Sessions[0].Repositories[0].Directory = tc.directory })
			repos := desiredRepositories(bc)
			if len(repos) != 1 {
				t.Fatalf("desiredRepositories(...): %d Repositories, want 1", len(repos))
			}
			if diff := cmp.Diff(tc.want, repos[0].Spec.Path); diff != "" {
				t.Errorf("%s\nRepository path: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
