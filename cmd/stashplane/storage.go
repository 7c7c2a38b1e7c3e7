package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	storagev1alpha1 "github.com/stashplane/stashplane/apis/storage/v1alpha1"
	"github.com/stashplane/stashplane/internal/accessor"
	"github.com/stashplane/stashplane/internal/agent"
	"github.com/stashplane/stashplane/internal/storage"
)

func storageCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "storage", Short: "Work with backup storage"}
	cmd.AddCommand(storageServeCommand())
	return cmd
}

func storageServeCommand() *cobra.Command {
	var root, backend, secretDir, listen, tokenFile, certFile, keyFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a storage to the Stashplane provider and, brokered, each Job its own repositories (the storage accessor)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if (root == "") == (backend == "") {
				return errors.New("cannot serve storage: give either --root (a mounted volume) or --backend (an object store)")
			}
			return serveStorage(ctx, root, backend, secretDir, listen, tokenFile, certFile, keyFile)
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "directory to serve: the storage volume's mount path and subPath")
	cmd.Flags().StringVar(&backend, "backend", "", "the BackupStorage's spec.storage as JSON: an object store to serve")
	cmd.Flags().StringVar(&secretDir, "secret-dir", "", "with --backend: directory holding the storage's credential Secret, one file per key")
	cmd.Flags().StringVar(&listen, "listen", ":9000", "address to listen on")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the token clients must present (required)")
	_ = cmd.MarkFlagRequired("token-file")
	cmd.Flags().StringVar(&certFile, "tls-cert-file", "", "PEM certificate to serve TLS with (with --tls-key-file); without, plain HTTP")
	cmd.Flags().StringVar(&keyFile, "tls-key-file", "", "PEM key of --tls-cert-file")
	return cmd
}

// openServed opens what the accessor serves: a directory on a mounted
// volume, or an object store with the storage's own credentials.
func openServed(ctx context.Context, root, backend, secretDir string) (*blob.Bucket, string, error) {
	if root != "" {
		// Temporary files stay beside their objects: the volume is its own
		// mount, and a rename across mounts would fail.
		b, err := fileblob.OpenBucket(root, &fileblob.Options{CreateDir: true, NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
		if err != nil {
			return nil, "", fmt.Errorf("cannot open storage directory %q: %w", root, err)
		}
		return b, root, nil
	}
	spec := storagev1alpha1.Backend{}
	if err := json.Unmarshal([]byte(backend), &spec); err != nil {
		return nil, "", fmt.Errorf("cannot read --backend: %w", err)
	}
	if spec.Provider == storagev1alpha1.ProviderLocal {
		return nil, "", errors.New("cannot serve a local storage from --backend: give --root")
	}
	secret, err := agent.ReadSecretDir(secretDir)
	if err != nil {
		return nil, "", err
	}
	b, err := storage.Open(ctx, spec, secret, storage.OpenOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("cannot open the storage: %s", storage.Message(err))
	}
	return b, string(spec.Provider), nil
}

func serveStorage(ctx context.Context, root, backend, secretDir, listen, tokenFile, certFile, keyFile string) error {
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return fmt.Errorf("cannot read token file: %w", err)
	}
	token := strings.TrimSpace(string(tok))
	if token == "" {
		return errors.New("cannot serve storage: the token file is empty")
	}
	b, what, err := openServed(ctx, root, backend, secretDir)
	if err != nil {
		return err
	}
	defer b.Close()
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %q: %w", listen, err)
	}
	logRefusal := func(msg string, kv ...any) { fmt.Fprintln(os.Stderr, append([]any{msg}, kv...)...) }
	srv := &http.Server{Handler: &accessor.Server{Bucket: b, Token: token, Dir: root, Log: logRefusal}, ReadHeaderTimeout: 30 * time.Second}
	if certFile != "" || keyFile != "" {
		if srv.TLSConfig, err = accessor.ServerTLS(certFile, keyFile); err != nil {
			return err
		}
		l = tls.NewListener(l, srv.TLSConfig)
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Printf("serving %s on %s\n", what, l.Addr())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("cannot serve storage: %w", err)
	}
	return nil
}
