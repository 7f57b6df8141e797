package sso_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
	"github.com/custodia-project/custodia/internal/sso"
	"github.com/custodia-project/custodia/internal/sso/ssotest"
)

const redirectURL = "https://custodia.test/sso/callback"

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newProvider(t *testing.T, cfg sso.Config, client *http.Client) *sso.Provider {
	t.Helper()
	p, err := sso.NewProvider(testContext(t), cfg, client)
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	return p
}

// flow is one sign-in driven through a provider's login page up to the
// redirect back to us.
type flow struct {
	pending     sso.Pending
	state, code string
}

func signIn(t *testing.T, op *ssotest.OP, p *sso.Provider, now time.Time, u ssotest.User) flow {
	t.Helper()
	authURL, pending := p.Start(now)
	cb := op.Login(t, op.Browser(), authURL, u.Username, u.Password)
	state, code, err := p.ParseCallback(cb.Query())
	if err != nil {
		t.Fatalf("ParseCallback(%s): %v", cb.Redacted(), err)
	}
	return flow{pending: pending, state: state, code: code}
}

func wantFault(t *testing.T, err error, code string) *fault.Error {
	t.Helper()
	f, ok := fault.As(err)
	if !ok {
		t.Fatalf("error %v is not a *fault.Error", err)
	}
	if f.Code != code {
		t.Fatalf("code = %q, want %q (error: %v)", f.Code, code, err)
	}
	return f
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// pathCounter counts requests by URL path.
type pathCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *pathCounter) client(base *http.Client) *http.Client {
	c.n = map[string]int{}
	out := *base
	out.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		c.mu.Lock()
		c.n[r.URL.Path]++
		c.mu.Unlock()
		return base.Transport.RoundTrip(r)
	})
	return &out
}

func (c *pathCounter) get(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

// rewriteClient changes the token request (the only POST) before sending it.
func rewriteClient(base *http.Client, fn func(*http.Request)) *http.Client {
	out := *base
	out.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost {
			r = r.Clone(r.Context())
			fn(r)
		}
		return base.Transport.RoundTrip(r)
	})
	return &out
}

