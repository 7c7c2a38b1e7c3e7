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

// Command function serves Stashplane to Crossplane as a composition
// function over gRPC: it composes Protections (functions/xfn).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/crossplane/function-sdk-go"

	"github.com/stashplane/stashplane/functions/xfn"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "function:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		address  = flag.String("address", ":9443", "address to serve gRPC on")
		insecure = flag.Bool("insecure", false, "serve without mTLS; for local development and `crossplane render` only")
		tlsDir   = flag.String("tls-certs-dir", os.Getenv("TLS_SERVER_CERTS_DIR"), "directory holding tls.crt, tls.key and ca.crt for mTLS")
		metrics  = flag.String("metrics-address", "", "address to serve Prometheus metrics on; none if empty")
		debug    = flag.Bool("debug", false, "log debug messages")
	)
	flag.Parse()
	log, err := function.NewLogger(*debug)
	if err != nil {
		return fmt.Errorf("cannot create logger: %w", err)
	}
	return function.Serve(xfn.New(log),
		function.Listen("tcp", *address),
		function.MTLSCertificates(*tlsDir),
		function.Insecure(*insecure),
		function.WithMetricsServer(*metrics),
	)
}
