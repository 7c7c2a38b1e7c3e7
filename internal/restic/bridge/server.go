package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"gocloud.dev/blob"
)

// Server is a running bridge for one repository, on loopback, with a
// credential made for this run.
type Server struct {
	srv      *http.Server
	addr     string
	user     string
	password string
	done     chan error
}

// Start serves the repository in bucket (already scoped to the
// repository's prefix) on 127.0.0.1 with a free port, until Close. The
// bucket stays the caller's: Close does not close it.
func Start(bucket *blob.Bucket, opts Options) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot listen on loopback: %w", err)
	}
	s := &Server{addr: l.Addr().String(), user: "stashplane", password: randomToken(), done: make(chan error, 1)}
	s.srv = &http.Server{
		Handler:           NewHandler(bucket, s.user, s.password, opts),
		ReadHeaderTimeout: 30 * time.Second,
	}
	go func() { s.done <- s.srv.Serve(l) }()
	return s, nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Repository is the repository location to give restic, credential
// included: rest:http://USER:PASSWORD@127.0.0.1:PORT/. Pass it in the
// environment (RESTIC_REPOSITORY), never on a command line, and never log
// it.
func (s *Server) Repository() string {
	u := url.URL{Scheme: "http", User: url.UserPassword(s.user, s.password), Host: s.addr, Path: "/"}
	return "rest:" + u.String()
}

// Password is the credential of this run, for callers that redact it.
func (s *Server) Password() string { return s.password }

// Addr is the address the bridge listens on.
func (s *Server) Addr() string { return s.addr }

// Close stops the bridge, waiting up to the context's deadline for
// requests in flight.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("cannot stop the restic bridge: %w", err)
	}
	return nil
}
