package cli

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
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custodia-project/custodia/internal/app"
	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/config"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/mfa"
	"github.com/custodia-project/custodia/internal/password"
	"github.com/custodia-project/custodia/internal/server"
	"github.com/custodia-project/custodia/internal/sso"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/store/postgres"
	"github.com/custodia-project/custodia/internal/store/sqlite"
	"github.com/custodia-project/custodia/internal/sys"
)

// Files the server keeps in the data directory in --dev mode.
const (
	devKeyFile   = "dev-root.key"
	devTokenFile = "dev-operator-token"
)

func serverCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "server",
		Short: "Run the Custodia server (HTTPS; sealed until unsealed)",
		Long: `Run the server. With --data DIR it keeps everything in DIR (SQLite); with
--database-url it uses PostgreSQL. It always serves TLS: given --tls-cert and
--tls-key, or a self-signed certificate generated in DIR on first start (its
SHA-256 fingerprint is printed). The server starts sealed: initialize it once
with "custodia operator init", then unseal with "custodia operator unseal".

Every flag can also be set as a CUSTODIA_* environment variable (--max-body-bytes
is CUSTODIA_MAX_BODY_BYTES) or in a TOML file given with --config.`,
		Args: exactArgs(0, "no arguments"),
	}
	cfg := config.Register(c.Flags())
	c.RunE = func(c *cobra.Command, args []string) error {
		if err := config.Resolve(c.Flags(), e.getenv); err != nil {
			return &exitError{code: ExitUsage, err: err}
		}
		if err := cfg.Validate(); err != nil {
			return &exitError{code: ExitUsage, err: err}
		}
		return runServer(c.Context(), cfg, e)
	}
	return c
}

func newLogger(cfg *config.Config, e *env) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(e.stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(e.stderr, opts))
}

func openStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	if cfg.DatabaseURL != "" {
		return postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{ReplicaURLs: cfg.ReplicaURLs})
	}
	return sqlite.Open(ctx, cfg.DataDir)
}

// within reports whether path lies inside dir.
func within(path, dir string) bool {
	ap, err1 := filepath.Abs(path)
	ad, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(ad, ap)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// rootKeyFile returns the root key the server starts with, if any.
func rootKeyFile(cfg *config.Config, log *slog.Logger) (keys.Secret, error) {
	if cfg.Dev {
		path := filepath.Join(cfg.DataDir, devKeyFile)
		log.Warn("DEVELOPMENT MODE: the root key is kept inside the data directory; anyone with a copy of the directory can read every secret. Never use --dev for real data.", "key_file", path)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return nil, err
			}
			k, err := keys.GenerateKey()
			if err != nil {
				return nil, err
			}
			if err := keys.WriteKeyFile(path, k); err != nil {
				return nil, err
			}
		}
		return keys.ReadKeyFile(path)
	}
	if cfg.RootKeyFile == "" {
		return nil, nil
	}
	if cfg.DataDir != "" && within(cfg.RootKeyFile, cfg.DataDir) {
		return nil, fmt.Errorf("--root-key-file %s is inside the data directory: the root key must never sit beside the data (or in its backups)", cfg.RootKeyFile)
	}
	return keys.ReadKeyFile(cfg.RootKeyFile)
}

func loadCertificate(cfg *config.Config, e *env, log *slog.Logger, now time.Time) (tls.Certificate, error) {
	if cfg.TLSCert != "" {
		c, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("TLS certificate: %w", err)
		}
		return c, nil
	}
	host, _, _ := net.SplitHostPort(cfg.Listen)
	hosts := []string{host}
	if hn, err := os.Hostname(); err == nil {
		hosts = append(hosts, hn)
	}
	c, created, err := server.LoadOrCreateSelfSigned(cfg.DataDir, hosts, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	fp := server.Fingerprint(c.Certificate[0])
	if created {
		log.Warn("generated a self-signed TLS certificate; give clients its file or pin its fingerprint, or use --tls-cert/--tls-key",
			"cert", filepath.Join(cfg.DataDir, server.SelfSignedCert), "sha256", fp)
	}
	fmt.Fprintf(e.stderr, "TLS certificate SHA-256 fingerprint: %s\n", fp)
	return c, nil
}

// identityOptions turns the identity settings into the service's options.
func identityOptions(c config.Identity, log *slog.Logger) (identity.Options, error) {
	p := password.DefaultParams()
	p.Memory, p.Time, p.Threads = c.ArgonMemory, c.ArgonTime, c.ArgonThreads
	h, err := password.NewHasher(p, c.HashConcurrency)
	if err != nil {
		return identity.Options{}, err
	}
	o := identity.Options{Hasher: h, Policy: password.DefaultPolicy(), Limits: identity.SigninLimits{
		PerSource: c.SigninPerSource, LockAfter: c.SigninLockAfter, LockFor: c.SigninLockFor,
	}}
	roots, err := c.SSORoots()
	if err != nil {
		return identity.Options{}, err
	}
	// The default transport's proxy settings stay; a private provider's
	// CA is added to the system roots.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if roots != nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	}
	if c.SSOAllowPrivate {
		log.Warn("--sso-allow-private-networks: tenant admins may point single sign-on at private, loopback and link-local addresses, " +
			"and so make this server send requests into its own network")
	} else {
		sso.PublicOnly(tr)
	}
	o.HTTPClient = &http.Client{Transport: tr, Timeout: 20 * time.Second}
	if c.WebAuthnRPID == "" {
		log.Info("passkeys are off; give --webauthn-rp-id (and --webauthn-origin) to turn them on")
		return o, nil
	}
	origins := c.WebAuthnOrigins
	if len(origins) == 0 {
		origins = []string{"https://" + c.WebAuthnRPID}
	}
	o.Passkeys, err = mfa.NewPasskeys(c.WebAuthnRPID, "Custodia", origins)
	if err != nil {
		return identity.Options{}, err
	}
	return o, nil
}

