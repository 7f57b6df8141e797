package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/server"
)

func allRoutes() []api.Route {
	// The handlers are never called here: the table's declarations are.
	return api.Routes(&api.Deps{Version: "test"})
}

// Every route declares a known permission; a route added without one fails
// here and also makes server.New refuse to start.
func TestEveryRouteDeclaresPermission(t *testing.T) {
	seen := map[string]bool{}
	for _, rt := range allRoutes() {
		key := rt.Method + " " + rt.Pattern
		if seen[key] {
			t.Errorf("duplicate route %s", key)
		}
		seen[key] = true
		if err := server.CheckRoute(rt); err != nil {
			t.Error(err)
		}
		if rt.Summary == "" || rt.Tag == "" {
			t.Errorf("%s has no summary or tag for the OpenAPI document", key)
		}
		if strings.HasPrefix(rt.Pattern, "/api/v1/tenants/") && rt.TenantParam == "" {
			t.Errorf("%s addresses a tenant but names no tenant parameter for authorization", key)
		}
	}
	bad := api.Route{Method: "GET", Pattern: "/x", Handler: func(http.ResponseWriter, *http.Request) error { return nil }}
	if err := server.CheckRoute(bad); err == nil {
		t.Error("a route without a permission passed CheckRoute")
	}
	_, err := server.New(server.Options{}, server.Deps{Registry: prometheus.NewRegistry()}, append(allRoutesWithHandlers(), bad))
	if err == nil {
		t.Error("server.New mounted a route without a permission")
	}
}

func allRoutesWithHandlers() []api.Route {
	rs := allRoutes()
	for i := range rs {
		if rs[i].Handler == nil {
			rs[i].Handler = func(http.ResponseWriter, *http.Request) error { return nil }
		}
	}
	return rs
}

// The OpenAPI document is valid OpenAPI and lists exactly the route table.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	rs := allRoutes()
	doc := api.OpenAPI(rs, "test")
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(b)
	if err != nil {
		t.Fatalf("OpenAPI document does not load: %v", err)
	}
	if err := spec.Validate(context.Background(), openapi3.EnableSchemaFormatValidation()); err != nil {
		t.Fatalf("OpenAPI document is invalid: %v", err)
	}
	n := 0
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			n++
			found := false
			for _, rt := range rs {
				if rt.Method == method && strings.ReplaceAll(rt.Pattern, "...", "") == path {
					found = true
					if op.Extensions["x-permission"] != string(rt.Perm) {
						t.Errorf("%s %s: document says permission %v, table says %s", method, path, op.Extensions["x-permission"], rt.Perm)
					}
				}
			}
			if !found {
				t.Errorf("document has %s %s, which the route table lacks", method, path)
			}
		}
	}
	// The Vault-compatible routes are Vault's API, not in this document.
	rs = slices.DeleteFunc(rs, func(rt api.Route) bool { return rt.Vault })
	if n != len(rs) {
		t.Errorf("document has %d operations, route table %d (without the Vault-compatible routes)", n, len(rs))
	}
	for _, rt := range rs {
		if rt.Perm == authz.Public {
			continue
		}
		op := spec.Paths.Find(rt.Pattern).GetOperation(rt.Method)
		if op.Security != nil && len(*op.Security) == 0 {
			t.Errorf("%s %s needs %s but is documented as public", rt.Method, rt.Pattern, rt.Perm)
		}
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	c, _, err := server.LoadOrCreateSelfSigned(t.TempDir(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSPolicy(t *testing.T) {
	cert := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{MaxBodyBytes: 1024, ShutdownTimeout: time.Second, ReadHeaderTimeout: time.Second},
		server.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(), Sealed: func() bool { return false }},
		[]api.Route{{Method: "GET", Pattern: "/ok", Perm: authz.Public, Summary: "x", Tag: "x",
			Handler: func(w http.ResponseWriter, r *http.Request) error {
				api.WriteJSON(w, 200, map[string]string{"ok": "yes"})
				return nil
			}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, server.TLSConfig(cert)) }()
	defer func() { cancel(); <-done }()
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	dial := func(cfg *tls.Config) error {
		cfg.RootCAs = pool
		cfg.ServerName = "127.0.0.1"
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(&tls.Config{MinVersion: tls.VersionTLS13}); err != nil {
		t.Errorf("TLS 1.3: %v", err)
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, MinVersion: tls.VersionTLS12}); err != nil {
		t.Errorf("TLS 1.2 with default suites: %v", err)
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	// Suites without forward secrecy or with CBC are refused.
	for _, suite := range []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA} {
		if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}}); err == nil {
			t.Errorf("weak suite %s accepted", tls.CipherSuiteName(suite))
		}
	}
}

// SIGTERM (a cancelled context) lets in-flight requests finish and refuses
// new connections.
func TestGracefulShutdown(t *testing.T) {
	cert := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	srv, err := server.New(server.Options{MaxBodyBytes: 1024, ShutdownTimeout: 10 * time.Second, ReadHeaderTimeout: time.Second},
		server.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(), Sealed: func() bool { return false }},
		[]api.Route{{Method: "GET", Pattern: "/slow", Perm: authz.Public, Summary: "x", Tag: "x",
			Handler: func(w http.ResponseWriter, r *http.Request) error {
				close(entered)
				<-release
				api.WriteJSON(w, 200, map[string]string{"finished": "yes"})
				return nil
			}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, server.TLSConfig(cert)) }()
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		res, err := client.Get("https://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- result{body: string(b)}
	}()
	<-entered
	cancel()
	// The listener closes promptly while the request is still running.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 200*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections during shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	r := <-got
	if r.err != nil || !strings.Contains(r.body, "finished") {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}
