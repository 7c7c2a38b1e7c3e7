package main

import (
	"context"
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
	"gocloud.dev/blob/fileblob"

	"github.com/stashplane/stashplane/internal/accessor"
)

func storageCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "storage", Short: "Work with backup storage"}
	cmd.AddCommand(storageServeCommand())
	return cmd
}

func storageServeCommand() *cobra.Command {
	var root, listen, tokenFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a mounted storage volume to the Stashplane provider (the storage accessor)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serveStorage(ctx, root, listen, tokenFile)
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "directory to serve: the storage volume's mount path and subPath (required)")
	cmd.Flags().StringVar(&listen, "listen", ":9000", "address to listen on")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the token clients must present (required)")
	_ = cmd.MarkFlagRequired("root")
	_ = cmd.MarkFlagRequired("token-file")
	return cmd
}

func serveStorage(ctx context.Context, root, listen, tokenFile string) error {
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return fmt.Errorf("cannot read token file: %w", err)
	}
	token := strings.TrimSpace(string(tok))
	if token == "" {
		return errors.New("cannot serve storage: the token file is empty")
	}
	// Temporary files stay beside their objects: the volume is its own
	// mount, and a rename across mounts would fail.
	b, err := fileblob.OpenBucket(root, &fileblob.Options{CreateDir: true, NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		return fmt.Errorf("cannot open storage directory %q: %w", root, err)
	}
	defer b.Close()
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %q: %w", listen, err)
	}
	srv := &http.Server{Handler: &accessor.Server{Bucket: b, Token: token, Dir: root}, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Printf("serving %s on %s\n", root, l.Addr())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("cannot serve storage: %w", err)
	}
	return nil
}