func runServer(ctx context.Context, cfg *config.Config, e *env) error {
	log := newLogger(cfg, e)
	now := time.Now
	if cfg.MetricsPublic {
		log.Warn("--metrics-public: /metrics is served without a token")
	}
	// The store first: on SQLite it locks the data directory, so a second
	// server on the same directory stops before it reads the root key or
	// makes a TLS certificate in it.
	st, err := openStore(ctx, cfg)
	if err != nil {
		if errors.Is(err, store.ErrSchemaTooNew) {
			return &exitError{code: ExitConflict, err: err}
		}
		return &exitError{code: ExitUnavailable, err: fmt.Errorf("storage: %w", err)}
	}
	defer st.Close()
	keyFile, err := rootKeyFile(cfg, log)
	if err != nil {
		return &exitError{code: ExitUsage, err: err}
	}
	cert, err := loadCertificate(cfg, e, log, now())
	if err != nil {
		return &exitError{code: ExitUsage, err: err}
	}

	opts := app.DefaultServerOptions()
	opts.MaxBodyBytes, opts.MaxHeaderBytes = cfg.HTTP.MaxBodyBytes, cfg.HTTP.MaxHeaderBytes
	opts.ReadHeaderTimeout, opts.ReadTimeout = cfg.HTTP.ReadHeaderTimeout, cfg.HTTP.ReadTimeout
	opts.WriteTimeout, opts.IdleTimeout, opts.ShutdownTimeout = cfg.HTTP.WriteTimeout, cfg.HTTP.IdleTimeout, cfg.HTTP.ShutdownTimeout
	opts.MetricsPublic = cfg.MetricsPublic
	var pushers []audit.Pusher
	if cfg.Audit.CheckpointFile != "" {
		pushers = append(pushers, audit.FilePusher{Path: cfg.Audit.CheckpointFile})
	}
	if cfg.Audit.CheckpointWebhook != "" {
		pushers = append(pushers, audit.WebhookPusher{URL: cfg.Audit.CheckpointWebhook, Client: &http.Client{Timeout: 10 * time.Second}})
	}
	idOpts, err := identityOptions(cfg.Identity, log)
	if err != nil {
		return &exitError{code: ExitUsage, err: err}
	}
	node, err := app.New(ctx, app.Options{Store: st, Log: log, Now: now, Version: Version, KeyFile: keyFile, Server: opts,
		CheckpointEvery: cfg.Audit.CheckpointInterval, CheckpointPushers: pushers, Identity: idOpts})
	if err != nil {
		return &exitError{code: ExitConflict, err: err}
	}
	defer node.Close()
	if cfg.Dev {
		if err := devInit(ctx, node.Sys, cfg, log); err != nil {
			return err
		}
	}
	sysSvc, srv := node.Sys, node.Server
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return &exitError{code: ExitUnavailable, err: fmt.Errorf("cannot listen on %s: %w", cfg.Listen, err)}
	}
	status, _ := sysSvc.Status(ctx)
	log.Info("custodia listening", "addr", "https://"+ln.Addr().String(), "engine", st.Engine(), "version", Version,
		"initialized", status.Initialized, "sealed", status.Sealed)
	fmt.Fprintf(e.stderr, "Listening on https://%s\n", ln.Addr())
	switch {
	case !status.Initialized:
		fmt.Fprintln(e.stderr, "Not initialized: run \"custodia operator init\".")
	case status.Sealed:
		fmt.Fprintln(e.stderr, "Sealed: run \"custodia operator unseal\" with enough shares.")
	}
	if err := srv.Serve(ctx, ln, server.TLSConfig(cert)); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// devInit initializes a --dev installation on its first start and leaves the
// operator token in a file beside the dev key.
func devInit(ctx context.Context, s *sys.Service, cfg *config.Config, log *slog.Logger) error {
	st, err := s.Status(ctx)
	if err != nil || st.Initialized {
		return err
	}
	res, err := s.Init(ctx, sys.InitRequest{})
	if err != nil {
		return err
	}
	path := filepath.Join(cfg.DataDir, devTokenFile)
	if err := os.WriteFile(path, []byte(string(res.OperatorToken)+"\n"), 0o600); err != nil {
		return err
	}
	log.Warn("DEVELOPMENT MODE: initialized; the operator token is in a file", "token_file", path)
	return nil
}
