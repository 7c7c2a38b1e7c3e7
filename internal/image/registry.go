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

package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is an OCI registry served from memory on a loopback port, as
// the dev cluster's source of images and packages. Clients built on
// go-containerregistry (Crossplane core among them) talk plain HTTP to a
// loopback address without being told.
type Registry struct {
	// Addr is the registry's host and port, 127.0.0.1:PORT.
	Addr string
	srv  *http.Server
	done chan error
}

// ServeRegistry starts an empty registry on a free loopback port; it
// stops when ctx ends or Stop is called.
func ServeRegistry(ctx context.Context) (*Registry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot listen for the registry: %w", err)
	}
	r := &Registry{
		Addr: l.Addr().String(),
		srv: &http.Server{
			Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
			ReadHeaderTimeout: 30 * time.Second,
		},
		done: make(chan error, 1),
	}
	go func() {
		err := r.srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		r.done <- err
	}()
	go func() {
		<-ctx.Done()
		_ = r.Stop()
	}()
	return r, nil
}

// Stop closes the registry.
func (r *Registry) Stop() error {
	if err := r.srv.Close(); err != nil {
		return fmt.Errorf("cannot stop the registry: %w", err)
	}
	return nil
}

// Load pushes the layout's images named below from with the given tag (any
// tag if empty) into
// the registry, below the same path as on the registry they are named
// for (ghcr.io/stashplane/NAME becomes ADDR/stashplane/NAME), and returns
// what it pushed.
func (r *Registry) Load(l *Layout, from, tag string) ([]string, error) {
	return l.Push(from, tag, r.Addr+"/"+RepositoryPath(from))
}

// RepositoryPath drops the registry host off a prefix such as
// ghcr.io/stashplane/, leaving stashplane: where Load puts its images.
func RepositoryPath(prefix string) string {
	_, p, _ := strings.Cut(strings.TrimRight(prefix, "/"), "/")
	return p
}
