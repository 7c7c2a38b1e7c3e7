package storage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	gcs "cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/blob/s3blob"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
)

// providers is the one place a backend is registered.
var providers = map[storagev1alpha1.StorageProvider]opener{
	storagev1alpha1.ProviderLocal: openLocal,
	storagev1alpha1.ProviderS3:    openS3,
	storagev1alpha1.ProviderGCS:   openGCS,
	storagev1alpha1.ProviderAzure: openAzure,
	ProviderMem:                   openMem,
}

// localPrefix checks a local block and returns its subPath as a key prefix.
func localPrefix(spec storagev1alpha1.Backend) (string, error) {
	if spec.Local == nil {
		return "", invalidConfigf("provider %q needs the local block", spec.Provider)
	}
	sub := spec.Local.SubPath
	if sub != "" && (path.IsAbs(sub) || strings.HasPrefix(path.Clean(sub), "..")) {
		return "", invalidConfigf("subPath %q must stay inside the volume", sub)
	}
	return path.Clean("/" + sub)[1:], nil
}

// openLocal opens the volume mounted at opts.LocalRoot as files. The mount
// must exist (a missing mount is a missing bucket); the subPath under it is
// a key prefix, created by the first write like a prefix in an object store.
func openLocal(_ context.Context, spec storagev1alpha1.Backend, _ map[string][]byte, opts OpenOptions) (opened, error) {
	prefix, err := localPrefix(spec)
	if err != nil {
		return opened{}, err
	}
	if opts.LocalRoot == "" || !filepath.IsAbs(opts.LocalRoot) {
		return opened{}, invalidConfigf("local storage needs the absolute path where its volume is mounted in this process")
	}
	if fi, err := os.Stat(opts.LocalRoot); err != nil || !fi.IsDir() {
		return opened{}, &bucketMissingError{what: "the volume of the local storage is not mounted at " + opts.LocalRoot}
	}
	b, err := fileblob.OpenBucket(opts.LocalRoot, &fileblob.Options{
		// Objects are exactly the files restic and a user expect: no
		// attribute sidecars, and temporary files on the same volume so
		// that a finished write is a rename.
		Metadata:  fileblob.MetadataDontWrite,
		NoTempDir: true,
	})
	if err != nil {
		return opened{}, err
	}
	return opened{bucket: b, prefix: prefix, maxConnections: spec.Local.MaxConnections}, nil
}

var (
	memMu      sync.Mutex
	memVolumes = map[string]*blob.Bucket{}
)

// openMem opens the in-memory volume named by opts.LocalRoot, creating it
// on first use.
func openMem(_ context.Context, spec storagev1alpha1.Backend, _ map[string][]byte, opts OpenOptions) (opened, error) {
	prefix, err := localPrefix(spec)
	if err != nil {
		return opened{}, err
	}
	memMu.Lock()
	defer memMu.Unlock()
	b, ok := memVolumes[opts.LocalRoot]
	if !ok {
		b = memblob.OpenBucket(nil)
		memVolumes[opts.LocalRoot] = b
	}
	return opened{bucket: b, prefix: prefix, maxConnections: spec.Local.MaxConnections, shared: true}, nil
}

// newHTTPClient makes the HTTP client of one bucket: the system's roots plus
// the Secret's CA_CERT_DATA, or no verification at all when insecureTLS.
func newHTTPClient(secret map[string][]byte, insecure bool) (*http.Client, func(), error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Backups move many objects in parallel over one endpoint: keep the
	// connections instead of re-dialling.
	t.MaxIdleConnsPerHost = 64
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := secret[storagev1alpha1.SecretKeyCACertData]; len(ca) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(ca) {
			return nil, nil, invalidConfigf("%s of the Secret holds no PEM certificate", storagev1alpha1.SecretKeyCACertData)
		}
		cfg.RootCAs = pool
	}
	cfg.InsecureSkipVerify = insecure //nolint:gosec // asked for by spec.s3.insecureTLS
	t.TLSClientConfig = cfg
	return &http.Client{Transport: t}, t.CloseIdleConnections, nil
}

// endpointURL accepts an endpoint with or without a scheme; without one it
// is https.
func endpointURL(ep string) (string, error) {
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", invalidConfigf("endpoint %q is not an http(s) URL or a host name", ep)
	}
	return u.String(), nil
}

func openS3(ctx context.Context, spec storagev1alpha1.Backend, secret map[string][]byte, _ OpenOptions) (opened, error) {
	s := spec.S3
	if s == nil {
		return opened{}, invalidConfigf("provider s3 needs the s3 block")
	}
	hc, closeIdle, err := newHTTPClient(secret, s.InsecureTLS)
	if err != nil {
		return opened{}, err
	}
	region := s.Region
	if region == "" {
		region = "us-east-1"
	}
	var cfg aws.Config
	if s.SecretName != "" {
		id, key := secret[storagev1alpha1.SecretKeyAWSAccessKeyID], secret[storagev1alpha1.SecretKeyAWSSecretAccessKey]
		if len(id) == 0 || len(key) == 0 {
			return opened{}, invalidConfigf("Secret %q needs %s and %s", s.SecretName,
				storagev1alpha1.SecretKeyAWSAccessKeyID, storagev1alpha1.SecretKeyAWSSecretAccessKey)
		}
		cfg = aws.Config{
			Region:      region,
			HTTPClient:  hc,
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(string(id), string(key), "")),
		}
	} else {
		// Ambient credentials: environment, web identity, instance role.
		cfg, err = awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region), awsconfig.WithHTTPClient(hc))
		if err != nil {
			return opened{}, invalidConfigf("cannot load ambient AWS credentials: %v", err)
		}
	}
	// S3-compatible servers differ in the checksums they understand: send
	// and check them only where the protocol requires them.
	cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	var endpoint string
	if s.Endpoint != "" {
		if endpoint, err = endpointURL(s.Endpoint); err != nil {
			return opened{}, err
		}
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// Payloads are not hashed for the signature: over TLS the channel
		// protects them, and hashing every byte a second time costs a
		// backup a core's worth of SHA-256. Restic authenticates its own
		// data; Stashplane's records are small and re-read on every
		// reconcile.
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
	})
	b, err := s3blob.OpenBucket(ctx, client, s.Bucket, nil)
	if err != nil {
		return opened{}, err
	}
	return opened{bucket: b, prefix: s.Prefix, maxConnections: s.MaxConnections, closers: []func(){closeIdle}}, nil
}

