package storage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"regexp"
	"syscall"

	gcs "cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	"gocloud.dev/gcerrors"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"
)

// Reasons an operation on a bucket failed, stable enough to be the reason
// of a condition.
const (
	// ReasonBucketNotFound: the bucket, container or mounted volume does
	// not exist.
	ReasonBucketNotFound = "BucketNotFound"
	// ReasonPermissionDenied: the backend refused the credentials, or they
	// lack a permission.
	ReasonPermissionDenied = "PermissionDenied"
	// ReasonUnreachable: the endpoint could not be reached (DNS, connection,
	// TLS, timeout).
	ReasonUnreachable = "Unreachable"
	// ReasonNotFound: the object does not exist.
	ReasonNotFound = "NotFound"
	// ReasonInvalidConfig: the spec or the Secret is wrong; the backend was
	// not contacted.
	ReasonInvalidConfig = "InvalidConfig"
	// ReasonUnknown: anything else.
	ReasonUnknown = "Unknown"
)

// bucketMissingError is a missing bucket: found before the backend was
// asked (what says how, such as a local volume that is not mounted), or
// told by a "not found" answer to a request that does not name an object
// (a list or a write), whatever code the backend used for it.
type bucketMissingError struct {
	what string
	err  error
}

func (e *bucketMissingError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return e.what
}

func (e *bucketMissingError) Unwrap() error { return e.err }

// notFoundMeansBucket marks a "not found" answer to a list or a write as a
// missing bucket.
func notFoundMeansBucket(err error) error {
	if err == nil || gcerrors.Code(err) != gcerrors.NotFound || isBucketMissing(err) {
		return err
	}
	return &bucketMissingError{err: err}
}

// Codes that S3-compatible servers use for refused credentials.
var s3DeniedCodes = map[string]bool{
	"AccessDenied": true, "Forbidden": true, "InvalidAccessKeyId": true, "SignatureDoesNotMatch": true,
	"InvalidToken": true, "ExpiredToken": true, "InvalidSecurity": true, "AllAccessDisabled": true,
	// versitygw's answer to an access key it does not know.
	"XAdminUserNotFound": true,
}

// Reason classifies an error from Open or from an operation on its bucket;
// "" for nil.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	if IsInvalidConfig(err) {
		return ReasonInvalidConfig
	}
	if isBucketMissing(err) {
		return ReasonBucketNotFound
	}
	if isDenied(err) {
		return ReasonPermissionDenied
	}
	if isUnreachable(err) {
		return ReasonUnreachable
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return ReasonNotFound
	case gcerrors.PermissionDenied:
		return ReasonPermissionDenied
	case gcerrors.DeadlineExceeded:
		return ReasonUnreachable
	}
	return ReasonUnknown
}

func isBucketMissing(err error) bool {
	var bm *bucketMissingError
	if errors.As(err, &bm) || errors.Is(err, gcs.ErrBucketNotExist) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket" {
		return true
	}
	var az *azcore.ResponseError
	if errors.As(err, &az) && az.ErrorCode == "ContainerNotFound" {
		return true
	}
	var g *googleapi.Error
	return errors.As(err, &g) && g.Code == http.StatusNotFound && bucketMessage.MatchString(g.Message)
}

// bucketMessage matches the messages of a GCS 404 about a bucket rather
// than an object.
var bucketMessage = regexp.MustCompile(`(?i)bucket.*(not (exist|found))|no such bucket`)

func isDenied(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) && s3DeniedCodes[api.ErrorCode()] {
		return true
	}
	var aws *awshttp.ResponseError
	if errors.As(err, &aws) && deniedStatus(aws.HTTPStatusCode()) {
		return true
	}
	var az *azcore.ResponseError
	if errors.As(err, &az) && (deniedStatus(az.StatusCode) || az.ErrorCode == "AuthenticationFailed" || az.ErrorCode == "AuthorizationFailure") {
		return true
	}
	var g *googleapi.Error
	if errors.As(err, &g) && deniedStatus(g.Code) {
		return true
	}
	var tok *oauth2.RetrieveError
	return errors.As(err, &tok)
}

func deniedStatus(code int) bool {
	return code == http.StatusUnauthorized || code == http.StatusForbidden
}

func isUnreachable(err error) bool {
	var (
		op       *net.OpError
		dns      *net.DNSError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
	)
	return errors.As(err, &op) || errors.As(err, &dns) || errors.As(err, &unknown) ||
		errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) ||
		errors.As(err, &record) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded)
}

// safeCode matches provider error codes that may be quoted in a message.
var safeCode = regexp.MustCompile(`^[A-Za-z0-9.]{1,64}$`)

// Message describes err for a user who has to fix it: what went wrong and
// what to check, with the backend's error code or the network error when
// there is one. It is built from parts that cannot hold a credential: it
// never quotes a message that came from the backend. "" for nil.
func Message(err error) string {
	if err == nil {
		return ""
	}
	var (
		cfg *configError
		bm  *bucketMissingError
	)
	switch {
	case errors.As(err, &cfg):
		return "invalid storage configuration: " + cfg.msg
	case errors.As(err, &bm) && bm.what != "":
		return "the bucket does not exist: " + bm.what
	}
	msg := map[string]string{
		ReasonBucketNotFound:   "the bucket or container does not exist: create it or correct its name",
		ReasonPermissionDenied: "the backend refused the request: check the credentials in the Secret and their permissions on the bucket",
		ReasonUnreachable:      "cannot reach the backend: check the endpoint, the network path to it and its TLS certificate (CA_CERT_DATA, insecureTLS)",
		ReasonNotFound:         "the object does not exist in the backend",
		ReasonUnknown:          "the backend failed the request",
	}[Reason(err)]
	if d := detail(err); d != "" {
		msg += " (" + d + ")"
	}
	return msg
}

// detail is the part of err that is safe and useful to quote.
func detail(err error) string {
	var (
		api smithy.APIError
		az  *azcore.ResponseError
		g   *googleapi.Error
		op  *net.OpError
		dns *net.DNSError
	)
	switch {
	case errors.As(err, &api) && safeCode.MatchString(api.ErrorCode()):
		return "S3 error " + api.ErrorCode()
	case errors.As(err, &az) && safeCode.MatchString(az.ErrorCode):
		return "Azure error " + az.ErrorCode
	case errors.As(err, &az):
		return "Azure HTTP status " + http.StatusText(az.StatusCode)
	case errors.As(err, &g):
		return "GCS HTTP status " + http.StatusText(g.Code)
	case errors.As(err, &dns):
		return "cannot resolve " + dns.Name
	case errors.As(err, &op):
		// The operation, address and cause: "dial tcp 127.0.0.1:9: connect:
		// connection refused".
		return op.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
	)
	switch {
	case errors.As(err, &unknown):
		return "certificate signed by an unknown authority"
	case errors.As(err, &hostname):
		return hostname.Error()
	}
	return ""
}
