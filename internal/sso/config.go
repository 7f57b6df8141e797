package sso

import (
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/keys"
)

// defaultScopes are requested when Config.Scopes is empty. "email" is what
// lets a member be matched; "profile" only adds a display name.
var defaultScopes = []string{"openid", "email", "profile"}

// Config is one tenant's OpenID Connect client registration.
type Config struct {
	// Issuer is the provider's issuer identifier, exactly as its discovery
	// document spells it (a trailing slash matters). It must be https; plain
	// http is accepted only for a loopback host (localhost, 127.0.0.0/8,
	// ::1) so that development and tests can run a provider in-process.
	Issuer string
	// ClientID is the client identifier the provider issued.
	ClientID string
	// ClientSecret authenticates the token request (client_secret_basic,
	// or client_secret_post when the provider only offers that). Empty means
	// a public client, which PKCE alone protects.
	ClientSecret keys.Secret
	// RedirectURL is Custodia's callback URL registered at the provider. Like
	// the issuer it must be https, or http on a loopback host.
	RedirectURL string
	// Scopes requested; "openid" must be among them. Empty means openid,
	// email and profile.
	Scopes []string
}

// Validate checks the settings without contacting the provider.
func (c Config) Validate() error {
	if err := checkURL(c.Issuer, "issuer"); err != nil {
		return err
	}
	if u, _ := url.Parse(c.Issuer); u.RawQuery != "" || u.ForceQuery {
		return invalidConfig("the issuer may not have a query")
	}
	if c.ClientID == "" {
		return invalidConfig("the client ID is required")
	}
	if hasControl(c.ClientID) || len(c.ClientID) > 1024 {
		return invalidConfig("the client ID may not contain control characters or exceed 1024 bytes")
	}
	if err := checkURL(c.RedirectURL, "redirect URL"); err != nil {
		return err
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r > '~' }) {
			return invalidConfig("a scope must be printable ASCII without spaces, quotes or backslashes")
		}
	}
	if len(c.Scopes) > 0 && !slices.Contains(c.Scopes, "openid") {
		return invalidConfig(`the scopes must include "openid"`)
	}
	return nil
}

// LogValue keeps the secret out of logs; fmt already prints ClientSecret as
// [REDACTED] through keys.Secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("issuer", c.Issuer),
		slog.String("client_id", c.ClientID),
		slog.String("redirect_url", c.RedirectURL),
		slog.Any("scopes", c.scopes()),
	)
}

func (c Config) scopes() []string {
	if len(c.Scopes) == 0 {
		return slices.Clone(defaultScopes)
	}
	return slices.Clone(c.Scopes)
}

// fingerprint identifies everything a Provider is built from, so a cached
// Provider is replaced as soon as any setting (the secret included) changes.
func (c Config) fingerprint() [sha256.Size]byte {
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	field([]byte(c.Issuer))
	field([]byte(c.ClientID))
	field(c.ClientSecret)
	field([]byte(c.RedirectURL))
	for _, s := range c.scopes() {
		field([]byte(s))
	}
	return [sha256.Size]byte(h.Sum(nil))
}

func checkURL(raw, what string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return invalidConfig("the %s must be an absolute URL", what)
	}
	if u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return invalidConfig("the %s may not carry credentials or a fragment", what)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return invalidConfig("the %s must use https (http only on a loopback host)", what)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }

func invalidConfig(format string, args ...any) *fault.Error {
	return fault.New(fault.Invalid, CodeConfigInvalid, format, args...)
}