// serviceAccountKey is the part of a Google service account key that is
// checked before it is used. Other credential types (external accounts,
// user credentials) are refused: they can make the client read files or
// call URLs named in the Secret.
type serviceAccountKey struct {
	Type        string `json:"type"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
}

func openGCS(ctx context.Context, spec storagev1alpha1.Backend, secret map[string][]byte, _ OpenOptions) (opened, error) {
	g := spec.GCS
	if g == nil {
		return opened{}, invalidConfigf("provider gcs needs the gcs block")
	}
	hc, closeIdle, err := newHTTPClient(secret, false)
	if err != nil {
		return opened{}, err
	}
	var ts oauth2.TokenSource
	if g.SecretName != "" {
		key := secret[storagev1alpha1.SecretKeyGoogleServiceAccountJSON]
		var sa serviceAccountKey
		// The parser's message may quote the key: it is not passed on.
		if json.Unmarshal(key, &sa) != nil || sa.Type != "service_account" || sa.ClientEmail == "" || sa.PrivateKey == "" {
			return opened{}, invalidConfigf("%s of Secret %q is not a Google service account key in JSON",
				storagev1alpha1.SecretKeyGoogleServiceAccountJSON, g.SecretName)
		}
		// A self-signed token: nothing but the storage endpoint is called.
		if ts, err = google.JWTAccessTokenSourceWithScope(key, gcs.ScopeFullControl); err != nil {
			return opened{}, invalidConfigf("%s of Secret %q holds an unusable private key",
				storagev1alpha1.SecretKeyGoogleServiceAccountJSON, g.SecretName)
		}
	} else {
		if ts, err = google.DefaultTokenSource(ctx, gcs.ScopeFullControl); err != nil {
			return opened{}, invalidConfigf("cannot find ambient Google credentials: %v", err)
		}
	}
	hc.Transport = &oauth2.Transport{Source: oauth2.ReuseTokenSource(nil, ts), Base: hc.Transport}
	copts := []option.ClientOption{option.WithHTTPClient(hc)}
	if g.Endpoint != "" {
		ep, err := endpointURL(g.Endpoint)
		if err != nil {
			return opened{}, err
		}
		copts = append(copts, option.WithEndpoint(ep))
	}
	client, err := gcs.NewClient(ctx, copts...)
	if err != nil {
		return opened{}, err
	}
	b, err := gcsblob.OpenBucket(ctx, nil, g.Bucket, &gcsblob.Options{Client: client})
	if err != nil {
		_ = client.Close()
		return opened{}, err
	}
	return opened{bucket: b, prefix: g.Prefix, maxConnections: g.MaxConnections,
		closers: []func(){func() { _ = client.Close() }, closeIdle}}, nil
}

func openAzure(ctx context.Context, spec storagev1alpha1.Backend, secret map[string][]byte, _ OpenOptions) (opened, error) {
	a := spec.Azure
	if a == nil {
		return opened{}, invalidConfigf("provider azure needs the azure block")
	}
	hc, closeIdle, err := newHTTPClient(secret, false)
	if err != nil {
		return opened{}, err
	}
	service := "https://" + a.StorageAccount + ".blob.core.windows.net/"
	if a.Endpoint != "" {
		if service, err = endpointURL(a.Endpoint); err != nil {
			return opened{}, err
		}
	}
	containerURL := strings.TrimSuffix(service, "/") + "/" + url.PathEscape(a.Container)
	copts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: hc,
		Retry:     policy.RetryOptions{MaxRetries: 2},
	}}
	var client *container.Client
	if a.SecretName != "" {
		key := secret[storagev1alpha1.SecretKeyAzureAccountKey]
		if len(key) == 0 {
			return opened{}, invalidConfigf("Secret %q needs %s", a.SecretName, storagev1alpha1.SecretKeyAzureAccountKey)
		}
		cred, err := container.NewSharedKeyCredential(a.StorageAccount, strings.TrimSpace(string(key)))
		if err != nil {
			// The decoder's message may quote the key: it is not passed on.
			return opened{}, invalidConfigf("%s of Secret %q is not a base64 account key", storagev1alpha1.SecretKeyAzureAccountKey, a.SecretName)
		}
		if client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, copts); err != nil {
			return opened{}, err
		}
	} else {
		cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: azcore.ClientOptions{Transport: hc},
		})
		if err != nil {
			return opened{}, invalidConfigf("cannot find ambient Azure credentials: %v", err)
		}
		if client, err = container.NewClient(containerURL, cred, copts); err != nil {
			return opened{}, err
		}
	}
	b, err := azureblob.OpenBucket(ctx, client, nil)
	if err != nil {
		return opened{}, err
	}
	return opened{bucket: b, prefix: a.Prefix, maxConnections: a.MaxConnections, closers: []func(){closeIdle}}, nil
}
