// Package config is the only reader of flags, CUSTODIA_* environment
// variables and the config file. One table of settings drives all three, so
// every setting has a flag, a variable and a file key with the same name.
// Precedence: flag, then environment, then file, then default.
package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"
)

// Config is the server's configuration.
type Config struct {
	ConfigFile  string
	DataDir     string
	DatabaseURL string
	ReplicaURLs []string
	Listen      string
	TLSCert     string
	TLSKey      string
	RootKeyFile string
	Dev         bool
	LogLevel    string
	LogFormat   string
	HTTP        HTTP
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool
	Audit         Audit
	Identity      Identity
}

// Identity configures password hashing, passkeys and sign-in protection.
type Identity struct {
	ArgonMemory     uint32 // KiB
	ArgonTime       uint32
	ArgonThreads    uint8
	HashConcurrency int
	// WebAuthnRPID is the passkey relying party ID (a registrable domain
	// of the origins); empty turns passkeys off.
	WebAuthnRPID    string
	WebAuthnOrigins []string
	SigninPerSource int
	SigninLockAfter int
	SigninLockFor   time.Duration
	// SSOCAFile is a PEM bundle trusted, besides the system roots, when
	// reaching OpenID providers (a private provider's CA).
	SSOCAFile string
	// SSOAllowPrivate lets OpenID providers be reached on private, local
	// and link-local addresses (a provider on the operator's own network);
	// off, a tenant admin's issuer cannot point Custodia at them.
	SSOAllowPrivate bool
}

