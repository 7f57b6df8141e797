package sso_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/sso"
	"github.com/custodia-project/custodia/internal/sso/ssotest"
)

func TestConfigValidate(t *testing.T) {
	valid := func() sso.Config {
		return sso.Config{
			Issuer:       "https://idp.example.com/realms/acme",
			ClientID:     "custodia",
			ClientSecret: keys.Secret("s3cret"),
			RedirectURL:  "https://vault.example.com/sso/callback",
		}
	}
	tests := map[string]func(*sso.Config){
		"ok/https":                     func(*sso.Config) {},
		"ok/loopback http":             func(c *sso.Config) { c.Issuer, c.RedirectURL = "http://127.0.0.1:5556", "http://localhost:8080/cb" },
		"ok/loopback IPv6":             func(c *sso.Config) { c.Issuer = "http://[::1]:5556/dex" },
		"ok/public client":             func(c *sso.Config) { c.ClientSecret = nil },
		"ok/own scopes":                func(c *sso.Config) { c.Scopes = []string{"openid", "email", "groups"} },
		"fail/http issuer":             func(c *sso.Config) { c.Issuer = "http://idp.example.com" },
		"fail/http on a private IP":    func(c *sso.Config) { c.Issuer = "http://10.0.0.1" },
		"fail/relative issuer":         func(c *sso.Config) { c.Issuer = "/realms/acme" },
		"fail/empty issuer":            func(c *sso.Config) { c.Issuer = "" },
		"fail/issuer with query":       func(c *sso.Config) { c.Issuer = "https://idp.example.com/?tenant=a" },
		"fail/issuer with fragment":    func(c *sso.Config) { c.Issuer = "https://idp.example.com/#a" },
		"fail/issuer with credentials": func(c *sso.Config) { c.Issuer = "https://u:p@idp.example.com" },
		"fail/issuer other scheme":     func(c *sso.Config) { c.Issuer = "ftp://idp.example.com" },
		"fail/no client ID":            func(c *sso.Config) { c.ClientID = "" },
		"fail/control in client ID":    func(c *sso.Config) { c.ClientID = "a\nb" },
		"fail/relative redirect":       func(c *sso.Config) { c.RedirectURL = "/sso/callback" },
		"fail/http redirect":           func(c *sso.Config) { c.RedirectURL = "http://vault.example.com/cb" },
		"fail/scopes without openid":   func(c *sso.Config) { c.Scopes = []string{"email"} },
		"fail/scope with space":        func(c *sso.Config) { c.Scopes = []string{"openid", "a b"} },
		"fail/empty scope":             func(c *sso.Config) { c.Scopes = []string{"openid", ""} },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			c := valid()
			mutate(&c)
			err := c.Validate()
			if strings.HasPrefix(name, "ok/") {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			f := wantFault(t, err, sso.CodeConfigInvalid)
			if f.Kind != fault.Invalid {
				t.Errorf("kind = %v, want Invalid", f.Kind)
			}
		})
	}
}

// discoveryServer serves a discovery document built by doc from its own URL.
func discoveryServer(t *testing.T, doc func(issuer string) any) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc(srv.URL))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func metadata(issuer string) map[string]any {
	return map[string]any{
		"issuer":                 issuer,
		"authorization_endpoint": issuer + "/authorize",
		"token_endpoint":         issuer + "/token",
		"jwks_uri":               issuer + "/keys",
	}
}

