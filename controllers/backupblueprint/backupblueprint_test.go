package backupblueprint

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	corev1alpha1 "github.com/stashplane/stashplane/apis/core/v1alpha1"
	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// kube reads and writes the test API server directly, without a cache.
var (
	kube     client.Client
	startErr error
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithCancel(context.Background())
	env, err := startControlPlane(ctx)
	startErr = err
	code := m.Run()
	cancel()
	if env != nil {
		_ = env.Stop()
	}
	os.Exit(code)
}

// startControlPlane runs kube-apiserver and etcd from KUBEBUILDER_ASSETS
// (or bin/) with the CRDs, and the BackupBlueprint controller against
// them. Missing binaries fail every test rather than skipping it.
func startControlPlane(ctx context.Context) (*envtest.Environment, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets, _ = filepath.Abs(filepath.Join("..", "..", "bin"))
	}
	if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
		return nil, fmt.Errorf("cannot find kube-apiserver in %q: run `make tools`: %w", assets, err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, corev1alpha1.AddToScheme, storagev1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "package", "crds")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("cannot start test control plane: %w", err)
	}
	if kube, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return env, fmt.Errorf("cannot create client: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		return env, fmt.Errorf("cannot create manager: %w", err)
	}
	if err := Setup(mgr, Options{Log: logr.Discard()}); err != nil {
		return env, err
	}
	go func() { _ = mgr.Start(ctx) }()
	return env, nil
}

func blueprint(ns string, policy *storagev1alpha1.UsagePolicy, subjects *corev1alpha1.BlueprintSubjects) *corev1alpha1.BackupBlueprint {
	return &corev1alpha1.BackupBlueprint{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bp"},
		Spec: corev1alpha1.BackupBlueprintSpec{
			UsagePolicy: policy,
			Subjects:    subjects,
			BackupConfigurationTemplate: corev1alpha1.BackupConfigurationTemplate{
				Backends: []corev1alpha1.BackendReference{{Name: "b", StorageRef: &storagev1alpha1.ObjectReference{Name: "s", Namespace: ns}}},
				Sessions: []corev1alpha1.Session{{
					Name:      "nightly",
					Scheduler: &corev1alpha1.SchedulerSpec{Schedule: "0 2 * * *"},
					Addon:     &corev1alpha1.AddonInfo{Name: "workload-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup"}}},
					Repositories: []corev1alpha1.RepositoryInfo{{Name: "${targetName}", Backend: "b", Directory: "${namespace}/${targetKind}/${targetName}",
						EncryptionSecret: storagev1alpha1.ObjectReference{Name: "pw"}}},
				}},
			},
		},
	}
}

var all = &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromAll)}}

func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
}

// workloads are one of each kind, named after their kind, in ns, with the
// given annotations.
func workloads(ns string, annotations map[string]string) []client.Object {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations}
	}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	return []client.Object{
		&appsv1.Deployment{ObjectMeta: meta("web"), Spec: appsv1.DeploymentSpec{Selector: sel, Template: podTemplate()}},
		&appsv1.StatefulSet{ObjectMeta: meta("db"), Spec: appsv1.StatefulSetSpec{Selector: sel, Template: podTemplate()}},
		&appsv1.DaemonSet{ObjectMeta: meta("agent"), Spec: appsv1.DaemonSetSpec{Selector: sel, Template: podTemplate()}},
		&corev1.PersistentVolumeClaim{ObjectMeta: meta("data"), Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
		}},
	}
}

// made lists the configurations in ns as "name target-group/kind/name directory".
func made(ctx context.Context, ns string) ([]string, error) {
	list := &corev1alpha1.BackupConfigurationList{}
	if err := kube.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var out []string
	for _, bc := range list.Items {
		if bc.DeletionTimestamp != nil {
			continue
		}
		t := bc.Spec.Target
		out = append(out, fmt.Sprintf("%s %s/%s/%s %s", bc.Name, t.APIGroup, t.Kind, t.Name, bc.Spec.Sessions[0].Repositories[0].Directory))
	}
	sort.Strings(out)
	return out, nil
}