func TestFinish(t *testing.T) {
	ctx := testContext(t)
	// userinfo: email and profile only at the user info endpoint, the
	// default for a code flow; idclaims: the same claims in the ID token.
	userinfoOP := ssotest.Start(t, redirectURL)
	idclaimsOP := ssotest.Start(t, redirectURL, ssotest.WithClaimsInIDToken())
	// other shares the default client's credentials with userinfoOP, and has
	// a second client, to hand out tokens from the wrong issuer or audience.
	otherOP := ssotest.Start(t, redirectURL,
		ssotest.WithClient(ssotest.ClientID, userinfoOP.ClientSecret),
		ssotest.WithClient("other-client", "other-secret"))

	var userinfoCalls, idclaimsCalls pathCounter
	userinfo := newProvider(t, userinfoOP.Config(), userinfoCalls.client(userinfoOP.HTTPClient))
	idclaims := newProvider(t, idclaimsOP.Config(), idclaimsCalls.client(idclaimsOP.HTTPClient))

	aliceAt := func(op *ssotest.OP) *sso.Identity {
		return &sso.Identity{
			Issuer:        op.Issuer,
			Subject:       ssotest.Alice.Subject(),
			Email:         "Alice@example.com",
			EmailVerified: true,
			Name:          ssotest.Alice.Name(),
		}
	}

	type result struct {
		id   *sso.Identity
		err  error
		flow flow // whose secrets must not appear in err
	}
	tests := []struct {
		name     string
		run      func(t *testing.T, now time.Time) result
		want     *sso.Identity
		wantCode string
		wantKind fault.Kind
		check    func(t *testing.T, err error)
	}{
		{
			name: "ok/claims from user info",
			run: func(t *testing.T, now time.Time) result {
				before := userinfoCalls.get("/userinfo")
				f := signIn(t, userinfoOP, userinfo, now, ssotest.Alice)
				id, err := userinfo.Finish(ctx, f.pending, now.Add(time.Minute), f.state, f.code)
				if got := userinfoCalls.get("/userinfo") - before; got != 1 {
					t.Errorf("user info requests = %d, want 1", got)
				}
				return result{id, err, f}
			},
			want: aliceAt(userinfoOP),
		},
		{
			name: "ok/claims from ID token",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, idclaimsOP, idclaims, now, ssotest.Alice)
				id, err := idclaims.Finish(ctx, f.pending, now, f.state, f.code)
				if got := idclaimsCalls.get("/userinfo"); got != 0 {
					t.Errorf("user info requests = %d, want 0: the ID token had the claims", got)
				}
				return result{id, err, f}
			},
			want: aliceAt(idclaimsOP),
		},
		{
			name: "ok/pending just before expiry",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, userinfoOP, userinfo, now, ssotest.Alice)
				id, err := userinfo.Finish(ctx, f.pending, now.Add(sso.PendingTTL), f.state, f.code)
				return result{id, err, f}
			},
			want: aliceAt(userinfoOP),
		},
		{
			name: "fail/state mismatch",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, userinfoOP, userinfo, now, ssotest.Alice)
				_, other := userinfo.Start(now)
				_, err := userinfo.Finish(ctx, f.pending, now, other.State, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeStateMismatch, wantKind: fault.Invalid,
		},
		{
			name: "fail/empty pending",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, userinfoOP, userinfo, now, ssotest.Alice)
				_, err := userinfo.Finish(ctx, sso.Pending{}, now, "", f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeStateMismatch, wantKind: fault.Invalid,
		},
		{
			name: "fail/pending started at another provider",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, idclaimsOP, idclaims, now, ssotest.Alice)
				_, err := userinfo.Finish(ctx, f.pending, now, f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeStateMismatch, wantKind: fault.Invalid,
		},
		{
			name: "fail/expired pending",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, userinfoOP, userinfo, now, ssotest.Alice)
				_, err := userinfo.Finish(ctx, f.pending, now.Add(sso.PendingTTL+time.Second), f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeExpired, wantKind: fault.Unauthenticated,
		},
		{
			name: "fail/pending from the future",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, userinfoOP, userinfo, now, ssotest.Alice)
				_, err := userinfo.Finish(ctx, f.pending, now.Add(-time.Hour), f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeExpired, wantKind: fault.Unauthenticated,
		},
		{
			name: "fail/ID token expired at the injected clock",
			run: func(t *testing.T, now time.Time) result {
				// The provider issues hour-long ID tokens on its real
				// clock; ours runs two hours ahead.
				later := now.Add(2 * time.Hour)
				f := signIn(t, userinfoOP, userinfo, later, ssotest.Alice)
				_, err := userinfo.Finish(ctx, f.pending, later, f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeInvalidToken, wantKind: fault.Unauthenticated,
			check: func(t *testing.T, err error) {
				if _, ok := errors.AsType[*oidc.TokenExpiredError](err); !ok {
					t.Errorf("cause %v is not an oidc.TokenExpiredError", err)
				}
			},
		},
		{
			name: "fail/nonce mismatch",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, userinfoOP, userinfo, now, ssotest.Alice)
				_, other := userinfo.Start(now)
				f.pending.Nonce = other.Nonce
				_, err := userinfo.Finish(ctx, f.pending, now, f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeInvalidToken, wantKind: fault.Unauthenticated,
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "nonce") {
					t.Errorf("cause %v does not name the nonce", err)
				}
			},
		},
		{
			name: "fail/email not verified",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, userinfoOP, userinfo, now, ssotest.Bob)
				_, err := userinfo.Finish(ctx, f.pending, now, f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeEmailNotVerified, wantKind: fault.Forbidden,
			check: func(t *testing.T, err error) { wantIs(t, err, sso.ErrEmailNotVerified) },
		},
		{
			name: "fail/email not verified in ID token",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, idclaimsOP, idclaims, now, ssotest.Bob)
				_, err := idclaims.Finish(ctx, f.pending, now, f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeEmailNotVerified, wantKind: fault.Forbidden,
			check: func(t *testing.T, err error) { wantIs(t, err, sso.ErrEmailNotVerified) },
		},
		{
			name: "fail/no email",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, userinfoOP, userinfo, now, ssotest.Carol)
				_, err := userinfo.Finish(ctx, f.pending, now, f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeEmailNotVerified, wantKind: fault.Forbidden,
			check: func(t *testing.T, err error) { wantIs(t, err, sso.ErrEmailNotVerified) },
		},
		{
			name: "fail/wrong client secret",
			run: func(t *testing.T, now time.Time) result {
				cfg := userinfoOP.Config()
				cfg.ClientSecret = keys.Secret("not-the-secret")
				p := newProvider(t, cfg, userinfoOP.HTTPClient)
				f := signIn(t, userinfoOP, p, now, ssotest.Alice)
				_, err := p.Finish(ctx, f.pending, now, f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeExchangeFailed, wantKind: fault.Unauthenticated,
		},
		{
			name: "fail/PKCE verifier mismatch",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, userinfoOP, userinfo, now, ssotest.Alice)
				f.pending.Verifier = oauth2.GenerateVerifier()
				_, err := userinfo.Finish(ctx, f.pending, now, f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeExchangeFailed, wantKind: fault.Unauthenticated,
		},
		{
			name: "fail/code used twice",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, userinfoOP, userinfo, now, ssotest.Alice)
				if _, err := userinfo.Finish(ctx, f.pending, now, f.state, f.code); err != nil {
					t.Fatalf("first Finish: %v", err)
				}
				_, err := userinfo.Finish(ctx, f.pending, now, f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeExchangeFailed, wantKind: fault.Unauthenticated,
		},
		{
			name: "fail/no code",
			run: func(t *testing.T, now time.Time) result {
				f := signIn(t, userinfoOP, userinfo, now, ssotest.Alice)
				_, err := userinfo.Finish(ctx, f.pending, now, f.state, "")
				return result{nil, err, f}
			},
			wantCode: sso.CodeInvalidCallback, wantKind: fault.Invalid,
		},
		{
			name: "fail/ID token from another issuer",
			run: func(t *testing.T, now time.Time) result {
				// The token request for userinfoOP reaches otherOP,
				// which knows the same client and issued the code.
				other := newProvider(t, otherOP.Config(), otherOP.HTTPClient)
				f := signIn(t, otherOP, other, now, ssotest.Alice)
				otherHost := otherOP.Server.Listener.Addr().String()
				p := newProvider(t, userinfoOP.Config(), rewriteClient(userinfoOP.HTTPClient, func(r *http.Request) {
					r.URL.Host, r.Host = otherHost, ""
				}))
				f.pending.Issuer = p.Issuer()
				_, err := p.Finish(ctx, f.pending, now, f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeInvalidToken, wantKind: fault.Unauthenticated,
			check: func(t *testing.T, err error) {
				// otherOP's key signed it, which userinfoOP's key set lacks.
				if !strings.Contains(err.Error(), "signature") {
					t.Errorf("cause %v is not about the signature", err)
				}
			},
		},
		{
			name: "fail/ID token for another audience",
			run: func(t *testing.T, now time.Time) result {
				// The code and the token belong to other-client; the
				// token request is authenticated as other-client too.
				cfg := otherOP.Config()
				cfg.ClientID, cfg.ClientSecret = "other-client", keys.Secret("other-secret")
				other := newProvider(t, cfg, otherOP.HTTPClient)
				f := signIn(t, otherOP, other, now, ssotest.Alice)
				p := newProvider(t, otherOP.Config(), rewriteClient(otherOP.HTTPClient, func(r *http.Request) {
					r.SetBasicAuth("other-client", "other-secret")
				}))
				_, err := p.Finish(ctx, f.pending, now, f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeInvalidToken, wantKind: fault.Unauthenticated,
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "audience") {
					t.Errorf("cause %v does not name the audience", err)
				}
			},
		},
		{
			name: "fail/provider gone before the exchange",
			run: func(t *testing.T, now time.Time) result {
				gone := ssotest.Start(t, redirectURL)
				p := newProvider(t, gone.Config(), gone.HTTPClient)
				f := signIn(t, gone, p, now, ssotest.Alice)
				gone.Server.Close()
				_, err := p.Finish(ctx, f.pending, now, f.state, f.code)
				return result{nil, err, f}
			},
			wantCode: sso.CodeExchangeFailed, wantKind: fault.Unavailable,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.run(t, time.Now())
			if tc.wantCode == "" {
				if res.err != nil {
					t.Fatalf("Finish: %v", res.err)
				}
				if *res.id != *tc.want {
					t.Fatalf("identity = %+v, want %+v", *res.id, *tc.want)
				}
				return
			}
			if res.id != nil {
				t.Errorf("identity = %+v, want nil", *res.id)
			}
			f := wantFault(t, res.err, tc.wantCode)
			if f.Kind != tc.wantKind {
				t.Errorf("kind = %v, want %v", f.Kind, tc.wantKind)
			}
			for name, secret := range map[string]string{
				"code": res.flow.code, "verifier": res.flow.pending.Verifier, "nonce": res.flow.pending.Nonce,
				"state": res.flow.pending.State, "client secret": userinfoOP.ClientSecret,
			} {
				if secret != "" && strings.Contains(res.err.Error(), secret) {
					t.Errorf("error %q contains the %s", res.err, name)
				}
			}
			if tc.check != nil {
				tc.check(t, res.err)
			}
		})
	}
}

func wantIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("errors.Is(%v, %v) = false", err, target)
	}
}