func TestNewProvider(t *testing.T) {
	op := ssotest.Start(t, redirectURL)
	ctx := testContext(t)

	t.Run("ok", func(t *testing.T) {
		p, err := sso.NewProvider(ctx, op.Config(), op.HTTPClient)
		if err != nil {
			t.Fatal(err)
		}
		if p.Issuer() != op.Issuer {
			t.Errorf("Issuer() = %q, want %q", p.Issuer(), op.Issuer)
		}
	})

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "https://" + closed.Addr().String()
	closed.Close()

	with := func(mutate func(map[string]any)) func(string) any {
		return func(issuer string) any {
			m := metadata(issuer)
			mutate(m)
			return m
		}
	}
	tests := []struct {
		name     string
		cfg      func() sso.Config
		wantCode string
		wantKind fault.Kind
	}{
		{"fail/invalid config", func() sso.Config { c := op.Config(); c.ClientID = ""; return c }, sso.CodeConfigInvalid, fault.Invalid},
		{"fail/unreachable", func() sso.Config { c := op.Config(); c.Issuer = closedURL; return c }, sso.CodeUnavailable, fault.Unavailable},
		{"fail/untrusted certificate", func() sso.Config { return op.Config() }, sso.CodeUnavailable, fault.Unavailable},
		{"fail/issuer differs from discovery", func() sso.Config { c := op.Config(); c.Issuer += "/"; return c }, sso.CodeIssuerMismatch, fault.Invalid},
		{"fail/oversized discovery", func() sso.Config {
			srv := discoveryServer(t, with(func(m map[string]any) { m["padding"] = strings.Repeat("x", 2<<20) }))
			c := op.Config()
			c.Issuer = srv.URL
			return c
		}, sso.CodeUnavailable, fault.Unavailable},
		{"fail/plain http token endpoint", func() sso.Config {
			srv := discoveryServer(t, with(func(m map[string]any) { m["token_endpoint"] = "http://idp.example.com/token" }))
			c := op.Config()
			c.Issuer = srv.URL
			return c
		}, sso.CodeConfigInvalid, fault.Invalid},
		{"fail/no S256", func() sso.Config {
			srv := discoveryServer(t, with(func(m map[string]any) { m["code_challenge_methods_supported"] = []string{"plain"} }))
			c := op.Config()
			c.Issuer = srv.URL
			return c
		}, sso.CodeConfigInvalid, fault.Invalid},
		{"fail/no secret method", func() sso.Config {
			srv := discoveryServer(t, with(func(m map[string]any) { m["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"} }))
			c := op.Config()
			c.Issuer = srv.URL
			return c
		}, sso.CodeConfigInvalid, fault.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := op.HTTPClient
			if tc.name == "fail/untrusted certificate" {
				client = &http.Client{}
			}
			_, err := sso.NewProvider(ctx, tc.cfg(), client)
			f := wantFault(t, err, tc.wantCode)
			if f.Kind != tc.wantKind {
				t.Errorf("kind = %v, want %v", f.Kind, tc.wantKind)
			}
		})
	}
}

func TestCache(t *testing.T) {
	op := ssotest.Start(t, redirectURL)
	ctx := testContext(t)
	var calls pathCounter
	c := sso.NewCache(calls.client(op.HTTPClient), time.Hour)
	discoveries := func() int { return calls.get("/.well-known/openid-configuration") }
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	get := func(t *testing.T, tenant string, cfg sso.Config, now time.Time, wantDiscoveries int) *sso.Provider {
		t.Helper()
		p, err := c.Provider(ctx, tenant, cfg, now)
		if err != nil {
			t.Fatalf("Provider: %v", err)
		}
		if got := discoveries(); got != wantDiscoveries {
			t.Fatalf("discoveries = %d, want %d", got, wantDiscoveries)
		}
		return p
	}
	first := get(t, "t1", op.Config(), t0, 1)
	if again := get(t, "t1", op.Config(), t0.Add(59*time.Minute), 1); again != first {
		t.Error("a fresh entry was not reused")
	}
	expired := get(t, "t1", op.Config(), t0.Add(time.Hour), 2)
	if expired == first {
		t.Error("an expired entry was reused")
	}
	rotated := op.Config()
	rotated.ClientSecret = keys.Secret("rotated")
	if p := get(t, "t1", rotated, t0.Add(time.Hour), 3); p == expired {
		t.Error("an entry was reused after the secret changed")
	}
	scoped := op.Config()
	scoped.Scopes = []string{"openid", "email"}
	get(t, "t1", scoped, t0.Add(time.Hour), 4)
	get(t, "t2", scoped, t0.Add(time.Hour), 5)
	get(t, "t1", scoped, t0.Add(time.Hour), 5)
	c.Forget("t1")
	get(t, "t1", scoped, t0.Add(time.Hour), 6)
	get(t, "t2", scoped, t0.Add(time.Hour), 6)

	bad := op.Config()
	bad.Issuer += "/"
	if _, err := c.Provider(ctx, "t3", bad, t0); err == nil {
		t.Fatal("a failing discovery succeeded")
	}
	if _, err := c.Provider(ctx, "t3", bad, t0); err == nil {
		t.Fatal("a failed discovery was cached")
	}
	if got := discoveries(); got != 8 {
		t.Errorf("discoveries = %d, want 8: a failure must not be cached", got)
	}
}

func TestRedaction(t *testing.T) {
	op := ssotest.Start(t, redirectURL)
	cfg := op.Config()
	p := newProvider(t, cfg, op.HTTPClient)
	_, pending := p.Start(time.Now())

	var out bytes.Buffer
	for _, v := range []any{cfg, &cfg, p, pending, &pending} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		slog.New(h).Info("sso", "config", cfg, "provider", p, "pending", pending)
	}
	for name, secret := range map[string]string{
		"client secret": op.ClientSecret, "state": pending.State, "nonce": pending.Nonce, "verifier": pending.Verifier,
	} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("the %s leaked into output:\n%s", name, out.String())
		}
	}
	if !strings.Contains(out.String(), op.Issuer) {
		t.Errorf("output lacks the issuer, so the test printed nothing useful:\n%s", out.String())
	}
}