func eventually(t *testing.T, what string, f func() (string, bool)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, ok := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s; last seen:\n%s", what, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestBlueprintController(t *testing.T) {
	if startErr != nil {
		t.Fatal(startErr)
	}
	asks := func(bpNS string) map[string]string {
		return map[string]string{corev1alpha1.AnnotationBlueprintName: "bp", corev1alpha1.AnnotationBlueprintNamespace: bpNS}
	}
	every := func(ns string) []string {
		return []string{
			"daemonset-agent apps/DaemonSet/agent " + ns + "/DaemonSet/agent",
			"deployment-web apps/Deployment/web " + ns + "/Deployment/web",
			"persistentvolumeclaim-data /PersistentVolumeClaim/data " + ns + "/PersistentVolumeClaim/data",
			"statefulset-db apps/StatefulSet/db " + ns + "/StatefulSet/db",
		}
	}
	cases := map[string]struct {
		reason string
		// objects are created in order; "bp-<case>" and "w-<case>" are the
		// namespaces of the blueprint and the workloads.
		objects func(bpNS, wNS string) []client.Object
		// then changes the cluster after the first state is seen.
		then          func(ctx context.Context, bpNS, wNS string) error
		want          []string
		wantProtected int32
		wantFailures  []string
		// wantThen is the workloads' configurations after then.
		wantThen []string
		// wantVerifiers and wantVerifiersThen are the verifiers in the
		// workloads' namespace, before and after then (verifiersIn).
		wantVerifiers, wantVerifiersThen []string
		// wantFailuresThen are the blueprint's failures after then.
		wantFailuresThen []string
	}{
		"VerifierTemplate": {
			reason: "A verifier template makes a BackupVerifier beside each configuration, named like it, filled with the workload's variables, which the repositories that name none use; a repository naming its own keeps it; both go when the workload stops asking.",
			objects: func(bpNS, wNS string) []client.Object {
				bp := withVerifier(blueprint(bpNS, all, nil))
				s := &bp.Spec.BackupConfigurationTemplate.Sessions[0]
				s.Repositories = append(s.Repositories, corev1alpha1.RepositoryInfo{Name: "${targetName}-own", Backend: "b", Directory: "own/${targetName}",
					EncryptionSecret: storagev1alpha1.ObjectReference{Name: "pw"}, BackupVerifier: &storagev1alpha1.ObjectReference{Name: "hand-made"}})
				return append([]client.Object{bp}, workloads(wNS, asks(bpNS))...)
			},
			want: every("w-verifiertemplate"), wantProtected: 4,
			wantVerifiers: []string{
				"daemonset-agent PersistentVolumeClaim/agent-scratch verifies agent:daemonset-agent agent-own:hand-made",
				"deployment-web PersistentVolumeClaim/web-scratch verifies web:deployment-web web-own:hand-made",
				"persistentvolumeclaim-data PersistentVolumeClaim/data-scratch verifies data:persistentvolumeclaim-data data-own:hand-made",
				"statefulset-db PersistentVolumeClaim/db-scratch verifies db:statefulset-db db-own:hand-made",
			},
			then: func(ctx context.Context, _, wNS string) error {
				d := &appsv1.Deployment{}
				if err := kube.Get(ctx, client.ObjectKey{Namespace: wNS, Name: "web"}, d); err != nil {
					return err
				}
				d.Annotations = nil
				return kube.Update(ctx, d)
			},
			wantThen: append(every("w-verifiertemplate")[0:1], every("w-verifiertemplate")[2:]...),
			wantVerifiersThen: []string{
				"daemonset-agent PersistentVolumeClaim/agent-scratch verifies agent:daemonset-agent agent-own:hand-made",
				"persistentvolumeclaim-data PersistentVolumeClaim/data-scratch verifies data:persistentvolumeclaim-data data-own:hand-made",
				"statefulset-db PersistentVolumeClaim/db-scratch verifies db:statefulset-db db-own:hand-made",
			},
		},
		"VerifierNotOurs": {
			reason: "A verifier of the made one's name that the blueprint did not make is left as it is, the workload named, and no configuration made for it.",
			objects: func(bpNS, wNS string) []client.Object {
				own := &corev1alpha1.BackupVerifier{ObjectMeta: metav1.ObjectMeta{Namespace: wNS, Name: "deployment-web"},
					Spec: *withVerifier(blueprint(bpNS, nil, nil)).Spec.VerifierTemplate.DeepCopy()}
				own.Spec.RestoreOption.Target.Name = "hand-written"
				return append([]client.Object{own, withVerifier(blueprint(bpNS, all, nil))}, workloads(wNS, asks(bpNS))[:1]...)
			},
			want: []string{}, wantProtected: 0,
			wantFailures:  []string{`Deployment w-verifiernotours/web: backupverifier "deployment-web" exists and was not made by this blueprint: it is left as it is`},
			wantVerifiers: []string{"deployment-web PersistentVolumeClaim/hand-written verifies"},
		},
		"VerifierUnfilled": {
			reason: "A verifier template whose variable the workload does not give makes neither verifier nor configuration, and names the variable.",
			objects: func(bpNS, wNS string) []client.Object {
				bp := withVerifier(blueprint(bpNS, all, nil))
				bp.Spec.VerifierTemplate.RestoreOption.Target.Name = "${scratch}"
				return append([]client.Object{bp}, workloads(wNS, asks(bpNS))[:1]...)
			},
			want: []string{}, wantProtected: 0,
			wantFailures: []string{`Deployment w-verifierunfilled/web: backupblueprint bp-verifierunfilled/bp uses variables scratch that Deployment w-verifierunfilled/web does not give: annotate it with variables.stashplane.io/<name>`},
		},
		"BadEditKeeps": {
			reason: "A template edited into one that cannot be filled names the workloads and keeps the configurations and verifiers the good one made, as they were.",
			objects: func(bpNS, wNS string) []client.Object {
				return append([]client.Object{withVerifier(blueprint(bpNS, all, nil))}, workloads(wNS, asks(bpNS))[:1]...)
			},
			want: []string{"deployment-web apps/Deployment/web w-badeditkeeps/Deployment/web"}, wantProtected: 1,
			wantVerifiers: []string{"deployment-web PersistentVolumeClaim/web-scratch verifies web:deployment-web"},
			then: func(ctx context.Context, bpNS, _ string) error {
				bp := &corev1alpha1.BackupBlueprint{}
				if err := kube.Get(ctx, client.ObjectKey{Namespace: bpNS, Name: "bp"}, bp); err != nil {
					return err
				}
				bp.Spec.BackupConfigurationTemplate.Sessions[0].Repositories[0].Directory = "${cluster}/${targetName}"
				bp.Spec.VerifierTemplate.RestoreOption.Target.Name = "${cluster}-scratch"
				return kube.Update(ctx, bp)
			},
			wantThen:          []string{"deployment-web apps/Deployment/web w-badeditkeeps/Deployment/web"},
			wantVerifiersThen: []string{"deployment-web PersistentVolumeClaim/web-scratch verifies web:deployment-web"},
			wantFailuresThen:  []string{"Deployment w-badeditkeeps/web: backupblueprint bp-badeditkeeps/bp uses variables cluster that Deployment w-badeditkeeps/web does not give: annotate it with variables.stashplane.io/<name>"},
		},
		"VariableChanged": {
			reason: "A changed variable annotation updates the workload's configuration.",
			objects: func(bpNS, wNS string) []client.Object {
				bp := blueprint(bpNS, all, nil)
				bp.Spec.BackupConfigurationTemplate.Sessions[0].Repositories[0].Directory = "${tier}/${targetName}"
				a := asks(bpNS)
				a[corev1alpha1.AnnotationVariablePrefix+"tier"] = "gold"
				return append([]client.Object{bp}, workloads(wNS, a)[:1]...)
			},
			want: []string{"deployment-web apps/Deployment/web gold/web"}, wantProtected: 1,
			then: func(ctx context.Context, _, wNS string) error {
				d := &appsv1.Deployment{}
				if err := kube.Get(ctx, client.ObjectKey{Namespace: wNS, Name: "web"}, d); err != nil {
					return err
				}
				d.Annotations[corev1alpha1.AnnotationVariablePrefix+"tier"] = "silver"
				return kube.Update(ctx, d)
			},
			wantThen: []string{"deployment-web apps/Deployment/web silver/web"},
		},
		"TemplateInvalid": {
			reason: "A template that the API server refuses once filled makes nothing and names the workload with the server's message.",
			objects: func(bpNS, wNS string) []client.Object {
				bp := blueprint(bpNS, all, nil)
				bp.Spec.BackupConfigurationTemplate.Sessions[0].Repositories[0].Name = "${repo}"
				a := asks(bpNS)
				a[corev1alpha1.AnnotationVariablePrefix+"repo"] = ""
				return append([]client.Object{bp}, workloads(wNS, a)[:1]...)
			},
			want: []string{}, wantProtected: 0,
			wantFailures: []string{`Deployment w-templateinvalid/web: cannot create backupconfiguration "deployment-web": BackupConfiguration.core.stashplane.io "deployment-web" is invalid: ...`},
		},
		"ClaimsOfOthers": {
			reason: "A blueprint selecting a namespace's claims leaves those a StatefulSet's claim templates made, and the scratch claims of verifications, to what made them; a claim of its own is protected.",
			objects: func(bpNS, wNS string) []client.Object {
				claim := func(name string, labels map[string]string) *corev1.PersistentVolumeClaim {
					c := workloads(wNS, nil)[3].(*corev1.PersistentVolumeClaim)
					c.Name, c.Labels = name, labels
					return c
				}
				sts := workloads(wNS, nil)[1].(*appsv1.StatefulSet)
				sts.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: claim("x", nil).Spec}}
				return []client.Object{
					blueprint(bpNS, all, &corev1alpha1.BlueprintSubjects{
						NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"protect": "bp-claimsofothers"}},
					}),
					sts, claim("data-db-0", nil), claim("data-db-1", nil), claim("data-db-x", nil),
					claim("scratch-1", map[string]string{corev1alpha1.LabelBackupVerificationSession: "s-1"}),
				}
			},
			want: []string{
				"persistentvolumeclaim-data-db-x /PersistentVolumeClaim/data-db-x w-claimsofothers/PersistentVolumeClaim/data-db-x",
				"statefulset-db apps/StatefulSet/db w-claimsofothers/StatefulSet/db",
			},
			wantProtected: 2,
		},
		"EveryKindAnnotated": {
			reason: "A Deployment, StatefulSet, DaemonSet and claim annotated with a blueprint of another namespace that admits all each get a configuration targeting them; deleting the blueprint removes them.",
			objects: func(bpNS, wNS string) []client.Object {
				return append([]client.Object{blueprint(bpNS, all, nil)}, workloads(wNS, asks(bpNS))...)
			},
			want: every("w-everykindannotated"), wantProtected: 4,
			then: func(ctx context.Context, bpNS, _ string) error {
				return kube.Delete(ctx, &corev1alpha1.BackupBlueprint{ObjectMeta: metav1.ObjectMeta{Namespace: bpNS, Name: "bp"}})
			},
			wantThen: []string{},
		},
		"NotAdmitted": {
			reason: "A blueprint whose usagePolicy admits only its own namespace makes nothing for another's workloads and names each.",
			objects: func(bpNS, wNS string) []client.Object {
				return append([]client.Object{blueprint(bpNS, nil, nil)}, workloads(wNS, asks(bpNS))[:1]...)
			},
			want: []string{}, wantProtected: 0,
			wantFailures: []string{`Deployment w-notadmitted/web: backupblueprint bp-notadmitted/bp may not be used from namespace "w-notadmitted": its usagePolicy allows only namespace "bp-notadmitted"`},
		},
		"SelectedNamespace": {
			reason: "Subjects protect the listed kinds of a labelled namespace without annotations, skip an opted-out workload, and let go when the label goes.",
			objects: func(bpNS, wNS string) []client.Object {
				ws := workloads(wNS, nil)
				ws[0].SetAnnotations(map[string]string{corev1alpha1.AnnotationBlueprintSkip: "true"})
				return append([]client.Object{blueprint(bpNS, all, &corev1alpha1.BlueprintSubjects{
					NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"protect": "bp-selectednamespace"}},
					Kinds:             []corev1alpha1.BlueprintKind{"Deployment", "StatefulSet", "PersistentVolumeClaim"},
				})}, ws...)
			},
			want: []string{
				"persistentvolumeclaim-data /PersistentVolumeClaim/data w-selectednamespace/PersistentVolumeClaim/data",
				"statefulset-db apps/StatefulSet/db w-selectednamespace/StatefulSet/db",
			},
			wantProtected: 2,
			then: func(ctx context.Context, _, wNS string) error {
				ns := &corev1.Namespace{}
				if err := kube.Get(ctx, client.ObjectKey{Name: wNS}, ns); err != nil {
					return err
				}
				ns.Labels = nil
				return kube.Update(ctx, ns)
			},
			wantThen: []string{},
		},
		"NotOurs": {
			reason: "A configuration of the same name the blueprint did not make is left as it is and the workload named.",
			objects: func(bpNS, wNS string) []client.Object {
				own := &corev1alpha1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Namespace: wNS, Name: "deployment-web"},
					Spec: blueprintSpecFor(bpNS, "web")}
				return append([]client.Object{own, blueprint(bpNS, all, nil)}, workloads(wNS, asks(bpNS))[:1]...)
			},
			want: []string{"deployment-web apps/Deployment/web hand-written"}, wantProtected: 0,
			wantFailures: []string{`Deployment w-notours/web: backupconfiguration "deployment-web" exists and was not made by this blueprint: it is left as it is`},
		},
		"TemplateChanged": {
			reason: "A changed template updates the configurations made from it.",
			objects: func(bpNS, wNS string) []client.Object {
				return append([]client.Object{blueprint(bpNS, all, nil)}, workloads(wNS, asks(bpNS))[:1]...)
			},
			want: []string{"deployment-web apps/Deployment/web w-templatechanged/Deployment/web"}, wantProtected: 1,
			then: func(ctx context.Context, bpNS, _ string) error {
				bp := &corev1alpha1.BackupBlueprint{}
				if err := kube.Get(ctx, client.ObjectKey{Namespace: bpNS, Name: "bp"}, bp); err != nil {
					return err
				}
				bp.Spec.BackupConfigurationTemplate.Sessions[0].Repositories[0].Directory = "v2/${targetName}"
				return kube.Update(ctx, bp)
			},
			wantThen: []string{"deployment-web apps/Deployment/web v2/web"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			lower := strings.ToLower(name)
			bpNS, wNS := "bp-"+lower, "w-"+lower
			nsLabels := map[string]string{}
			if name == "SelectedNamespace" || name == "ClaimsOfOthers" {
				nsLabels["protect"] = bpNS
			}
			for _, o := range append([]client.Object{
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: bpNS}},
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: wNS, Labels: nsLabels}},
			}, tc.objects(bpNS, wNS)...) {
				if err := kube.Create(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, tc.reason, func() (string, bool) {
				got, err := made(ctx, wNS)
				if err != nil {
					return err.Error(), false
				}
				bp := &corev1alpha1.BackupBlueprint{}
				if err := kube.Get(ctx, client.ObjectKey{Namespace: bpNS, Name: "bp"}, bp); err != nil {
					return err.Error(), false
				}
				var failures []string
				for _, f := range bp.Status.Failures {
					failures = append(failures, fmt.Sprintf("%s %s/%s: %s", f.Kind, f.Namespace, f.Name, f.Reason))
				}
				vs, err := verifiersIn(ctx, wNS)
				if err != nil {
					return err.Error(), false
				}
				d := cmp.Diff(tc.want, append([]string{}, got...)) + cmp.Diff(tc.wantFailures, cutLike(tc.wantFailures, failures)) +
					cmp.Diff(tc.wantProtected, bp.Status.Protected) + cmp.Diff(tc.wantVerifiers, vs)
				return d, d == "" && bp.GetCondition(corev1alpha1.TypeWorkloadsProtected).Status != corev1.ConditionUnknown
			})
			if tc.then == nil {
				return
			}
			if err := tc.then(ctx, bpNS, wNS); err != nil {
				t.Fatal(err)
			}
			eventually(t, tc.reason, func() (string, bool) {
				got, err := made(ctx, wNS)
				if err != nil {
					return err.Error(), false
				}
				vs, err := verifiersIn(ctx, wNS)
				if err != nil {
					return err.Error(), false
				}
				bp := &corev1alpha1.BackupBlueprint{}
				var failures []string
				if err := kube.Get(ctx, client.ObjectKey{Namespace: bpNS, Name: "bp"}, bp); err == nil {
					for _, f := range bp.Status.Failures {
						failures = append(failures, fmt.Sprintf("%s %s/%s: %s", f.Kind, f.Namespace, f.Name, f.Reason))
					}
				}
				d := cmp.Diff(tc.wantThen, append([]string{}, got...)) + cmp.Diff(tc.wantVerifiersThen, vs) + cmp.Diff(tc.wantFailuresThen, failures)
				return d, d == ""
			})
		})
	}
}

