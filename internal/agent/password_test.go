package agent

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob/memblob"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/layout"
)

func TestManifestSeals(t *testing.T) {
	const old, next = "the old password", "the new password"
	sealed := func(snapshot, password string) []byte {
		m := newManifest(snapshot, "dump", "abc", []string{"/data"}, time.Unix(0, 0), []ManifestFile{{Path: "/data/a", Size: 1}})
		b, err := m.Encode(password)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string]struct {
		reason string
		// manifests by snapshot name.
		manifests   map[string][]byte
		newPassword string
		want        ManifestSealsReport
		// wantOpen are the snapshots whose manifest opens afterwards with
		// the password the Secret will hold.
		wantOpen []string
	}{
		"List": {reason: "Without a new password, manifests are only counted.",
			manifests: map[string][]byte{"s1": sealed("s1", old), "s2": sealed("s2", next)},
			want:      ManifestSealsReport{Total: 2, Current: 1, Unreadable: []string{"s2/dump"}}, wantOpen: []string{"s1"}},
		"Add": {reason: "A manifest the Secret's password opens is sealed again with the new one.",
			manifests: map[string][]byte{"s1": sealed("s1", old), "s2": sealed("s2", old)}, newPassword: next,
			want: ManifestSealsReport{Total: 2, Current: 2, Resealed: 2}, wantOpen: []string{"s1", "s2"}},
		"AddAgain": {reason: "A manifest an earlier run sealed with the new password is kept.",
			manifests: map[string][]byte{"s1": sealed("s1", next), "s2": sealed("s2", old)}, newPassword: next,
			want: ManifestSealsReport{Total: 2, Current: 2, Resealed: 1}, wantOpen: []string{"s1", "s2"}},
		"Unreadable": {reason: "A manifest neither password opens is named and left as it is.",
			manifests: map[string][]byte{"s1": []byte("not sealed"), "s2": sealed("s2", old)}, newPassword: next,
			want: ManifestSealsReport{Total: 2, Current: 1, Resealed: 1, Unreadable: []string{"s1/dump"}}, wantOpen: []string{"s2"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := memblob.OpenBucket(nil)
			defer b.Close()
			repo := &storagev1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Spec: storagev1alpha1.RepositorySpec{Path: "default/app"}}
			for snap, m := range tc.manifests {
				if err := b.WriteAll(ctx, layout.ManifestKey(repo.Spec.Path, snap, "dump"), m, nil); err != nil {
					t.Fatal(err)
				}
			}
			// Not a manifest: skipped.
			if err := b.WriteAll(ctx, "default/app/manifests/s1/notes.txt", []byte("x"), nil); err != nil {
				t.Fatal(err)
			}
			r := &Runner{Log: logr.Discard()}
			got := ManifestSealsReport{}
			if err := r.manifestSeals(ctx, &target{repo: repo, bucket: b, password: old}, tc.newPassword, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nmanifestSeals: -want +got:\n%s", tc.reason, diff)
			}
			holds := old
			if tc.newPassword != "" {
				holds = tc.newPassword
			}
			for _, snap := range tc.wantOpen {
				raw, err := b.ReadAll(ctx, layout.ManifestKey(repo.Spec.Path, snap, "dump"))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := DecodeManifest(bytes.NewReader(raw), holds, snap, "dump"); err != nil {
					t.Errorf("%s\nthe manifest of %s does not open with the password the Secret will hold: %v", tc.reason, snap, err)
				}
			}
		})
	}
}
