package mfa

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// maxResponse bounds a browser's ceremony response. A "none" or "packed"
// attestation is a few KiB; the margin is for certificate chains.
const maxResponse = 256 << 10

// Passkeys runs WebAuthn registration and login ceremonies for one relying
// party. It keeps no state between calls: each Begin returns a session blob
// that the caller stores server-side, bound to the member's web session and
// deleted after a few minutes or on first use, and hands back to Finish.
// A Passkeys is safe for concurrent use.
type Passkeys struct {
	rpID string
	wa   *webauthn.WebAuthn
}

// NewPasskeys configures ceremonies for relying party rpID (a domain, such
// as "vault.example.com"), shown to members as rpName, accepting responses
// from the given origins. Each origin must be https (http only for
// localhost) on rpID or a subdomain of it, as browsers require.
//
// Registrations prefer discoverable credentials and user verification, and
// ask for no attestation: Custodia trusts a passkey because the signed-in
// member registered it, not because of who made the authenticator.
func NewPasskeys(rpID, rpName string, origins []string) (*Passkeys, error) {
	if rpID == "" || rpName == "" {
		return nil, errors.New("mfa: passkey relying party ID and name must not be empty")
	}
	if len(origins) == 0 {
		return nil, errors.New("mfa: passkeys need at least one origin")
	}
	for _, o := range origins {
		if err := checkOrigin(rpID, o); err != nil {
			return nil, err
		}
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:                  rpID,
		RPDisplayName:         rpName,
		RPOrigins:             slices.Clone(origins),
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementPreferred,
			RequireResidentKey: protocol.ResidentKeyNotRequired(),
			UserVerification:   protocol.VerificationPreferred,
		},
		// Session expiry is the caller's: it stores the blob with a short
		// lifetime. The library would enforce one only against its own
		// wall clock, which tests cannot move.
	})
	if err != nil {
		return nil, fmt.Errorf("mfa: passkey configuration: %w", err)
	}
	return &Passkeys{rpID: rpID, wa: wa}, nil
}

func checkOrigin(rpID, origin string) error {
	u, err := url.Parse(origin)
	// Browsers send the origin without a path; the comparison is exact.
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("mfa: passkey origin %q is not scheme://host[:port]", origin)
	}
	host := u.Hostname()
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && host == "localhost":
	default:
		return fmt.Errorf("mfa: passkey origin %q must be https (or http://localhost)", origin)
	}
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return fmt.Errorf("mfa: passkey origin %q is not on relying party %q", origin, rpID)
	}
	return nil
}

// User is a member as WebAuthn sees them.
type User struct {
	// ID is the member's user handle: random, opaque, 1 to 64 bytes (use
	// 32 from crypto/rand), made once per member and stored. It is kept by
	// authenticators and returned at every discoverable login, so it must
	// never be, or be derived from, the email or any personal data.
	ID []byte
	// Name is what the member typed to sign in (e.g. the email); the
	// authenticator shows it in its account picker.
	Name string
	// DisplayName is the member's human-friendly name.
	DisplayName string
	// Credentials are the member's registered passkeys.
	Credentials []webauthn.Credential
}

var _ webauthn.User = (*User)(nil)

// WebAuthnID returns ID, for webauthn.User.
func (u *User) WebAuthnID() []byte { return u.ID }

// WebAuthnName returns Name, for webauthn.User.
func (u *User) WebAuthnName() string { return u.Name }

// WebAuthnDisplayName returns DisplayName, for webauthn.User.
func (u *User) WebAuthnDisplayName() string { return u.DisplayName }

// WebAuthnCredentials returns Credentials, for webauthn.User.
func (u *User) WebAuthnCredentials() []webauthn.Credential { return u.Credentials }

func (u *User) check() error {
	switch {
	case u == nil:
		return errors.New("mfa: nil passkey user")
	case len(u.ID) < protocol.MinimumUserHandleLength || len(u.ID) > protocol.MaximumUserHandleLength:
		return fmt.Errorf("mfa: passkey user ID must be %d to %d bytes", protocol.MinimumUserHandleLength, protocol.MaximumUserHandleLength)
	}
	return nil
}

// owns reports whether u has a credential with this ID.
func (u *User) owns(id []byte) bool {
	return slices.ContainsFunc(u.Credentials, func(c webauthn.Credential) bool { return bytes.Equal(c.ID, id) })
}

// withFreshCounters returns a copy of u whose credentials carry no clone
// warning from earlier logins, so that a warning after a ceremony is about
// that ceremony.
func (u *User) withFreshCounters() *User {
	c := *u
	c.Credentials = slices.Clone(u.Credentials)
	for i := range c.Credentials {
		c.Credentials[i].Authenticator.CloneWarning = false
	}
	return &c
}

// BeginRegistration starts adding a passkey for u. options is the JSON
// {"publicKey": ...} whose publicKey member the browser passes to
// PublicKeyCredential.parseCreationOptionsFromJSON and then
// navigator.credentials.create; u's existing passkeys are excluded so an
// authenticator cannot be registered twice.
func (p *Passkeys) BeginRegistration(u *User) (options, session []byte, err error) {
	if err := u.check(); err != nil {
		return nil, nil, err
	}
	if u.Name == "" {
		return nil, nil, errors.New("mfa: passkey user has no name") // the authenticator's account picker shows it
	}
	creation, sd, err := p.wa.BeginRegistration(u,
		webauthn.WithExclusions(webauthn.Credentials(u.Credentials).CredentialDescriptors()))
	if err != nil {
		return nil, nil, fmt.Errorf("mfa: begin passkey registration: %w", err)
	}
	return p.encodeBegin(kindRegister, creation, sd)
}