// blueprintSpecFor is a hand-written configuration of the Deployment name,
// its repository directory "hand-written".
func blueprintSpecFor(storageNS, name string) corev1alpha1.BackupConfigurationSpec {
	bp := blueprint(storageNS, nil, nil)
	spec := corev1alpha1.BackupConfigurationSpec{
		Target:   &storagev1alpha1.TypedObjectReference{APIGroup: "apps", Kind: "Deployment", Name: name},
		Backends: bp.Spec.BackupConfigurationTemplate.Backends,
		Sessions: bp.Spec.BackupConfigurationTemplate.Sessions,
	}
	spec.Sessions[0].Repositories[0].Name = name
	spec.Sessions[0].Repositories[0].Directory = "hand-written"
	return spec
}

// withVerifier gives bp a verifier template restoring into a scratch claim
// named after the workload.
func withVerifier(bp *corev1alpha1.BackupBlueprint) *corev1alpha1.BackupBlueprint {
	bp.Spec.VerifierTemplate = &corev1alpha1.BackupVerifierSpec{
		Type: corev1alpha1.VerificationRestoreOnly,
		RestoreOption: corev1alpha1.RestoreOption{
			Target:    storagev1alpha1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "${targetName}-scratch"},
			AddonInfo: corev1alpha1.AddonInfo{Name: "pvc-addon", Tasks: []corev1alpha1.TaskReference{{Name: "logical-backup-restore"}}},
		},
	}
	return bp
}

