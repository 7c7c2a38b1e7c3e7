//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// The probe commands are the programs that pods of the dev cluster's own
// tests run to check the pod network: a server that answers with a fixed
// text, a client and a name lookup. They are hidden: they are no part of
// what Stashplane offers.

// probeResolver looks names up the way a pod's resolver configuration says
// (/etc/hosts, then the servers of /etc/resolv.conf with its search list),
// in Go whatever the binary was built with.
var probeResolver = &net.Resolver{PreferGo: true}

func probeCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "probe", Short: "Programs that check a dev cluster's pod network", Hidden: true}
	cmd.AddCommand(probeServeCommand(), probeGetCommand(), probeResolveCommand())
	return cmd
}

func probeServeCommand() *cobra.Command {
	var listen, reply string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Answer every HTTP request with a fixed text",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("cannot listen on %q: %w", listen, err)
			}
			fmt.Println("listening on", l.Addr())
			srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, reply+"\n")
			})}
			return srv.Serve(l)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":8080", "address to listen on")
	cmd.Flags().StringVar(&reply, "reply", "", "text to answer with")
	return cmd
}

func probeGetCommand() *cobra.Command {
	var caFile, tokenFile string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "get URL",
		Short: "Fetch a URL and print its body, retrying until it answers with success or the timeout passes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := probeClient(caFile)
			if err != nil {
				return err
			}
			var token string
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("cannot read token: %w", err)
				}
				token = strings.TrimSpace(string(b))
			}
			return retry(cmd.Context(), timeout, func(ctx context.Context) error {
				body, err := probeGet(ctx, client, args[0], token)
				if err == nil {
					fmt.Print(body)
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&caFile, "ca", "", "file of CA certificates to trust for https")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file of a bearer token to send")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long to retry (0: try once)")
	return cmd
}

func probeClient(caFile string) (*http.Client, error) {
	dialer := &net.Dialer{Timeout: 5 * time.Second, Resolver: probeResolver}
	transport := &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot find a certificate in %q", caFile)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: transport, Timeout: 10 * time.Second}, nil
}

func probeGet(ctx context.Context, client *http.Client, url, token string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("cannot make request: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("cannot read response: %w", err)
	}
	if resp.StatusCode >= 300 {
		return "", fmt.Errorf("%s answered %s: %s", url, resp.Status, body)
	}
	return string(body), nil
}

func probeResolveCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "resolve NAME",
		Short: "Look a host name up and print its addresses, retrying until it resolves or the timeout passes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return retry(cmd.Context(), timeout, func(ctx context.Context) error {
				addrs, err := probeResolver.LookupHost(ctx, args[0])
				if err == nil {
					fmt.Println(strings.Join(addrs, "\n"))
				}
				return err
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long to retry (0: try once)")
	return cmd
}

// retry calls f until it succeeds or the timeout has passed, and returns
// its last error.
func retry(ctx context.Context, timeout time.Duration, f func(context.Context) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	deadline := time.Now().Add(timeout)
	for {
		err := f(ctx)
		if err == nil || !time.Now().Before(deadline) {
			return err
		}
		fmt.Fprintln(os.Stderr, "retrying:", err)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
