package mfa

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Session blobs and stored credentials come back from storage, so they are
// decoded strictly: bounded size, known fields only, one JSON value, a
// version, and checks that the content is usable before the library sees it.
// JSON rather than the library's MessagePack because its generated decoders
// size allocations from untrusted length prefixes.

const (
	codecVersion  = 1
	maxSession    = 64 << 10 // an allow list of many long credential IDs
	maxCredential = 64 << 10 // the attestation object is kept with the key
)

type ceremony string

const (
	kindRegister     ceremony = "register"
	kindLogin        ceremony = "login"
	kindDiscoverable ceremony = "discoverable"
)

type sessionBlob struct {
	V    int                  `json:"v"`
	Kind ceremony             `json:"kind"`
	Data webauthn.SessionData `json:"data"`
}

func (p *Passkeys) encodeBegin(kind ceremony, options any, sd *webauthn.SessionData) (opts, session []byte, err error) {
	if opts, err = json.Marshal(options); err != nil {
		return nil, nil, fmt.Errorf("mfa: encode passkey options: %w", err)
	}
	if session, err = json.Marshal(sessionBlob{V: codecVersion, Kind: kind, Data: *sd}); err != nil {
		return nil, nil, fmt.Errorf("mfa: encode passkey session: %w", err)
	}
	return opts, session, nil
}

func (p *Passkeys) decodeSession(kind ceremony, b []byte) (webauthn.SessionData, error) {
	var s sessionBlob
	if len(b) > maxSession {
		return webauthn.SessionData{}, fmt.Errorf("%w: too large", ErrInvalidSession)
	}
	if err := strictJSON(b, &s); err != nil {
		return webauthn.SessionData{}, fmt.Errorf("%w: %w", ErrInvalidSession, err)
	}
	sd := s.Data
	challenge, err := base64.RawURLEncoding.DecodeString(sd.Challenge)
	switch {
	case s.V != codecVersion:
		return webauthn.SessionData{}, fmt.Errorf("%w: version %d", ErrInvalidSession, s.V)
	case s.Kind != kind:
		return webauthn.SessionData{}, fmt.Errorf("%w: %q session used for %s", ErrInvalidSession, s.Kind, kind)
	case sd.RelyingPartyID != p.rpID:
		return webauthn.SessionData{}, fmt.Errorf("%w: from another relying party", ErrInvalidSession)
	case err != nil || len(challenge) < protocol.MinimumChallengeLength:
		return webauthn.SessionData{}, fmt.Errorf("%w: bad challenge", ErrInvalidSession)
	case (kind == kindDiscoverable) != (len(sd.UserID) == 0):
		return webauthn.SessionData{}, fmt.Errorf("%w: user handle does not fit a %s session", ErrInvalidSession, kind)
	case kind == kindLogin && len(sd.AllowedCredentialIDs) == 0:
		return webauthn.SessionData{}, fmt.Errorf("%w: login session without credentials", ErrInvalidSession)
	}
	return sd, nil
}

// credentialJSON has the fields of webauthn.Credential without its
// UnmarshalJSON, which would decode leniently whatever the decoder's options.
type credentialJSON webauthn.Credential

type credentialRecord struct {
	V          int            `json:"v"`
	Credential credentialJSON `json:"credential"`
}

// MarshalCredential encodes a credential for storage. The record holds a
// public key, not a secret; its integrity still matters, since whoever can
// replace it can log in as the member.
func MarshalCredential(c *webauthn.Credential) ([]byte, error) {
	if c == nil {
		return nil, errors.New("mfa: marshal nil passkey credential")
	}
	b, err := json.Marshal(credentialRecord{V: codecVersion, Credential: credentialJSON(*c)})
	if err != nil {
		return nil, fmt.Errorf("mfa: marshal passkey credential: %w", err)
	}
	return b, nil
}

// UnmarshalCredential decodes what MarshalCredential made, refusing
// anything malformed, including a public key that does not parse.
func UnmarshalCredential(b []byte) (*webauthn.Credential, error) {
	const op = "mfa: unmarshal passkey credential"
	if len(b) > maxCredential {
		return nil, fmt.Errorf("%s: too large", op)
	}
	var r credentialRecord
	if err := strictJSON(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	c := webauthn.Credential(r.Credential)
	f := c.Flags
	switch {
	case r.V != codecVersion:
		return nil, fmt.Errorf("%s: version %d", op, r.V)
	case len(c.ID) == 0 || len(c.ID) > 1023: // WebAuthn's bound on credential IDs
		return nil, fmt.Errorf("%s: bad credential ID length", op)
	case len(c.Authenticator.AAGUID) != 0 && len(c.Authenticator.AAGUID) != 16:
		return nil, fmt.Errorf("%s: bad AAGUID length", op)
	case f.BackupState && !f.BackupEligible:
		return nil, fmt.Errorf("%s: backup state without backup eligibility", op)
	}
	if _, err := webauthncose.ParsePublicKey(c.PublicKey); err != nil {
		return nil, fmt.Errorf("%s: bad public key: %w", op, err)
	}
	// JSON carries the flags as booleans; rebuild the raw byte the library
	// keeps beside them.
	var raw protocol.AuthenticatorFlags
	for _, b := range []struct {
		set  bool
		flag protocol.AuthenticatorFlags
	}{
		{f.UserPresent, protocol.FlagUserPresent},
		{f.UserVerified, protocol.FlagUserVerified},
		{f.BackupEligible, protocol.FlagBackupEligible},
		{f.BackupState, protocol.FlagBackupState},
	} {
		if b.set {
			raw |= b.flag
		}
	}
	c.Flags = webauthn.NewCredentialFlags(raw)
	return &c, nil
}

// strictJSON decodes exactly one JSON value with no unknown fields.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data")
	}
	return nil
}