// verifiersIn lists the verifiers in ns as "name target-kind/target-name
// verifies" and the made configuration's repositories with the verifier
// each names ("repository:verifier").
func verifiersIn(ctx context.Context, ns string) ([]string, error) {
	list := &corev1alpha1.BackupVerifierList{}
	if err := kube.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var out []string
	for _, v := range list.Items {
		if v.DeletionTimestamp != nil {
			continue
		}
		line := fmt.Sprintf("%s %s/%s verifies", v.Name, v.Spec.RestoreOption.Target.Kind, v.Spec.RestoreOption.Target.Name)
		bc := &corev1alpha1.BackupConfiguration{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: v.Name}, bc); err == nil && bc.DeletionTimestamp == nil {
			for _, r := range bc.Spec.Sessions[0].Repositories {
				name := ""
				if r.BackupVerifier != nil {
					name = r.BackupVerifier.Name
				}
				line += fmt.Sprintf(" %s:%s", r.Name, name)
			}
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out, nil
}

// cutLike cuts each of got to the length of the want of the same index
// that ends in "...", and gives it that ending: a message of the API
// server is compared by its start.
func cutLike(want, got []string) []string {
	out := append([]string(nil), got...)
	for i := range out {
		if i < len(want) && strings.HasSuffix(want[i], "...") {
			n := len(want[i]) - len("...")
			if len(out[i]) > n {
				out[i] = out[i][:n] + "..."
			}
		}
	}
	return out
}

// TestUnknownBlueprint: a workload that asks for a blueprint that does not
// exist gets no configuration, and a Warning event naming the blueprint.
func TestUnknownBlueprint(t *testing.T) {
	if startErr != nil {
		t.Fatal(startErr)
	}
	ctx := context.Background()
	ns := "w-unknownblueprint"
	objs := append([]client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}},
		workloads(ns, map[string]string{corev1alpha1.AnnotationBlueprintName: "missing"})[:1]...)
	for _, o := range objs {
		if err := kube.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"Warning BlueprintNotFound Deployment/web: backupblueprint w-unknownblueprint/missing, which annotation blueprint.stashplane.io/name names, does not exist: no BackupConfiguration is made for this Deployment"}
	eventually(t, "the workload asking for a missing blueprint got no event naming it", func() (string, bool) {
		events := &corev1.EventList{}
		if err := kube.List(ctx, events, client.InNamespace(ns)); err != nil {
			return err.Error(), false
		}
		var got []string
		for _, e := range events.Items {
			got = append(got, fmt.Sprintf("%s %s %s/%s: %s", e.Type, e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message))
		}
		d := cmp.Diff(want, got)
		return d, d == ""
	})
	if got, err := made(ctx, ns); err != nil || len(got) != 0 {
		t.Errorf("configurations made for a missing blueprint: %v (%v)", got, err)
	}
}
