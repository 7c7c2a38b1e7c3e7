package tenancy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/agentapi"
)

func TestSetFinalizer(t *testing.T) {
	const f = "example.io/f"
	cases := map[string]struct {
		reason  string
		stored  []string
		gone    bool
		present bool
		want    []string
		wantErr bool
	}{
		"Add":          {reason: "A missing finalizer is added, on the server and on the object.", present: true, want: []string{f}},
		"AddKept":      {reason: "A finalizer already there stays once.", stored: []string{"other", f}, present: true, want: []string{"other", f}},
		"Remove":       {reason: "Removing keeps the others.", stored: []string{"other", f}, want: []string{"other"}},
		"RemoveGone":   {reason: "Removing it from an object that is gone is no error.", stored: []string{f}, gone: true},
		"AddToGoneObj": {reason: "Adding it to an object that is gone is an error.", gone: true, present: true, wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", Finalizers: tc.stored}}
			b := fake.NewClientBuilder()
			if !tc.gone {
				b = b.WithObjects(o.DeepCopy())
			}
			kube := b.Build()
			if !tc.gone {
				if err := kube.Get(context.Background(), client.ObjectKeyFromObject(o), o); err != nil {
					t.Fatal(err)
				}
			}
			err := SetFinalizer(context.Background(), kube, o, f, tc.present)
			if (err != nil) != tc.wantErr {
				t.Fatalf("%s\nSetFinalizer(): %v, want error %t", tc.reason, err, tc.wantErr)
			}
			if tc.gone {
				return
			}
			got := &corev1.ConfigMap{}
			if err := kube.Get(context.Background(), client.ObjectKeyFromObject(o), got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Finalizers); diff != "" {
				t.Errorf("%s\nstored finalizers: -want +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(got.Finalizers, o.Finalizers); diff != "" {
				t.Errorf("%s\nthe object's finalizers differ from the stored ones: -stored +object:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestCheckStorageAmbient(t *testing.T) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	all := &storagev1alpha1.UsagePolicy{AllowedNamespaces: storagev1alpha1.AllowedNamespaces{From: ptr.To(storagev1alpha1.NamespacesFromAll)}}
	storage := func(secret string) *storagev1alpha1.BackupStorage {
		return &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "s3", Namespace: "platform"}, Spec: storagev1alpha1.BackupStorageSpec{
			UsagePolicy: all,
			Storage:     storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: secret}},
		}}
	}
	kube := fake.NewClientBuilder().WithScheme(s).WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}).Build()
	cases := map[string]struct {
		reason  string
		st      *storagev1alpha1.BackupStorage
		ns      string
		ambient []string
		want    Refusal
	}{
		"WithSecret":      {reason: "A storage with a credential Secret is used from an admitted namespace.", st: storage("creds"), ns: "team-a"},
		"AmbientOwn":      {reason: "A storage without a Secret is used from its own namespace.", st: storage(""), ns: "platform"},
		"AmbientRefused":  {reason: "A storage without a Secret is refused to a namespace the provider does not list, however its usagePolicy admits it.", st: storage(""), ns: "team-a", want: AmbientNotAllowed},
		"AmbientListed":   {reason: "A namespace the provider lists may use it.", st: storage(""), ns: "team-a", ambient: []string{"team-a"}},
		"AmbientOtherOne": {reason: "Listing another namespace admits only that one.", st: storage(""), ns: "team-a", ambient: []string{"team-b"}, want: AmbientNotAllowed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, msg, err := CheckStorage(context.Background(), kube, tc.st, tc.ns, "backup jobs", tc.ambient)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nCheckStorage(): -want +got:\n%s (%s)", tc.reason, diff, msg)
			}
		})
	}
}

// otherRepo is a Repository of namespace ns in platform/shared at path,
// made age before the test's owner's.
func otherRepo(ns, name, path string, age time.Duration) *storagev1alpha1.Repository {
	made := time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC).Add(-age)
	return &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: metav1.NewTime(made)},
		Spec: storagev1alpha1.RepositorySpec{Path: path, StorageRef: storagev1alpha1.ObjectReference{Name: "shared", Namespace: "platform"}}}
}

