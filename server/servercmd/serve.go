package servercmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/annexa-dev/annexa/server"
)

func newServe() *cobra.Command {
	var (
		cfg          server.Config
		listen       string
		tlsCert      string
		tlsKey       string
		insecureHTTP bool
		logLevel     string
		logJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the server (HTTPS; creates keys, token and certificate in --data on first start)",
		Long: `Run the ingest server.

On first start it creates, in --data: enroll.key and log.key (0600; the
enrollment authority and the checkpoint signing key), server.pub (their
public halves, the lines auditors pin), admin.token (0600, the bootstrap
admin API token, also printed once) and a self-signed tls.crt/tls.key unless
--tls-cert/--tls-key are given. SQLite in --data is the default store;
--database postgres://… uses PostgreSQL, for several replicas sharing one
database (copy enroll.key and log.key to each).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			opts := &slog.HandlerOptions{Level: level}
			if logJSON {
				cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, opts))
			} else {
				cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, opts))
			}
			if (tlsCert == "") != (tlsKey == "") {
				return errors.New("--tls-cert and --tls-key go together")
			}
			cfg.PlainHTTP = insecureHTTP
			return serve(cmd.Context(), cfg, listen, tlsCert, tlsKey, insecureHTTP)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8443", "address to listen on")
	f.StringVar(&cfg.DataDir, "data", "/var/lib/annexa-server", "data directory: keys, token, certificate, SQLite database")
	f.StringVar(&cfg.Database, "database", "", "PostgreSQL URL (postgres://…); empty: SQLite in --data")
	f.StringVar(&tlsCert, "tls-cert", "", "TLS certificate (PEM); default: a self-signed one in --data")
	f.StringVar(&tlsKey, "tls-key", "", "TLS private key (PEM)")
	f.BoolVar(&insecureHTTP, "insecure-http", false, "serve plain HTTP (only behind a TLS-terminating proxy, or for local tests)")
	f.StringVar(&cfg.Origin, "origin", "", "the log's name in checkpoints (default annexa/<hostname>; fixed at first start by the key)")
	f.StringVar(&cfg.Mapping, "mapping", "", "check→control mapping file (default: the shipped configs/mapping.yaml)")
	f.StringVar(&cfg.Frameworks, "frameworks", "", "directory of your own framework mappings (NAME.csv: id,title,annex_a_2022, with # title: and # source: lines), besides the shipped ones")
	f.DurationVar(&cfg.Freshness, "freshness", 26*time.Hour, "how long a result stays current before it counts as stale")
	f.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", time.Hour, "how often the state is snapshotted for point-in-time (?at=) queries; negative: never")
	f.DurationVar(&cfg.SnapshotRetention, "snapshot-retention", 0, "how long state snapshots are kept (0: always); ?at= before the oldest reads the results alone")
	f.Int64Var(&cfg.MaxBody, "max-body", 16<<20, "largest request body in bytes, after decompression")
	f.IntVar(&cfg.MaxInflight, "max-inflight", 64, "concurrent ingest batches; past it clients get 503 + Retry-After")
	f.Int64Var(&cfg.IngestMemory, "ingest-memory", 64<<20, "bytes of decompressed batches in flight at once (reading or being stored); past it clients get 503 + Retry-After")
	f.DurationVar(&cfg.UploadGrace, "upload-grace", server.UploadGrace, "an upload must keep a minimum pace after this long, and no read may wait longer")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&logJSON, "log-json", false, "log as JSON lines")
	return cmd
}

func serve(ctx context.Context, cfg server.Config, listen, certFile, keyFile string, insecureHTTP bool) error {
	// The port first: a server that cannot listen creates no keys and
	// prints no token.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (another server there? pick another address with --listen)", listen, err)
	}
	defer ln.Close()
	srv, err := server.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	log := cfg.Logger
	if srv.AdminToken != "" {
		// A secret goes to a person's terminal only, never into a log
		// file (stderr redirected): admin.token (0600) holds it either way.
		path := filepath.Join(cfg.DataDir, server.AdminFile)
		if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(os.Stderr, "\nBootstrap admin token (also in %s):\n\n    %s\n\n", path, srv.AdminToken)
		} else {
			fmt.Fprintf(os.Stderr, "Bootstrap admin token created in %s (0600); not printed, as this is not a terminal\n", path)
		}
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      10 * time.Minute, // exports stream for a while
		IdleTimeout:       2 * time.Minute,
	}
	scheme := "https"
	if insecureHTTP {
		scheme = "http"
	} else {
		if certFile == "" {
			if certFile, keyFile, err = server.EnsureTLS(cfg.DataDir); err != nil {
				return fmt.Errorf("TLS certificate: %w", err)
			}
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		// TLS 1.3, and 1.2 with forward-secret AEAD suites only (no CBC,
		// no SHA-1 MACs, no RSA key exchange).
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		}}
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	log.Info("annexa-server listening", "url", scheme+"://"+ln.Addr().String(), "data", cfg.DataDir, "store", srv.DB().Dialect().String(), "log", srv.Keys().Log.Name())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Graceful: stop accepting, let every in-flight batch commit and be
	// answered. A batch is durable before its answer, so nothing
	// acknowledged is lost, and nothing unacknowledged is counted.
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