func TestStart(t *testing.T) {
	op := ssotest.Start(t, redirectURL)
	p := newProvider(t, op.Config(), op.HTTPClient)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	authURL, pending := p.Start(now)
	_, second := p.Start(now)

	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(authURL, op.Issuer+"/") {
		t.Errorf("auth URL %s is not at the issuer %s", u.Redacted(), op.Issuer)
	}
	q := u.Query()
	want := map[string]string{
		"response_type":         "code",
		"client_id":             op.ClientID,
		"redirect_uri":          redirectURL,
		"scope":                 "openid email profile",
		"state":                 pending.State,
		"nonce":                 pending.Nonce,
		"code_challenge":        oauth2.S256ChallengeFromVerifier(pending.Verifier),
		"code_challenge_method": "S256",
	}
	for k, v := range want {
		if got := q.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if q.Has("code_verifier") || strings.Contains(authURL, pending.Verifier) {
		t.Error("the auth URL carries the PKCE verifier")
	}
	// rand.Text is 26 base32 characters (130 bits); the verifier is 32
	// bytes in base64url.
	for name, v := range map[string]string{"state": pending.State, "nonce": pending.Nonce, "verifier": pending.Verifier} {
		if len(v) < 26 {
			t.Errorf("%s %q is shorter than 128 bits", name, v)
		}
	}
	if pending.State == second.State || pending.Nonce == second.Nonce || pending.Verifier == second.Verifier || pending.State == pending.Nonce {
		t.Error("two Starts share a random value")
	}
	if !pending.CreatedAt.Equal(now) || pending.Issuer != op.Issuer {
		t.Errorf("pending = %v, want created at %v for %s", pending, now, op.Issuer)
	}
}

func TestParseCallback(t *testing.T) {
	op := ssotest.Start(t, redirectURL)
	p := newProvider(t, op.Config(), op.HTTPClient)

	t.Run("ok/code and state", func(t *testing.T) {
		state, code, err := p.ParseCallback(url.Values{"state": {"s"}, "code": {"c"}, "iss": {op.Issuer}})
		if err != nil || state != "s" || code != "c" {
			t.Fatalf("ParseCallback = %q, %q, %v; want s, c, nil", state, code, err)
		}
	})
	t.Run("fail/provider refuses prompt=none", func(t *testing.T) {
		// A real error redirect: the example storage answers prompt=none
		// with login_required, since nobody is signed in.
		authURL, _ := p.Start(time.Now())
		cb := op.Login(t, op.Browser(), authURL+"&prompt=none", "", "")
		if got := cb.Query().Get("error"); got != "login_required" {
			t.Fatalf("callback error = %q, want login_required", got)
		}
		_, _, err := p.ParseCallback(cb.Query())
		wantFault(t, err, sso.CodeProviderError)
	})
	fails := []struct {
		name, query, code string
		kind              fault.Kind
	}{
		{"fail/access denied", "error=access_denied&error_description=user+said+no&state=s", sso.CodeAccessDenied, fault.Forbidden},
		{"fail/temporarily unavailable", "error=temporarily_unavailable&state=s", sso.CodeUnavailable, fault.Unavailable},
		{"fail/other error", "error=invalid_scope&state=s", sso.CodeProviderError, fault.Unauthenticated},
		{"fail/no code", "state=s", sso.CodeInvalidCallback, fault.Invalid},
		{"fail/repeated code", "state=s&code=a&code=b", sso.CodeInvalidCallback, fault.Invalid},
		{"fail/repeated state", "state=s&state=t&code=a", sso.CodeInvalidCallback, fault.Invalid},
		{"fail/another issuer", "state=s&code=a&iss=https%3A%2F%2Fevil.example", sso.CodeIssuerMismatch, fault.Unauthenticated},
		{"fail/another issuer with an error", "error=access_denied&iss=https%3A%2F%2Fevil.example", sso.CodeIssuerMismatch, fault.Unauthenticated},
	}
	for _, tc := range fails {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = p.ParseCallback(q)
			f := wantFault(t, err, tc.code)
			if f.Kind != tc.kind {
				t.Errorf("kind = %v, want %v", f.Kind, tc.kind)
			}
			if strings.Contains(f.Message, "said no") || strings.Contains(f.Message, "evil") {
				t.Errorf("message %q repeats untrusted input", f.Message)
			}
		})
	}
}
