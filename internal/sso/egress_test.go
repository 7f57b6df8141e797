package sso_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/sso"
	"github.com/custodia-project/custodia/internal/sso/ssotest"
)

// TestPublicOnly: the egress guard refuses what a tenant admin's issuer (or
// a provider's discovery document) could aim at inside the operator's
// network, and discovery through it says why.
func TestPublicOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c := sso.NewPublicClient(5 * time.Second)
	if _, err := c.Get(srv.URL); !errors.Is(err, sso.ErrPrivateAddress) {
		t.Fatalf("GET of a loopback server: %v, want ErrPrivateAddress", err)
	}
	// Names are checked after resolution.
	if _, err := c.Get("http://localhost:" + srv.URL[len("http://127.0.0.1:"):]); !errors.Is(err, sso.ErrPrivateAddress) {
		t.Fatalf("GET of localhost: %v, want ErrPrivateAddress", err)
	}
	for _, addr := range []string{"10.1.2.3:443", "172.16.0.1:443", "192.168.1.1:443", "169.254.169.254:80", "100.64.0.1:443",
		"0.0.0.0:443", "[::1]:443", "[fe80::1]:443", "[fd00::1]:443", "[::ffff:10.0.0.1]:443", "[64:ff9b::a00:1]:443", "224.0.0.1:443"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Transport.(*http.Transport).DialContext(ctx, "tcp", addr)
		cancel()
		if !errors.Is(err, sso.ErrPrivateAddress) {
			t.Errorf("dial %s: %v, want ErrPrivateAddress", addr, err)
		}
	}

	op := ssotest.Start(t, "https://vault.example.com/api/v1/auth/sso/callback")
	tr := op.HTTPClient.Transport.(*http.Transport).Clone()
	guarded := &http.Client{Transport: sso.PublicOnly(tr)}
	_, err := sso.NewProvider(context.Background(), op.Config(), guarded)
	if f, ok := fault.As(err); !ok || f.Code != sso.CodePrivateAddress {
		t.Fatalf("discovery of a loopback provider through the guard: %v, want %s", err, sso.CodePrivateAddress)
	}
	if _, err := sso.NewProvider(context.Background(), op.Config(), op.HTTPClient); err != nil {
		t.Fatalf("discovery without the guard: %v", err)
	}
}
