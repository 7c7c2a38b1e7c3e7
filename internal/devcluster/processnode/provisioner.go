package processnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// The default StorageClass of the dev cluster: claims are provisioned as
// directories on the node.
const (
	StorageClassName = "stashplane-local"
	ProvisionerName  = "stashplane.io/process-node"

	annProvisioner    = "volume.kubernetes.io/storage-provisioner"
	annProvisionedBy  = "pv.kubernetes.io/provisioned-by"
	annDefaultStorage = "storageclass.kubernetes.io/is-default-class"
)

// Provisioner makes a hostPath PersistentVolume under Dir for each claim of
// its StorageClass, and removes the directory when a released volume's
// reclaim policy is Delete. The persistent-volume binder binds them.
type Provisioner struct {
	Client kubernetes.Interface
	Dir    string
	Log    logr.Logger
}

// StorageClass is the dev cluster's default StorageClass.
func StorageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: StorageClassName, Annotations: map[string]string{annDefaultStorage: "true"}},
		Provisioner:       ProvisionerName,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
	}
}

// Run installs the StorageClass and provisions until ctx ends.
func (p *Provisioner) Run(ctx context.Context) error {
	_, err := p.Client.StorageV1().StorageClasses().Create(ctx, StorageClass(), metav1.CreateOptions{})
	if err != nil && !kerrors.IsAlreadyExists(err) {
		return fmt.Errorf("cannot create storage class: %w", err)
	}
	f := informers.NewSharedInformerFactory(p.Client, time.Minute)
	claims, volumes := f.Core().V1().PersistentVolumeClaims(), f.Core().V1().PersistentVolumes()
	kick := make(chan struct{}, 1)
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { nudge(kick) },
		UpdateFunc: func(any, any) { nudge(kick) },
	}
	if _, err := claims.Informer().AddEventHandler(h); err != nil {
		return err
	}
	if _, err := volumes.Informer().AddEventHandler(h); err != nil {
		return err
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	go func() {
		defer f.Shutdown()
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			case <-time.After(10 * time.Second):
			}
			cs, _ := claims.Lister().List(labels.Everything())
			for _, c := range cs {
				if err := p.provision(ctx, c); err != nil {
					p.Log.Error(err, "cannot provision volume", "claim", c.Namespace+"/"+c.Name)
				}
			}
			vs, _ := volumes.Lister().List(labels.Everything())
			for _, v := range vs {
				if err := p.reclaim(ctx, v); err != nil {
					p.Log.Error(err, "cannot reclaim volume", "volume", v.Name)
				}
			}
		}
	}()
	return nil
}

func nudge(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (p *Provisioner) provision(ctx context.Context, c *corev1.PersistentVolumeClaim) error {
	if c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" || c.Annotations[annProvisioner] != ProvisionerName {
		return nil
	}
	name := "pvc-" + string(c.UID)
	path := filepath.Join(p.Dir, name)
	if err := os.MkdirAll(path, 0o777); err != nil {
		return err
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{annProvisionedBy: ProvisionerName}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: c.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   c.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              StorageClassName,
			VolumeMode:                    c.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: c.Namespace, Name: c.Name, UID: c.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: path, Type: ptr.To(corev1.HostPathDirectoryOrCreate)},
			},
		},
	}
	_, err := p.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if kerrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func (p *Provisioner) reclaim(ctx context.Context, v *corev1.PersistentVolume) error {
	if v.Annotations[annProvisionedBy] != ProvisionerName || v.Status.Phase != corev1.VolumeReleased ||
		v.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || v.Spec.HostPath == nil {
		return nil
	}
	if err := os.RemoveAll(v.Spec.HostPath.Path); err != nil {
		return err
	}
	err := p.Client.CoreV1().PersistentVolumes().Delete(ctx, v.Name, metav1.DeleteOptions{})
	if kerrors.IsNotFound(err) {
		return nil
	}
	return err
}