// SSORoots returns the certificate pool for reaching OpenID providers: the
// system roots plus the certificates of SSOCAFile. Nil without a file, which
// means the system roots alone.
func (id Identity) SSORoots() (*x509.CertPool, error) {
	if id.SSOCAFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(id.SSOCAFile)
	if err != nil {
		return nil, fmt.Errorf("--sso-ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		// No system pool (some platforms): the file alone is still useful.
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--sso-ca-file %s holds no PEM certificate", id.SSOCAFile)
	}
	return pool, nil
}

// Audit configures the tamper-evident log's checkpoints.
type Audit struct {
	CheckpointInterval time.Duration
	CheckpointFile     string
	CheckpointWebhook  string
}

// HTTP holds the edge's limits.
type HTTP struct {
	MaxBodyBytes      int64
	MaxHeaderBytes    int
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
}

// EnvPrefix starts every environment variable.
const EnvPrefix = "CUSTODIA_"

// Register adds the server's flags to fs and returns the Config they fill.
func Register(fs *pflag.FlagSet) *Config {
	c := &Config{}
	fs.StringVar(&c.ConfigFile, "config", "", "config file (TOML; keys are the flag names with _ for -)")
	fs.StringVar(&c.DataDir, "data", "", "data directory: the SQLite database, generated TLS certificate and (with --dev) the dev root key")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL URL (postgres://...) instead of SQLite")
	fs.StringSliceVar(&c.ReplicaURLs, "database-replica-url", nil, "PostgreSQL read replica URL (repeatable)")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8443", "address to serve HTTPS on")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate chain (PEM); without it a self-signed certificate is generated in the data directory")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key (PEM)")
	fs.StringVar(&c.RootKeyFile, "root-key-file", "", "root key file on storage apart from the data, instead of Shamir unseal shares")
	fs.BoolVar(&c.Dev, "dev", false, "DEVELOPMENT ONLY: keep a generated root key inside the data directory and initialize automatically")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.Int64Var(&c.HTTP.MaxBodyBytes, "max-body-bytes", 1<<20, "largest request body accepted")
	fs.IntVar(&c.HTTP.MaxHeaderBytes, "max-header-bytes", 64<<10, "largest request header block accepted")
	fs.DurationVar(&c.HTTP.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "time allowed to read request headers")
	fs.DurationVar(&c.HTTP.ReadTimeout, "read-timeout", 30*time.Second, "time allowed to read a whole request")
	fs.DurationVar(&c.HTTP.WriteTimeout, "write-timeout", 60*time.Second, "time allowed to write a response")
	fs.DurationVar(&c.HTTP.IdleTimeout, "idle-timeout", 120*time.Second, "how long an idle keep-alive connection stays open")
	fs.DurationVar(&c.HTTP.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown waits for in-flight requests")
	fs.BoolVar(&c.MetricsPublic, "metrics-public", false, "serve /metrics without an operator token (logged as a warning)")
	fs.DurationVar(&c.Audit.CheckpointInterval, "audit-checkpoint-interval", time.Second, "how often grown audit logs get a signed checkpoint")
	fs.StringVar(&c.Audit.CheckpointFile, "audit-checkpoint-file", "", "append every audit checkpoint to this file (keep it off the server)")
	fs.StringVar(&c.Audit.CheckpointWebhook, "audit-checkpoint-webhook", "", "POST every audit checkpoint to this https:// URL")
	fs.Uint32Var(&c.Identity.ArgonMemory, "argon2-memory", 19*1024, "argon2id memory per password hash, in KiB (at least 19456, OWASP's minimum)")
	fs.Uint32Var(&c.Identity.ArgonTime, "argon2-time", 2, "argon2id passes over memory (at least 2)")
	fs.Uint8Var(&c.Identity.ArgonThreads, "argon2-threads", 1, "argon2id lanes per hash")
	fs.IntVar(&c.Identity.HashConcurrency, "hash-concurrency", 0, "password hashes computed at once; more wait in a bounded queue (0: 64 MiB divided by --argon2-memory)")
	fs.StringVar(&c.Identity.WebAuthnRPID, "webauthn-rp-id", "", "passkey relying party ID, the domain people reach Custodia on (e.g. vault.example.com); empty turns passkeys off")
	fs.StringSliceVar(&c.Identity.WebAuthnOrigins, "webauthn-origin", nil, "origin browsers use for passkeys, e.g. https://vault.example.com (repeatable; default https://<rp-id>)")
	fs.IntVar(&c.Identity.SigninPerSource, "signin-per-source", 20, "sign-in attempts one source address may make per minute")
	fs.IntVar(&c.Identity.SigninLockAfter, "signin-lock-after", 10, "failed sign-ins in a row that lock an account")
	fs.DurationVar(&c.Identity.SigninLockFor, "signin-lock-for", 15*time.Minute, "how long a locked account stays locked")
	fs.StringVar(&c.Identity.SSOCAFile, "sso-ca-file", "", "PEM bundle of CA certificates trusted, besides the system roots, for reaching OpenID providers")
	fs.BoolVar(&c.Identity.SSOAllowPrivate, "sso-allow-private-networks", false, "let tenants' OpenID providers be on private, loopback or link-local addresses (logged as a warning)")
	return c
}

// EnvName is the environment variable of a flag.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Resolve fills every flag not given on the command line from the
// environment, then from the config file. It reports unknown file keys and
// unparsable values by name.
func Resolve(fs *pflag.FlagSet, getenv func(string) string) error {
	var errs []error
	// The config file's own location may come from the environment.
	if f := fs.Lookup("config"); f != nil && !f.Changed {
		if v := getenv(EnvName("config")); v != "" {
			_ = fs.Set("config", v)
		}
	}
	file := map[string]any{}
	if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
		path := f.Value.String()
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if _, err := toml.Decode(string(b), &file); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
	}
	seen := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) {
		key := strings.ReplaceAll(f.Name, "-", "_")
		seen[key] = true
		if f.Changed || f.Name == "config" {
			return
		}
		env := EnvName(f.Name)
		if v, ok := lookup(getenv, env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %v", env, v, err))
			}
			return
		}
		if v, ok := file[key]; ok {
			if err := fs.Set(f.Name, fileValue(v)); err != nil {
				errs = append(errs, fmt.Errorf("config file: %s: %v", key, err))
			}
		}
	})
	var unknown []string
	for k := range file {
		if !seen[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs = append(errs, fmt.Errorf("config file: unknown setting %q", k))
	}
	return errors.Join(errs...)
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func fileValue(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// Validate checks the whole configuration and says what to fix.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.DataDir == "" && c.DatabaseURL == "" {
		bad("--data is required (or --database-url for PostgreSQL)")
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		bad("--database-url must be a postgres:// URL")
	}
	for _, u := range c.ReplicaURLs {
		if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			bad("--database-replica-url must be a postgres:// URL")
		}
	}
	if len(c.ReplicaURLs) > 0 && c.DatabaseURL == "" {
		bad("--database-replica-url needs --database-url")
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		bad("--listen %q must be host:port, for example 127.0.0.1:8443", c.Listen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("--tls-cert and --tls-key go together")
	}
	if c.TLSCert == "" && c.DataDir == "" {
		bad("without --tls-cert/--tls-key a self-signed certificate is generated in --data; give one or the other")
	}
	if c.Dev && c.RootKeyFile != "" {
		bad("--dev and --root-key-file exclude each other")
	}
	if c.Dev && c.DataDir == "" {
		bad("--dev keeps its key in --data; give --data")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("--log-level must be debug, info, warn or error")
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("--log-format must be json or text")
	}
	if c.HTTP.MaxBodyBytes < 1<<10 || c.HTTP.MaxBodyBytes > 1<<30 {
		bad("--max-body-bytes must be between 1024 and 1073741824")
	}
	if c.HTTP.MaxHeaderBytes < 4<<10 || c.HTTP.MaxHeaderBytes > 1<<20 {
		bad("--max-header-bytes must be between 4096 and 1048576")
	}
	for name, d := range map[string]time.Duration{
		"read-header-timeout": c.HTTP.ReadHeaderTimeout, "read-timeout": c.HTTP.ReadTimeout,
		"write-timeout": c.HTTP.WriteTimeout, "idle-timeout": c.HTTP.IdleTimeout, "shutdown-timeout": c.HTTP.ShutdownTimeout,
	} {
		if d <= 0 || d > time.Hour {
			bad("--%s must be positive and at most 1h", name)
		}
	}
	if c.Audit.CheckpointInterval < 100*time.Millisecond || c.Audit.CheckpointInterval > time.Hour {
		bad("--audit-checkpoint-interval must be between 100ms and 1h")
	}
	if w := c.Audit.CheckpointWebhook; w != "" && !strings.HasPrefix(w, "https://") {
		bad("--audit-checkpoint-webhook must be an https:// URL")
	}
	id := c.Identity
	if id.ArgonMemory < 19*1024 || id.ArgonMemory > 1<<20 {
		bad("--argon2-memory must be between 19456 and 1048576 KiB")
	}
	if id.ArgonTime < 2 || id.ArgonTime > 16 {
		bad("--argon2-time must be between 2 and 16")
	}
	if id.ArgonThreads < 1 || id.ArgonThreads > 16 {
		bad("--argon2-threads must be between 1 and 16")
	}
	if id.HashConcurrency < 0 || id.HashConcurrency > 1024 {
		bad("--hash-concurrency must be between 0 and 1024")
	}
	if len(id.WebAuthnOrigins) > 0 && id.WebAuthnRPID == "" {
		bad("--webauthn-origin needs --webauthn-rp-id")
	}
	for _, o := range id.WebAuthnOrigins {
		if !strings.HasPrefix(o, "https://") && !strings.HasPrefix(o, "http://localhost") {
			bad("--webauthn-origin %q must be an https:// origin", o)
		}
	}
	if id.SigninPerSource < 1 || id.SigninPerSource > 10000 {
		bad("--signin-per-source must be between 1 and 10000")
	}
	if id.SigninLockAfter < 3 || id.SigninLockAfter > 1000 {
		bad("--signin-lock-after must be between 3 and 1000")
	}
	if id.SigninLockFor < time.Minute || id.SigninLockFor > 24*time.Hour {
		bad("--signin-lock-for must be between 1m and 24h")
	}
	if _, err := id.SSORoots(); err != nil {
		bad("%v", err)
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  %w", joinIndented(errs))
	}
	return nil
}