func TestCopyStorageSecretBrokered(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team-a", UID: "u1"}}
	certPEM, keyPEM, err := accessor.NewCertificate(now)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	key := accessor.TokenSecret(&storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "platform"}}, "accessor-key", certPEM, keyPEM)
	creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "platform"}, Data: map[string][]byte{"AWS_SECRET_ACCESS_KEY": []byte("s3cr3t")}}
	st := func(access storagev1alpha1.StorageAccess, secret string) *storagev1alpha1.BackupStorage {
		return &storagev1alpha1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "platform"},
			Spec: storagev1alpha1.BackupStorageSpec{Access: access, Storage: storagev1alpha1.Backend{Provider: storagev1alpha1.ProviderS3, S3: &storagev1alpha1.S3Spec{Bucket: "b", SecretName: secret}}}}
	}
	brokered := []string{agentapi.SecretKeyStorageBrokerCertificate, agentapi.SecretKeyStorageGrant}
	cases := map[string]struct {
		reason  string
		storage *storagev1alpha1.BackupStorage
		objects []client.Object
		paths   []string
		// initialized is each path's RepositoryInitialized reason, by
		// index: "" for RepositoryInitializationSucceeded, "-" for none.
		initialized map[int]string
		readOnly    bool
		// wants is what writes and reads under each key give with the
		// grant; nil is team-a/app and team-a/db written, team-a/other
		// refused.
		wants    map[string]gcerrors.ErrorCode
		others   []client.Object
		wantName string
		wantKeys []string
		wantErr  bool
	}{
		"Direct": {
			reason:  "A storage reached directly gets a copy of its credentials.",
			storage: st(storagev1alpha1.AccessDirect, "creds"), objects: []client.Object{creds},
			paths: []string{"team-a/app"}, wantName: "copy", wantKeys: []string{"AWS_SECRET_ACCESS_KEY"},
		},
		"DirectAmbient": {
			reason:  "A storage reached directly without a Secret copies nothing.",
			storage: st(storagev1alpha1.AccessDirect, ""), paths: []string{"team-a/app"},
		},
		"Brokered": {
			reason:  "A brokered storage gets a grant in place of its credentials.",
			storage: st(storagev1alpha1.AccessBroker, "creds"), objects: []client.Object{creds, key},
			paths: []string{"team-a/app", "./team-a//app/", "team-a/db"}, wantName: "copy", wantKeys: brokered,
		},
		"BrokeredAmbient": {
			reason:  "A brokered storage without a Secret still gets a grant: the broker holds the identity.",
			storage: st(storagev1alpha1.AccessBroker, ""), objects: []client.Object{key},
			paths: []string{"team-a/db", "team-a/app"}, wantName: "copy", wantKeys: brokered,
		},
		"BrokerNotReady": {
			reason:  "A brokered storage whose accessor has no token yet is an error, retried, and copies nothing.",
			storage: st(storagev1alpha1.AccessBroker, "creds"), objects: []client.Object{creds},
			paths: []string{"team-a/app"}, wantErr: true,
		},
		"BrokeredNoRepository": {
			reason:  "A grant over no repository, or over the whole storage, is refused.",
			storage: st(storagev1alpha1.AccessBroker, "creds"), objects: []client.Object{creds, key},
			paths: []string{"."}, wantErr: true,
		},
		"BrokeredOverlapOlder": {
			reason:  "A path that overlaps an older Repository of another namespace is left out of the grant: naming another team's directory reaches nothing.",
			storage: st(storagev1alpha1.AccessBroker, "creds"), objects: []client.Object{creds, key},
			others: []client.Object{otherRepo("team-b", "db", "team-a/app", time.Hour)},
			paths:  []string{"team-a/app", "team-a/db"}, wantName: "copy", wantKeys: brokered,
		},
		"BrokeredOverlapNewer": {
			reason:  "A newer Repository of another namespace overlapping the path takes nothing from its holder.",
			storage: st(storagev1alpha1.AccessBroker, "creds"), objects: []client.Object{creds, key},
			others: []client.Object{otherRepo("team-b", "db", "team-a/db", -time.Hour)},
			paths:  []string{"team-a/app", "team-a/db"}, wantName: "copy", wantKeys: brokered,
		},
		"BrokeredNotInitialized": {
			reason:  "A Repository whose record the Repository controller has not vouched for yet is left out: its path may hold another's data.",
			storage: st(storagev1alpha1.AccessBroker, "creds"), objects: []client.Object{creds, key},
			paths: []string{"team-a/app", "team-a/db"}, initialized: map[int]string{0: "-"}, wantName: "copy", wantKeys: brokered,
			wants: map[string]gcerrors.ErrorCode{"team-a/app/x": gcerrors.PermissionDenied, "team-a/db/x": gcerrors.OK},
		},
		"BrokeredNoneInitialized": {
			reason:  "A grant whose every Repository is not initialized yet is refused until one is.",
			storage: st(storagev1alpha1.AccessBroker, "creds"), objects: []client.Object{creds, key},
			paths: []string{"team-a/app"}, initialized: map[int]string{0: "-"}, wantErr: true,
		},
		"BrokeredAdoptedNoWrites": {
			reason:  "A Repository reading another's record (AdoptedReadOnly) is granted no writes.",
			storage: st(storagev1alpha1.AccessBroker, "creds"), objects: []client.Object{creds, key},
			paths: []string{"team-a/app"}, initialized: map[int]string{0: "AdoptedReadOnly"}, wantErr: true,
		},
		"BrokeredAdoptedReadOnly": {
			reason:  "A restore of a Repository reading another's record is granted reading it.",
			storage: st(storagev1alpha1.AccessBroker, "creds"), objects: []client.Object{creds, key},
			paths: []string{"team-a/app"}, initialized: map[int]string{0: "AdoptedReadOnly"}, readOnly: true, wantName: "copy", wantKeys: brokered,
			wants: map[string]gcerrors.ErrorCode{"read team-a/app/x": gcerrors.OK, "team-a/app/x": gcerrors.PermissionDenied},
		},
		"BrokeredReadOnly": {
			reason:  "A restore's grant reads its Repository and writes none of it.",
			storage: st(storagev1alpha1.AccessBroker, "creds"), objects: []client.Object{creds, key},
			paths: []string{"team-a/app"}, readOnly: true, wantName: "copy", wantKeys: brokered,
			wants: map[string]gcerrors.ErrorCode{"read team-a/app/x": gcerrors.OK, "team-a/app/x": gcerrors.PermissionDenied, "read team-a/db/x": gcerrors.PermissionDenied},
		},
		"BrokeredAllOverlap": {
			reason:  "A grant whose every path belongs to another namespace is refused.",
			storage: st(storagev1alpha1.AccessBroker, "creds"), objects: []client.Object{creds, key},
			others: []client.Object{otherRepo("team-b", "db", "team-a", time.Hour)},
			paths:  []string{"team-a/app"}, wantErr: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := runtime.NewScheme()
			if err := clientgoscheme.AddToScheme(s); err != nil {
				t.Fatal(err)
			}
			if err := storagev1alpha1.AddToScheme(s); err != nil {
				t.Fatal(err)
			}
			objs := append(append(tc.objects, tc.others...), owner.DeepCopy())
			var repos []*storagev1alpha1.Repository
			for i, p := range tc.paths {
				r := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("r%d", i), Namespace: "team-a", CreationTimestamp: metav1.NewTime(now.Add(-30 * time.Minute))},
					Spec: storagev1alpha1.RepositorySpec{Path: p, StorageRef: storagev1alpha1.ObjectReference{Name: "shared", Namespace: "platform"}}}
				switch reason := tc.initialized[i]; reason {
				case "-":
				case "":
					r.SetConditions(xpv2.Condition{Type: storagev1alpha1.TypeRepositoryInitialized, Status: corev1.ConditionTrue, Reason: storagev1alpha1.ReasonRepositoryInitializationSucceeded})
				default:
					r.SetConditions(xpv2.Condition{Type: storagev1alpha1.TypeRepositoryInitialized, Status: corev1.ConditionTrue, Reason: xpv2.ConditionReason(reason)})
				}
				repos = append(repos, r)
				objs = append(objs, r.DeepCopy())
			}
			kube := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
			got, err := CopyStorageSecret(context.Background(), kube, owner, tc.storage, "copy", nil, "test", repos, tc.readOnly, now)
			if (err != nil) != tc.wantErr {
				t.Fatalf("%s\nCopyStorageSecret(): %v, want error %t", tc.reason, err, tc.wantErr)
			}
			if got != tc.wantName {
				t.Errorf("%s\nCopyStorageSecret(): name %q, want %q", tc.reason, got, tc.wantName)
			}
			cp := &corev1.Secret{}
			err = kube.Get(context.Background(), client.ObjectKey{Namespace: "team-a", Name: "copy"}, cp)
			if tc.wantName == "" {
				if err == nil {
					t.Errorf("%s\na secret was written: %v", tc.reason, cp.Data)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range cp.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if diff := cmp.Diff(tc.wantKeys, keys); diff != "" {
				t.Errorf("%s\nkeys: -want +got:\n%s", tc.reason, diff)
			}
			if tok, ok := cp.Data[agentapi.SecretKeyStorageGrant]; ok {
				files := memblob.OpenBucket(nil)
				srv := httptest.NewUnstartedServer(&accessor.Server{Bucket: files, Token: "accessor-key", Now: func() time.Time { return now }})
				srv.TLS = &tls.Config{Certificates: []tls.Certificate{serving}}
				srv.StartTLS()
				defer srv.Close()
				// The Secret's certificate is the broker's: a client
				// pinning it reaches the broker.
				hc, err := accessor.HTTPClient(cp.Data[agentapi.SecretKeyStorageBrokerCertificate])
				if err != nil {
					t.Fatal(err)
				}
				b, err := accessor.OpenBucket(srv.URL, string(tok), hc)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				wants := tc.wants
				if wants == nil {
					wants = map[string]gcerrors.ErrorCode{"team-a/app/x": gcerrors.OK, "team-a/db/x": gcerrors.OK, "team-a/other/x": gcerrors.PermissionDenied}
				}
				if name == "BrokeredOverlapOlder" {
					// team-b's older repository holds team-a/app.
					wants = map[string]gcerrors.ErrorCode{"team-a/app/x": gcerrors.PermissionDenied, "team-a/db/x": gcerrors.OK}
				}
				for key, want := range wants {
					if k, ok := strings.CutPrefix(key, "read "); ok {
						if err := files.WriteAll(context.Background(), k, []byte("x"), nil); err != nil {
							t.Fatal(err)
						}
						if _, err := b.ReadAll(context.Background(), k); gcerrors.Code(err) != want {
							t.Errorf("%s\nreading %s with the grant: %v, want %v", tc.reason, k, err, want)
						}
						continue
					}
					if got := gcerrors.Code(b.WriteAll(context.Background(), key, []byte("x"), nil)); got != want {
						t.Errorf("%s\nwriting %s with the grant: %v, want %v", tc.reason, key, got, want)
					}
				}
			}
		})
	}
}
