// Package accessor reaches a BackupStorage whose backend only a pod can
// mount (provider local: a hostPath, an NFS export, a PVC). The storage's
// accessor pod mounts the volume and serves it with Server; the provider
// talks to it through a gocloud.dev/blob driver (OpenBucket), so the
// controllers use one storage API whatever the backend.
//
// The protocol is small HTTP over the pod network, authorised by a bearer
// token that the BackupStorage controller generates and keeps in a Secret:
//
//	GET    /v1/object?key=K[&offset=N&length=N]  read (length -1: to the end)
//	HEAD   /v1/object?key=K                      attributes
//	PUT    /v1/object?key=K[&ifNotExist=true]    write the request body
//	DELETE /v1/object?key=K                      delete
//	POST   /v1/copy?src=K&dst=K                  copy
//	GET    /v1/list?prefix=P&delimiter=D&pageSize=N&pageToken=T
//
// Errors carry a gocloud error code name in a JSON body, so the client
// reports the same codes the server's bucket did.
package accessor

import (
	"encoding/base64"
	"encoding/json"
	"time"

	"gocloud.dev/gcerrors"
)

// Headers that carry object attributes.
const (
	headerSize        = "X-Stashplane-Size"
	headerModTime     = "X-Stashplane-Mod-Time"
	headerMD5         = "X-Stashplane-Md5"
	headerContentType = "Content-Type"
	headerETag        = "ETag"
	headerAttrs       = "X-Stashplane-Attrs"
)

// attrs are the object attributes beyond size, time and type, carried as
// base64 JSON in one header.
type attrs struct {
	CacheControl       string            `json:"cacheControl,omitempty"`
	ContentDisposition string            `json:"contentDisposition,omitempty"`
	ContentEncoding    string            `json:"contentEncoding,omitempty"`
	ContentLanguage    string            `json:"contentLanguage,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
}

func (a attrs) encode() string {
	b, _ := json.Marshal(a)
	return base64.StdEncoding.EncodeToString(b)
}

func decodeAttrs(s string) (attrs, error) {
	var a attrs
	if s == "" {
		return a, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return a, err
	}
	return a, json.Unmarshal(b, &a)
}

// listPage is the JSON body of a list response.
type listPage struct {
	Objects []listObject `json:"objects"`
	Next    []byte       `json:"next,omitempty"`
}

type listObject struct {
	Key     string    `json:"key"`
	ModTime time.Time `json:"modTime"`
	Size    int64     `json:"size"`
	MD5     []byte    `json:"md5,omitempty"`
	IsDir   bool      `json:"isDir,omitempty"`
}

// errorBody is the JSON body of an error response.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// codes maps gocloud error codes to and from their names on the wire.
var codes = map[gcerrors.ErrorCode]string{
	gcerrors.NotFound:           "NotFound",
	gcerrors.AlreadyExists:      "AlreadyExists",
	gcerrors.InvalidArgument:    "InvalidArgument",
	gcerrors.PermissionDenied:   "PermissionDenied",
	gcerrors.FailedPrecondition: "FailedPrecondition",
	gcerrors.Unimplemented:      "Unimplemented",
	gcerrors.ResourceExhausted:  "ResourceExhausted",
	gcerrors.DeadlineExceeded:   "DeadlineExceeded",
	gcerrors.Canceled:           "Canceled",
	gcerrors.Internal:           "Internal",
	gcerrors.Unknown:            "Unknown",
}

func codeOf(name string) gcerrors.ErrorCode {
	for c, n := range codes {
		if n == name {
			return c
		}
	}
	return gcerrors.Unknown
}
