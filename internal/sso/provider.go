package sso

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/custodia-project/custodia/internal/fault"
)

const (
	// PendingTTL is how long a started sign-in may take before Finish
	// refuses it. It bounds how long a leaked state or code is worth
	// anything, and is generous for a person typing a password and a
	// second factor at their provider.
	PendingTTL = 10 * time.Minute

	// DiscoveryTimeout bounds fetching the provider's discovery document.
	DiscoveryTimeout = 10 * time.Second

	// FinishTimeout bounds the network part of Finish: token exchange, key
	// set fetch and user info together.
	FinishTimeout = 20 * time.Second

	// clockSkew is how far in the future a Pending may have been created,
	// for callers running on several machines.
	clockSkew = time.Minute

	// requestTimeout is set on a client that has none, because go-oidc
	// refreshes the key set with a context that is never cancelled.
	requestTimeout = 30 * time.Second

	// maxResponseBytes caps every response from the provider; discovery,
	// tokens, keys and user info are a few kilobytes.
	maxResponseBytes = 1 << 20
)

// Provider is one tenant's discovered OpenID provider. It is safe for
// concurrent use and holds no per-login state.
type Provider struct {
	issuer   string
	clientID string
	oidc     *oidc.Provider
	oauth    oauth2.Config
	client   *http.Client
	// issParam is set when the provider promises RFC 9207's iss parameter
	// on the redirect, which then becomes mandatory.
	issParam bool
}

// Pending is a started sign-in. The caller keeps it server-side, bound to the
// browser that started it, until the callback arrives, and uses it once.
type Pending struct {
	Issuer    string    `json:"issuer"`
	State     string    `json:"state"`
	Nonce     string    `json:"nonce"`
	Verifier  string    `json:"verifier"` // PKCE code_verifier
	CreatedAt time.Time `json:"created_at"`
}

// String keeps the state, nonce and verifier out of fmt output.
func (p Pending) String() string {
	return fmt.Sprintf("sso.Pending{Issuer:%q CreatedAt:%s [REDACTED]}", p.Issuer, p.CreatedAt.Format(time.RFC3339))
}

// GoString keeps them out of %#v.
func (p Pending) GoString() string { return p.String() }

// LogValue keeps the state, nonce and verifier out of logs.
func (p Pending) LogValue() slog.Value {
	return slog.GroupValue(slog.String("issuer", p.Issuer), slog.Time("created_at", p.CreatedAt))
}

// Identity is who the provider says signed in. Email is normalized with
// NormalizeEmail and always verified: Finish refuses anything else.
type Identity struct {
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
}

