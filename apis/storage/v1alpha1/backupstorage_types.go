/*
Copyright 2026 The Stashplane Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

import (
	"maps"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StorageProvider names the kind of backend a BackupStorage writes to.
// +kubebuilder:validation:Enum=local;s3;gcs;azure
type StorageProvider string

// Storage providers.
const (
	ProviderLocal StorageProvider = "local"
	ProviderS3    StorageProvider = "s3"
	ProviderGCS   StorageProvider = "gcs"
	ProviderAzure StorageProvider = "azure"
)

// Keys read from the credential Secret of a BackupStorage.
const (
	SecretKeyAWSAccessKeyID           = "AWS_ACCESS_KEY_ID"
	SecretKeyAWSSecretAccessKey       = "AWS_SECRET_ACCESS_KEY"
	SecretKeyCACertData               = "CA_CERT_DATA"
	SecretKeyAzureAccountKey          = "AZURE_ACCOUNT_KEY"
	SecretKeyGoogleServiceAccountJSON = "GOOGLE_SERVICE_ACCOUNT_JSON_KEY"
)

// Backend says which provider a BackupStorage uses and how to reach it.
// Exactly one provider block is set, the one named by Provider.
// +kubebuilder:validation:XValidation:rule="self.provider != 'local' || has(self.local)",message="local is required when provider is local"
// +kubebuilder:validation:XValidation:rule="self.provider != 's3' || has(self.s3)",message="s3 is required when provider is s3"
// +kubebuilder:validation:XValidation:rule="self.provider != 'gcs' || has(self.gcs)",message="gcs is required when provider is gcs"
// +kubebuilder:validation:XValidation:rule="self.provider != 'azure' || has(self.azure)",message="azure is required when provider is azure"
// +kubebuilder:validation:XValidation:rule="(!has(self.local) || self.provider == 'local') && (!has(self.s3) || self.provider == 's3') && (!has(self.gcs) || self.provider == 'gcs') && (!has(self.azure) || self.provider == 'azure')",message="only the block matching provider may be set"
type Backend struct {
	// Provider of the backend.
	// +kubebuilder:validation:Required
	Provider StorageProvider `json:"provider"`

	// Local keeps backups in a volume mounted into the backup pods.
	// +optional
	Local *LocalSpec `json:"local,omitempty"`

	// S3 keeps backups in an S3-compatible bucket.
	// +optional
	S3 *S3Spec `json:"s3,omitempty"`

	// GCS keeps backups in a Google Cloud Storage bucket.
	// +optional
	GCS *GCSSpec `json:"gcs,omitempty"`

	// Azure keeps backups in an Azure Blob Storage container.
	// +optional
	Azure *AzureSpec `json:"azure,omitempty"`
}

// SecretName is the name of the Secret holding a backend's credentials, or
// "" when it has none (local storage, ambient credentials).
func (b Backend) SecretName() string {
	switch b.Provider {
	case ProviderS3:
		if b.S3 != nil {
			return b.S3.SecretName
		}
	case ProviderGCS:
		if b.GCS != nil {
			return b.GCS.SecretName
		}
	case ProviderAzure:
		if b.Azure != nil {
			return b.Azure.SecretName
		}
	}
	return ""
}

// LocalSpec is a backend on a Kubernetes volume.
type LocalSpec struct {
	// VolumeSource is the volume holding the backups.
	corev1.VolumeSource `json:",inline"`

	// MountPath where the volume is mounted in backup pods.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:Pattern=`^/`
	MountPath string `json:"mountPath"`

	// SubPath inside the volume used as the root of the storage.
	// +optional
	SubPath string `json:"subPath,omitempty"`

	// MaxConnections bounds the parallel connections to the backend.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxConnections int64 `json:"maxConnections,omitempty"`
}

// S3Spec is a backend on an S3-compatible object store.
// +kubebuilder:validation:XValidation:rule="!has(self.endpoint) || size(self.endpoint) == 0 || (has(self.secretName) && size(self.secretName) > 0)",message="endpoint needs secretName: ambient cloud credentials (workload identity, an instance role) are never sent to an endpoint named here; name a Secret, or leave endpoint out to use S3's own"
type S3Spec struct {
	// Endpoint of the S3 service, for example s3.amazonaws.com.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// Bucket holding the backups.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Bucket string `json:"bucket"`

	// Prefix inside the bucket used as the root of the storage.
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// Region of the bucket.
	// +optional
	Region string `json:"region,omitempty"`

	// SecretName is the Secret in the BackupStorage's namespace holding
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally CA_CERT_DATA.
	// Empty means ambient credentials such as workload identity.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// InsecureTLS skips verification of the endpoint's TLS certificate.
	// +optional
	InsecureTLS bool `json:"insecureTLS,omitempty"`

	// MaxConnections bounds the parallel connections to the backend.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxConnections int64 `json:"maxConnections,omitempty"`
}

// GCSSpec is a backend on Google Cloud Storage.
// +kubebuilder:validation:XValidation:rule="!has(self.endpoint) || size(self.endpoint) == 0 || (has(self.secretName) && size(self.secretName) > 0)",message="endpoint needs secretName: ambient cloud credentials (workload identity, an instance role) are never sent to an endpoint named here; name a Secret, or leave endpoint out to use GCS's own"
type GCSSpec struct {
	// Endpoint overrides the Cloud Storage JSON API endpoint, for example
	// http://gcs.example:4443/storage/v1/ for a private gateway or an
	// emulator. Empty means Google's public endpoint.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// Bucket holding the backups.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Bucket string `json:"bucket"`

	// Prefix inside the bucket used as the root of the storage.
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// SecretName is the Secret in the BackupStorage's namespace holding
	// GOOGLE_SERVICE_ACCOUNT_JSON_KEY. Empty means ambient credentials.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// MaxConnections bounds the parallel connections to the backend.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxConnections int64 `json:"maxConnections,omitempty"`
}

// AzureSpec is a backend on Azure Blob Storage.
// +kubebuilder:validation:XValidation:rule="!has(self.endpoint) || size(self.endpoint) == 0 || (has(self.secretName) && size(self.secretName) > 0)",message="endpoint needs secretName: ambient cloud credentials (workload identity, an instance role) are never sent to an endpoint named here; name a Secret, or leave endpoint out to use Azure's own"
type AzureSpec struct {
	// Endpoint overrides the Blob service URL of the storage account, for
	// example http://azurite.example:10000/devstoreaccount1 for an emulator.
	// Empty means https://<storageAccount>.blob.core.windows.net/.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// StorageAccount holding the container.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	StorageAccount string `json:"storageAccount"`

	// Container holding the backups.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Container string `json:"container"`

	// Prefix inside the container used as the root of the storage.
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// SecretName is the Secret in the BackupStorage's namespace holding
	// AZURE_ACCOUNT_KEY. Empty means ambient credentials such as workload
	// identity.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// MaxConnections bounds the parallel connections to the backend.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxConnections int64 `json:"maxConnections,omitempty"`
}

// BackupStorageSpec is the desired state of a BackupStorage.
// +kubebuilder:validation:XValidation:rule="!has(self.catalog) || (has(self.managementPolicies) && self.managementPolicies == ['Observe'])",message="catalog rebuilds objects from records another cluster wrote and needs managementPolicies [Observe], so that nothing in the storage is rewritten; back up into another storage or prefix"
type BackupStorageSpec struct {
	// Storage is the backend the backups are written to.
	// +kubebuilder:validation:Required
	Storage Backend `json:"storage"`

	// UsagePolicy limits which namespaces may keep Repositories in this
	// storage.
	// +optional
	UsagePolicy *UsagePolicy `json:"usagePolicy,omitempty"`

	// Default marks this storage as the one used when a backup does not name
	// one. At most one BackupStorage per namespace may be the default.
	// +optional
	Default bool `json:"default,omitempty"`

	// DeletionPolicy says whether the backed-up data is removed from the
	// backend (WipeOut) or kept (Delete) when this BackupStorage is deleted.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// RuntimeSettings of the jobs that initialise and clean up the backend.
	// +optional
	RuntimeSettings *RuntimeSettings `json:"runtimeSettings,omitempty"`

	// Access says how the Jobs of namespaces other than the storage's own
	// reach it. Direct (the default) gives them what the storage's own
	// Jobs have: a copy of its credential Secret, or a mount of its local
	// volume, either of which reaches the whole storage. Broker gives them
	// neither: a broker run beside the storage in its namespace serves
	// each of them only the prefixes of its own Repositories, to a token
	// minted for its owner (a BackupConfiguration, a RestoreSession) that
	// expires within eight days and is renewed daily while the owner
	// lives. Broker is the choice for a storage shared by tenants.
	// +kubebuilder:validation:Enum=Direct;Broker
	// +kubebuilder:default=Direct
	// +optional
	Access StorageAccess `json:"access,omitempty"`

	// ManagementPolicies say which actions Stashplane may take on the
	// backend this object mirrors. The default, ["*"], allows all of them.
	// +kubebuilder:default={"*"}
	// +optional
	ManagementPolicies xpv2.ManagementPolicies `json:"managementPolicies,omitempty"`

	// Catalog, when set, rebuilds in this cluster the Repositories and
	// Snapshots that the storage's records name: the way back after the
	// cluster that wrote them is lost. They are made read only
	// (managementPolicies [Observe], deletionPolicy Delete), so nothing of
	// the records or the data is ever rewritten or removed through them.
	// Needs managementPolicies [Observe] on the storage itself.
	// +optional
	Catalog *CatalogSpec `json:"catalog,omitempty"`
}

// StorageAccess says how Jobs of other namespaces reach a BackupStorage.
type StorageAccess string

// Storage access modes.
const (
	// AccessDirect gives other namespaces' Jobs the storage's credentials
	// or volume.
	AccessDirect StorageAccess = "Direct"
	// AccessBroker serves other namespaces' Jobs their own Repositories'
	// prefixes through the storage's broker.
	AccessBroker StorageAccess = "Broker"
)

// Brokered reports whether Jobs of other namespaces reach the storage
// through its broker.
func (bs *BackupStorage) Brokered() bool { return bs.Spec.Access == AccessBroker }

// CatalogSpec says where a storage's catalog is rebuilt.
type CatalogSpec struct {
	// Namespace the Repositories and Snapshots are made in. It must exist
	// and the storage's usagePolicy must admit it.
	// +kubebuilder:validation:Required
	// +kubebuilder:validation:MinLength=1
	Namespace string `json:"namespace"`

	// EncryptionSecret every rebuilt Repository reads its restic password
	// from. The password is never kept in the storage: without this, each
	// Repository names the Secret its record names, in Namespace, and says
	// so while that Secret is missing.
	// +optional
	EncryptionSecret *ObjectReference `json:"encryptionSecret,omitempty"`
}

// CatalogStatus is what the last rebuild of a storage's catalog found.
type CatalogStatus struct {
	// Repositories rebuilt from the storage's records (made now or
	// earlier).
	// +optional
	Repositories int32 `json:"repositories,omitempty"`

	// Snapshots rebuilt from the storage's records (made now or earlier).
	// Only Snapshots whose backup succeeded are rebuilt.
	// +optional
	Snapshots int32 `json:"snapshots,omitempty"`

	// Skipped records, each with the reason (at most 20 listed).
	// +optional
	Skipped []SkippedRecord `json:"skipped,omitempty"`

	// LastRebuildTime is when the records were last read.
	// +optional
	LastRebuildTime *metav1.Time `json:"lastRebuildTime,omitempty"`
}

// SkippedRecord is a record the catalog did not rebuild, and why.
type SkippedRecord struct {
	// Key of the record in the storage.
	Key string `json:"key"`

	// Reason it was skipped.
	Reason string `json:"reason"`
}

// BackupStoragePhase summarises the conditions of a BackupStorage.
// +kubebuilder:validation:Enum=Ready;NotReady
type BackupStoragePhase string

// BackupStorage phases.
const (
	BackupStorageReady    BackupStoragePhase = "Ready"
	BackupStorageNotReady BackupStoragePhase = "NotReady"
)

// BackupStorage condition types.
const (
	// TypeBackendSecretFound is True when the Secret named by the provider
	// block exists and holds the keys the provider needs (or no Secret is
	// named). Set and cleared by the BackupStorage controller.
	TypeBackendSecretFound xpv2.ConditionType = "BackendSecretFound"

	// TypeBackendInitialized is True once the backend is reachable and holds
	// the storage's metadata record. Set and cleared by the BackupStorage
	// controller.
	TypeBackendInitialized xpv2.ConditionType = "BackendInitialized"

	// TypeCatalogRebuilt is True once the Repositories and Snapshots that
	// the storage's records name exist in spec.catalog.namespace. Set by
	// the catalog controller, only when spec.catalog is set.
	TypeCatalogRebuilt xpv2.ConditionType = "CatalogRebuilt"
)

// BackupStorage condition reasons.
const (
	// ReasonBackendSecretAvailable: the credential Secret was found.
	ReasonBackendSecretAvailable xpv2.ConditionReason = "BackendSecretAvailable"
	// ReasonBackendSecretNotFound: the credential Secret does not exist or
	// lacks a required key.
	ReasonBackendSecretNotFound xpv2.ConditionReason = "BackendSecretNotFound"
	// ReasonBackendInitializationSucceeded: the backend was initialised.
	ReasonBackendInitializationSucceeded xpv2.ConditionReason = "BackendInitializationSucceeded"
	// ReasonBackendInitializationFailed: the backend could not be reached or
	// written.
	ReasonBackendInitializationFailed xpv2.ConditionReason = "BackendInitializationFailed"
)

// RepositoryInfo is what a BackupStorage knows of one Repository kept in it.
type RepositoryInfo struct {
	// Name of the Repository.
	Name string `json:"name"`

	// Namespace of the Repository.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Path of the Repository inside the storage.
	// +optional
	Path string `json:"path,omitempty"`

	// Size of the Repository's data in the backend, for example "1.2 GiB".
	// +optional
	Size string `json:"size,omitempty"`

	// Synced is true when the Repository's record in the backend matches the
	// object in the cluster.
	// +optional
	Synced *bool `json:"synced,omitempty"`

	// Error from the last attempt to sync the Repository's record.
	// +optional
	Error string `json:"error,omitempty"`
}

// BackupStorageStatus is the observed state of a BackupStorage.
type BackupStorageStatus struct {
	xpv2.ConditionedStatus `json:",inline"`

	// Phase is Ready when every condition of the storage is True.
	// +optional
	Phase BackupStoragePhase `json:"phase,omitempty"`

	// TotalSize of all Repositories in the storage.
	// +optional
	TotalSize string `json:"totalSize,omitempty"`

	// Repositories kept in this storage.
	// +optional
	Repositories []RepositoryInfo `json:"repositories,omitempty"`

	// Catalog is what the last rebuild of spec.catalog found.
	// +optional
	Catalog *CatalogStatus `json:"catalog,omitempty"`

	// BrokerEndpoint is where the storage's broker serves Jobs of other
	// namespaces (spec.access Broker) while it runs; empty otherwise.
	// +optional
	BrokerEndpoint string `json:"brokerEndpoint,omitempty"`
}

// A BackupStorage is a place backups are written to: a bucket prefix in an
// object store or a directory on a volume.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=stashplane,shortName=bs
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.storage.provider`
// +kubebuilder:printcolumn:name="Default",type=boolean,JSONPath=`.spec.default`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupStorage struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:Required
	Spec   BackupStorageSpec   `json:"spec"`
	Status BackupStorageStatus `json:"status,omitempty"`
}

// BackupStorageList is a list of BackupStorages.
// +kubebuilder:object:root=true
type BackupStorageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupStorage `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BackupStorage{}, &BackupStorageList{})
}

// ChangedForUsers says whether an update from old to bs changed what the
// storage's users act on: its spec, labels, deletion or phase. Its status
// lists, which every new Repository and backup change, do not count: on a
// busy cluster they would wake every user of the storage each time.
func (bs *BackupStorage) ChangedForUsers(old *BackupStorage) bool {
	return old.Generation != bs.Generation || !maps.Equal(old.Labels, bs.Labels) ||
		(old.DeletionTimestamp == nil) != (bs.DeletionTimestamp == nil) || old.Status.Phase != bs.Status.Phase
}

// IsDefaultOf says whether bs is the default BackupStorage of its namespace
// among all: it claims to be (spec.default), is not being deleted, and no
// other claimant of its namespace is older (by creation time, then name).
// A newer claimant is refused by the BackupStorage controller.
func (bs *BackupStorage) IsDefaultOf(all []BackupStorage) bool {
	if !bs.Spec.Default || bs.DeletionTimestamp != nil {
		return false
	}
	for i := range all {
		o := &all[i]
		if o.UID == bs.UID && o.Name == bs.Name && o.Namespace == bs.Namespace {
			continue
		}
		if o.Namespace != bs.Namespace || !o.Spec.Default || o.DeletionTimestamp != nil {
			continue
		}
		if o.CreationTimestamp.Before(&bs.CreationTimestamp) || o.CreationTimestamp.Equal(&bs.CreationTimestamp) && o.Name < bs.Name {
			return false
		}
	}
	return true
}
