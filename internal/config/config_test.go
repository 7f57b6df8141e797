package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/custodia-project/custodia/internal/config"
)

func parse(t *testing.T, args []string, env map[string]string) (*config.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	c := config.Register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := config.Resolve(fs, func(k string) string { return env[k] }); err != nil {
		return nil, err
	}
	return c, c.Validate()
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.toml")
	os.WriteFile(file, []byte("data = \"/from/file\"\nlisten = \"127.0.0.1:1\"\nread_timeout = \"7s\"\nmax_body_bytes = 2048\n"), 0o600)
	c, err := parse(t, []string{"--config", file, "--listen", "127.0.0.1:3"}, map[string]string{"CUSTODIA_LISTEN": "127.0.0.1:2", "CUSTODIA_DATA": "/from/env"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:3" || c.DataDir != "/from/env" || c.HTTP.ReadTimeout != 7*time.Second || c.HTTP.MaxBodyBytes != 2048 {
		t.Fatalf("precedence wrong: %+v", c)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "u.toml")
	os.WriteFile(unknown, []byte("data = \"x\"\nlisen = \"typo\"\n"), 0o600)
	broken := filepath.Join(dir, "b.toml")
	os.WriteFile(broken, []byte("data = \n"), 0o600)
	notPEM := filepath.Join(dir, "ca.txt")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600)
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"fail/no data":            {nil, nil, "--data is required"},
		"fail/bad listen":         {[]string{"--data", "d", "--listen", "nope"}, nil, "--listen"},
		"fail/half tls":           {[]string{"--data", "d", "--tls-cert", "c"}, nil, "go together"},
		"fail/dev and key file":   {[]string{"--data", "d", "--dev", "--root-key-file", "k"}, nil, "exclude"},
		"fail/bad env duration":   {[]string{"--data", "d"}, map[string]string{"CUSTODIA_READ_TIMEOUT": "soon"}, "CUSTODIA_READ_TIMEOUT"},
		"fail/unknown file key":   {[]string{"--config", unknown}, nil, `unknown setting "lisen"`},
		"fail/broken file":        {[]string{"--config", broken}, nil, "config file"},
		"fail/missing file":       {[]string{"--config", filepath.Join(dir, "none.toml")}, nil, "config file"},
		"fail/mysql url":          {[]string{"--database-url", "mysql://x", "--tls-cert", "c", "--tls-key", "k"}, nil, "postgres://"},
		"fail/tiny body cap":      {[]string{"--data", "d", "--max-body-bytes", "10"}, nil, "--max-body-bytes"},
		"fail/bad log level":      {[]string{"--data", "d", "--log-level", "loud"}, nil, "--log-level"},
		"fail/pg without tls":     {[]string{"--database-url", "postgres://x"}, nil, "self-signed"},
		"fail/replica without pg": {[]string{"--data", "d", "--database-replica-url", "postgres://r"}, nil, "needs --database-url"},
		"fail/weak argon2":        {[]string{"--data", "d", "--argon2-memory", "8192"}, nil, "--argon2-memory"},
		"fail/one argon2 pass":    {[]string{"--data", "d", "--argon2-time", "1"}, nil, "--argon2-time"},
		"fail/origin without rp":  {[]string{"--data", "d", "--webauthn-origin", "https://v.example"}, nil, "needs --webauthn-rp-id"},
		"fail/http origin":        {[]string{"--data", "d", "--webauthn-rp-id", "v.example", "--webauthn-origin", "http://v.example"}, nil, "https://"},
		"fail/lock after 1":       {[]string{"--data", "d", "--signin-lock-after", "1"}, nil, "--signin-lock-after"},
		"fail/missing sso ca":     {[]string{"--data", "d", "--sso-ca-file", filepath.Join(dir, "none.pem")}, nil, "--sso-ca-file"},
		"fail/sso ca not pem":     {[]string{"--data", "d"}, map[string]string{"CUSTODIA_SSO_CA_FILE": notPEM}, "holds no PEM certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, tc.args, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestDefaultsValid(t *testing.T) {
	c, err := parse(t, []string{"--data", t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8443" || c.HTTP.MaxBodyBytes != 1<<20 || c.Identity.ArgonMemory != 19456 || c.Identity.ArgonTime != 2 ||
		c.Identity.SigninLockAfter != 10 || c.Identity.WebAuthnRPID != "" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestSSORoots(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Private IdP CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "idp-ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parse(t, []string{"--data", t.TempDir(), "--sso-ca-file", file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := c.Identity.SSORoots()
	if err != nil || pool == nil {
		t.Fatalf("SSORoots = %v, %v", pool, err)
	}
	cert, _ := x509.ParseCertificate(der)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("the pool does not trust the file's CA: %v", err)
	}
	if pool, err := (config.Identity{}).SSORoots(); pool != nil || err != nil {
		t.Errorf("without a file: %v, %v; want nil, nil (system roots)", pool, err)
	}
}
