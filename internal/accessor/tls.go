package accessor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"
)

// An accessor serves TLS with a certificate of its own, made with its
// token and kept in the same Secret, so that neither the provider's token
// nor a tenant's grant, nor the data, crosses the pod network in the
// clear. Its holders pin that one certificate: they reach the accessor by
// its pod's IP and check the certificate against ServerName, which every
// accessor's certificate names, and against no other root.
const (
	// ServerName is the name an accessor's certificate is issued to.
	ServerName = "storage-accessor.stashplane.io"
	// certKey and keyKey are the certificate's and its key's keys in the
	// accessor's Secret (PEM).
	certKey = "tls.crt"
	keyKey  = "tls.key"
	// certLifetime is how long a certificate lasts: it is replaced with
	// the token (deleting the Secret), not by expiry.
	certLifetime = 10 * 365 * 24 * time.Hour
)

// NewCertificate makes a self-signed serving certificate for ServerName
// and its key, both PEM.
func NewCertificate(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot generate the accessor's key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("cannot generate the accessor's certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: ServerName},
		DNSNames:              []string{ServerName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot make the accessor's certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot encode the accessor's key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// HTTPClient is a client that reaches an accessor serving certPEM and no
// other server. restic writes and reads several packs at once through one
// bucket, so it keeps a connection for each rather than the default two.
func HTTPClient(certPEM []byte) (*http.Client, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(certPEM) {
		return nil, errors.New("cannot read the storage accessor's certificate")
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	t.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: ServerName, MinVersion: tls.VersionTLS13}
	return &http.Client{Timeout: 10 * time.Minute, Transport: t}, nil
}

// ServerTLS is the server side of HTTPClient, from the certificate and key
// files the accessor's Secret mounts.
func ServerTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load the accessor's certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}, nil
}