func joinIndented(errs []error) error {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Error()
	}
	return errors.New(strings.Join(parts, "\n  "))
}

// Client is the configuration of client subcommands.
type Client struct {
	Addr               string
	Token              string
	CACert             string
	InsecureSkipVerify bool
	Output             string
}

// RegisterClient adds the client flags to fs.
func RegisterClient(fs *pflag.FlagSet) *Client {
	c := &Client{}
	fs.StringVar(&c.Addr, "addr", "https://127.0.0.1:8443", "server address")
	fs.StringVar(&c.Token, "token", "", "bearer token (prefer the CUSTODIA_TOKEN variable: arguments are visible to other users)")
	fs.StringVar(&c.CACert, "ca-cert", "", "PEM file of the server's CA or self-signed certificate (DATA/tls/cert.pem)")
	fs.BoolVar(&c.InsecureSkipVerify, "insecure-skip-verify", false, "do not verify the server's certificate (testing only)")
	fs.StringVarP(&c.Output, "output", "o", "text", "output format: text or json")
	return c
}

// Validate checks the client configuration.
func (c *Client) Validate() error {
	if c.Output != "text" && c.Output != "json" {
		return fmt.Errorf("--output must be text or json")
	}
	if !strings.HasPrefix(c.Addr, "https://") {
		return fmt.Errorf("--addr %q must start with https://", c.Addr)
	}
	return nil
}