// NewProvider validates cfg and fetches the provider's discovery document.
// client carries the caller's TLS trust and egress policy; nil means a client
// with a timeout and the system roots. The Provider keeps using it for the
// token, key set and user info requests.
func NewProvider(ctx context.Context, cfg Config, client *http.Client) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client = limitClient(client)
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), DiscoveryTimeout)
	defer cancel()
	op, err := oidc.NewProvider(dctx, cfg.Issuer)
	if err != nil {
		if mismatch, ok := errors.AsType[*oidc.IssuerMismatchError](err); ok {
			return nil, fault.Wrap(mismatch, fault.Invalid, CodeIssuerMismatch, "the provider's discovery document names a different issuer; check the issuer URL")
		}
		if errors.Is(err, ErrPrivateAddress) {
			return nil, fault.Wrap(fmt.Errorf("sso: discovery of %s: %w", cfg.Issuer, err), fault.Invalid, CodePrivateAddress,
				"the issuer resolves to a private or local address; an operator must start Custodia with --sso-allow-private-networks to allow a provider on their own network")
		}
		return nil, fault.Wrap(fmt.Errorf("sso: discovery of %s: %w", cfg.Issuer, err), fault.Unavailable, CodeUnavailable, "the identity provider could not be reached")
	}

	var meta struct {
		AuthMethods       []string `json:"token_endpoint_auth_methods_supported"`
		ChallengeMethods  []string `json:"code_challenge_methods_supported"`
		IssParamSupported bool     `json:"authorization_response_iss_parameter_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, fault.Wrap(fmt.Errorf("sso: discovery of %s: %w", cfg.Issuer, err), fault.Invalid, CodeConfigInvalid, "the identity provider's discovery document is malformed")
	}
	ep := op.Endpoint()
	if checkURL(ep.AuthURL, "authorization endpoint") != nil || checkURL(ep.TokenURL, "token endpoint") != nil {
		return nil, fault.New(fault.Invalid, CodeConfigInvalid, "the identity provider's authorization and token endpoints must use https")
	}
	// A provider that lists its PKCE methods and leaves S256 out would
	// ignore our challenge; one that lists none may still honour it.
	if len(meta.ChallengeMethods) > 0 && !slices.Contains(meta.ChallengeMethods, "S256") {
		return nil, fault.New(fault.Invalid, CodeConfigInvalid, "the identity provider does not support PKCE with S256")
	}
	// Pick the client authentication up front: oauth2's auto-detection
	// would send the secret a second time after a failure.
	switch {
	case len(cfg.ClientSecret) == 0:
		ep.AuthStyle = oauth2.AuthStyleInParams // client_id only
	case len(meta.AuthMethods) == 0 || slices.Contains(meta.AuthMethods, "client_secret_basic"):
		ep.AuthStyle = oauth2.AuthStyleInHeader // the default of OpenID Connect Discovery
	case slices.Contains(meta.AuthMethods, "client_secret_post"):
		ep.AuthStyle = oauth2.AuthStyleInParams
	default:
		return nil, fault.New(fault.Invalid, CodeConfigInvalid, "the identity provider offers neither client_secret_basic nor client_secret_post")
	}

	return &Provider{
		issuer:   cfg.Issuer,
		clientID: cfg.ClientID,
		oidc:     op,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: string(cfg.ClientSecret),
			Endpoint:     ep,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       cfg.scopes(),
		},
		client:   client,
		issParam: meta.IssParamSupported,
	}, nil
}

// Issuer is the provider's issuer identifier.
func (p *Provider) Issuer() string { return p.issuer }

// String and LogValue keep the client secret, held in an unexported field
// that fmt would otherwise print, out of output.
func (p *Provider) String() string {
	return fmt.Sprintf("sso.Provider{Issuer:%q ClientID:%q}", p.issuer, p.clientID)
}

func (p *Provider) GoString() string { return p.String() }

func (p *Provider) LogValue() slog.Value {
	return slog.GroupValue(slog.String("issuer", p.issuer), slog.String("client_id", p.clientID))
}

// Start begins a sign-in: the caller stores the Pending server-side and
// redirects the browser to authURL.
func (p *Provider) Start(now time.Time) (authURL string, pending Pending) {
	pending = Pending{
		Issuer:    p.issuer,
		State:     rand.Text(),
		Nonce:     rand.Text(),
		Verifier:  oauth2.GenerateVerifier(),
		CreatedAt: now,
	}
	authURL = p.oauth.AuthCodeURL(pending.State,
		oauth2.S256ChallengeOption(pending.Verifier),
		oidc.Nonce(pending.Nonce))
	return authURL, pending
}

// ParseCallback reads the query of the redirect back from the provider. It
// returns the state and code for Finish, or the fault for an error the
// provider reported (see FinishError).
func (p *Provider) ParseCallback(q url.Values) (state, code string, err error) {
	for _, k := range []string{"state", "code", "error", "iss"} {
		if len(q[k]) > 1 {
			return "", "", fault.New(fault.Invalid, CodeInvalidCallback, "the sign-in callback repeats a parameter")
		}
	}
	// RFC 9207: the iss parameter tells which provider answered, which
	// matters when tenants share a callback URL.
	if iss, ok := q["iss"]; ok || p.issParam {
		if !ok || iss[0] != p.issuer {
			return "", "", fault.Wrap(fmt.Errorf("sso: callback iss %s, want %q", quoteTrunc(q.Get("iss"), 256), p.issuer),
				fault.Unauthenticated, CodeIssuerMismatch, "the sign-in response came from a different identity provider")
		}
	}
	if e := q.Get("error"); e != "" {
		return "", "", FinishError(e, q.Get("error_description"))
	}
	if q.Get("code") == "" {
		return "", "", fault.New(fault.Invalid, CodeInvalidCallback, "the sign-in callback has no authorization code")
	}
	return q.Get("state"), q.Get("code"), nil
}

// Finish completes a sign-in: it checks that state belongs to pending and
// that pending is fresh at now, redeems code with the PKCE verifier, verifies
// the ID token (signature, issuer, audience, expiry at now, nonce) and returns
// the identity. If the ID token carries no email, the provider's user info
// endpoint is asked, as OpenID Connect allows. A sign-in without a verified
// email fails with ErrEmailNotVerified.
func (p *Provider) Finish(ctx context.Context, pending Pending, now time.Time, state, code string) (*Identity, error) {
	if pending.State == "" || pending.Nonce == "" || pending.Verifier == "" ||
		subtle.ConstantTimeCompare([]byte(pending.State), []byte(state)) != 1 {
		return nil, fault.New(fault.Invalid, CodeStateMismatch, "this sign-in response does not match the sign-in you started; start again")
	}
	if pending.Issuer != p.issuer {
		return nil, fault.Wrap(fmt.Errorf("sso: pending login for %q finished at %q", pending.Issuer, p.issuer),
			fault.Invalid, CodeStateMismatch, "this sign-in response does not match the sign-in you started; start again")
	}
	if age := now.Sub(pending.CreatedAt); age > PendingTTL || age < -clockSkew {
		return nil, fault.New(fault.Unauthenticated, CodeExpired, "the sign-in took longer than %v; start again", PendingTTL)
	}
	if code == "" {
		return nil, fault.New(fault.Invalid, CodeInvalidCallback, "the sign-in callback has no authorization code")
	}

	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, p.client), FinishTimeout)
	defer cancel()
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(pending.Verifier))
	if err != nil {
		// The provider refusing the code is the user's problem; not
		// reaching it is ours.
		if _, refused := errors.AsType[*oauth2.RetrieveError](err); refused {
			return nil, fault.Wrap(fmt.Errorf("sso: token exchange: %w", err), fault.Unauthenticated, CodeExchangeFailed, "the identity provider did not accept this sign-in; start again")
		}
		return nil, fault.Wrap(fmt.Errorf("sso: token exchange: %w", err), fault.Unavailable, CodeExchangeFailed, "the identity provider could not be reached")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, invalidToken(errors.New("sso: token response has no id_token"))
	}
	verifier := p.oidc.Verifier(&oidc.Config{ClientID: p.clientID, Now: func() time.Time { return now }})
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, invalidToken(fmt.Errorf("sso: id token: %w", err))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pending.Nonce)) != 1 {
		return nil, invalidToken(errors.New("sso: id token nonce does not match the pending login"))
	}
	if idt.Subject == "" {
		return nil, invalidToken(errors.New("sso: id token has no subject"))
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, invalidToken(fmt.Errorf("sso: id token at_hash: %w", err))
		}
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		return nil, invalidToken(fmt.Errorf("sso: id token claims: %w", err))
	}
	// OpenID Connect Core 3.1.3.7: with several audiences, azp must be us.
	if c.AuthorizedParty != "" && c.AuthorizedParty != p.clientID {
		return nil, invalidToken(fmt.Errorf("sso: id token azp %q is not this client", c.AuthorizedParty))
	}

	if c.Email == "" && p.oidc.UserInfoEndpoint() != "" {
		ui, err := p.oidc.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, fault.Wrap(fmt.Errorf("sso: user info: %w", err), fault.Unavailable, CodeExchangeFailed, "the identity provider did not return the user's details")
		}
		// OpenID Connect Core 5.3.2: user info for another subject is
		// a substitution attack.
		if ui.Subject != idt.Subject {
			return nil, invalidToken(errors.New("sso: user info subject differs from the id token's"))
		}
		var uc claims
		if err := ui.Claims(&uc); err != nil {
			return nil, invalidToken(fmt.Errorf("sso: user info claims: %w", err))
		}
		c.Email, c.EmailVerified = uc.Email, uc.EmailVerified
		if c.Name == "" {
			c.Name = uc.Name
		}
	}

	if c.Email == "" {
		return nil, emailNotVerified(fmt.Errorf("%w: the provider sent no email", ErrEmailNotVerified))
	}
	if !c.EmailVerified {
		return nil, emailNotVerified(fmt.Errorf("%w: email_verified is not true", ErrEmailNotVerified))
	}
	email, err := NormalizeEmail(c.Email)
	if err != nil {
		return nil, invalidToken(fmt.Errorf("sso: email claim: %w", err))
	}
	return &Identity{
		Issuer:        idt.Issuer,
		Subject:       idt.Subject,
		Email:         email,
		EmailVerified: true,
		Name:          c.Name,
	}, nil
}

// claims are the ID token and user info claims Finish reads.
type claims struct {
	Email           string   `json:"email"`
	EmailVerified   flexBool `json:"email_verified"`
	Name            string   `json:"name"`
	AuthorizedParty string   `json:"azp"`
}

// flexBool accepts email_verified as a JSON boolean or, as some providers
// (Amazon Cognito) send it, the string "true" or "false". Anything else,
// null included, is false.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", `"true"`:
		*b = true
	default:
		*b = false
	}
	return nil
}

func invalidToken(cause error) *fault.Error {
	return fault.Wrap(cause, fault.Unauthenticated, CodeInvalidToken, "the identity provider's answer failed verification")
}

func emailNotVerified(cause error) *fault.Error {
	return fault.Wrap(cause, fault.Forbidden, CodeEmailNotVerified, "the identity provider did not confirm a verified email address for this account")
}

// limitClient returns a copy of c (never c itself, which the caller may
// share) whose responses are capped and whose requests time out.
func limitClient(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	if out.Timeout == 0 {
		out.Timeout = requestTimeout
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = limitTransport{base}
	return &out
}

type limitTransport struct{ base http.RoundTripper }

func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = http.MaxBytesReader(nil, resp.Body, maxResponseBytes)
	return resp, nil
}

var _ json.Unmarshaler = (*flexBool)(nil)