// FinishRegistration verifies the browser's JSON response to the options
// of the session's BeginRegistration and returns the new credential for the
// caller to store with MarshalCredential. Credential IDs must also be
// unique across all members: the caller's store should enforce it.
func (p *Passkeys) FinishRegistration(u *User, session, response []byte) (*webauthn.Credential, error) {
	const op = "mfa: finish passkey registration"
	if err := u.check(); err != nil {
		return nil, err
	}
	sd, err := p.decodeSession(kindRegister, session)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if len(response) > maxResponse {
		return nil, fmt.Errorf("%s: %w: response too large", op, ErrRejected)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrRejected, err)
	}
	cred, err := p.wa.CreateCredential(u, sd, parsed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrRejected, err)
	}
	if u.owns(cred.ID) {
		return nil, fmt.Errorf("%s: %w: credential already registered", op, ErrRejected)
	}
	return cred, nil
}

// BeginLogin starts a login for u, who must have at least one passkey;
// only u's passkeys are offered. options is the JSON {"publicKey": ...}
// for navigator.credentials.get.
func (p *Passkeys) BeginLogin(u *User) (options, session []byte, err error) {
	if err := u.check(); err != nil {
		return nil, nil, err
	}
	if len(u.Credentials) == 0 {
		return nil, nil, errors.New("mfa: begin passkey login: member has no passkeys")
	}
	assertion, sd, err := p.wa.BeginLogin(u)
	if err != nil {
		return nil, nil, fmt.Errorf("mfa: begin passkey login: %w", err)
	}
	return p.encodeBegin(kindLogin, assertion, sd)
}

// FinishLogin verifies the browser's JSON assertion against the session's
// BeginLogin. On success it returns the credential used, with its updated
// signature counter and flags, which the caller stores in place of the old.
//
// If the counter did not increase (and is not zero on both sides, as with
// synced passkeys), it returns ErrClonedAuthenticator together with the
// credential, flagged CloneWarning, so that the caller can identify and
// disable it. The login must be refused.
func (p *Passkeys) FinishLogin(u *User, session, response []byte) (*webauthn.Credential, error) {
	const op = "mfa: finish passkey login"
	if err := u.check(); err != nil {
		return nil, err
	}
	sd, err := p.decodeSession(kindLogin, session)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	parsed, err := parseAssertion(response)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	cred, err := p.wa.ValidateLogin(u.withFreshCounters(), sd, parsed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, loginError(err))
	}
	if cred.Authenticator.CloneWarning {
		return cred, fmt.Errorf("%s: %w", op, ErrClonedAuthenticator)
	}
	return cred, nil
}

// BeginDiscoverableLogin starts a login where the member is not known yet:
// the browser offers every passkey it holds for this relying party, and the
// response names the member by user handle.
func (p *Passkeys) BeginDiscoverableLogin() (options, session []byte, err error) {
	assertion, sd, err := p.wa.BeginDiscoverableLogin()
	if err != nil {
		return nil, nil, fmt.Errorf("mfa: begin discoverable passkey login: %w", err)
	}
	return p.encodeBegin(kindDiscoverable, assertion, sd)
}

// FinishDiscoverableLogin verifies an assertion from a
// BeginDiscoverableLogin session. lookup finds the member from the
// credential ID and user handle in the response (returning nil or an
// error if there is none); the member must own that credential. It
// returns the member and the credential as FinishLogin does, including
// ErrClonedAuthenticator. An error from lookup is returned wrapped.
func (p *Passkeys) FinishDiscoverableLogin(lookup func(rawID, userHandle []byte) (*User, error), session, response []byte) (*User, *webauthn.Credential, error) {
	const op = "mfa: finish discoverable passkey login"
	sd, err := p.decodeSession(kindDiscoverable, session)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	parsed, err := parseAssertion(response)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	var (
		found     *User
		lookupErr error
	)
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		u, err := lookup(rawID, userHandle)
		switch {
		case err != nil:
			lookupErr = err
			return nil, err
		case u == nil || u.check() != nil || !u.owns(rawID):
			lookupErr = ErrUnknownCredential
			return nil, ErrUnknownCredential
		}
		found = u
		return u.withFreshCounters(), nil
	}
	_, cred, err := p.wa.ValidatePasskeyLogin(handler, sd, parsed)
	switch {
	case lookupErr != nil:
		return nil, nil, fmt.Errorf("%s: %w", op, lookupErr)
	case err != nil:
		return nil, nil, fmt.Errorf("%s: %w", op, loginError(err))
	case cred.Authenticator.CloneWarning:
		return found, cred, fmt.Errorf("%s: %w", op, ErrClonedAuthenticator)
	}
	return found, cred, nil
}

func parseAssertion(response []byte) (*protocol.ParsedCredentialAssertionData, error) {
	if len(response) > maxResponse {
		return nil, fmt.Errorf("%w: response too large", ErrRejected)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return parsed, nil
}

// loginError sorts a library error into our sentinels, keeping it wrapped
// for the log (its text is the library's summary, without key material).
func loginError(err error) error {
	var unknown *protocol.ErrorUnknownCredential
	if errors.As(err, &unknown) {
		return fmt.Errorf("%w: %w", ErrUnknownCredential, err)
	}
	return fmt.Errorf("%w: %w", ErrRejected, err)
}
