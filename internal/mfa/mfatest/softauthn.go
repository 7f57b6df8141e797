// Package mfatest holds a software WebAuthn authenticator for tests that
// register and use passkeys without a browser.
package mfatest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Authenticator is a software WebAuthn authenticator and client in one: it
// holds one ES256 credential, answers creation options with a "none"
// attestation and request options with a signed assertion, building
// clientDataJSON and authenticatorData byte for byte as a browser and a
// platform authenticator would. Its fields are knobs for the failure tests.
type Authenticator struct {
	key        *ecdsa.PrivateKey
	CredID     []byte
	aaguid     []byte
	UserHandle []byte

	RPID   string // what the authenticator hashes into rpIdHash
	Origin string // what the "browser" writes into clientDataJSON
	Count  uint32 // signature counter; incremented before each assertion
	// Flags for assertions; registration always sets UP|UV|AT.
	Flags  protocol.AuthenticatorFlags
	BadSig bool // corrupt the assertion signature
	// NoCounter makes the counter stay 0, as synced passkeys do.
	NoCounter bool
}

var b64 = base64.RawURLEncoding

// New returns an authenticator with a fresh ES256 key for rpID, whose
// client writes origin into clientDataJSON.
func New(t testing.TB, rpID, origin string) *Authenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := &Authenticator{
		key:    key,
		CredID: make([]byte, 32),
		aaguid: make([]byte, 16),
		RPID:   rpID,
		Origin: origin,
		Flags:  protocol.FlagUserPresent | protocol.FlagUserVerified,
	}
	rand.Read(a.CredID)
	rand.Read(a.aaguid)
	return a
}

// Clone is a second device holding the same private key and credential:
// what the signature counter is there to detect.
func (a *Authenticator) Clone() *Authenticator {
	c := *a
	return &c
}

// ErrExcluded is what Register returns for an excluded credential.
var ErrExcluded = errors.New("softauthn: InvalidStateError: credential excluded")

// Register answers BeginRegistration's options like navigator.credentials.create.
func (a *Authenticator) Register(t testing.TB, options []byte) ([]byte, error) {
	t.Helper()
	var o struct {
		PublicKey struct {
			Challenge protocol.URLEncodedBase64 `json:"challenge"`
			User      struct {
				ID protocol.URLEncodedBase64 `json:"id"`
			} `json:"user"`
			PubKeyCredParams []struct {
				Alg int `json:"alg"`
			} `json:"pubKeyCredParams"`
			ExcludeCredentials []struct {
				ID protocol.URLEncodedBase64 `json:"id"`
			} `json:"excludeCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("softauthn: creation options: %v", err)
	}
	es256 := false
	for _, p := range o.PublicKey.PubKeyCredParams {
		es256 = es256 || p.Alg == -7
	}
	if !es256 {
		t.Fatal("softauthn: relying party does not accept ES256")
	}
	for _, c := range o.PublicKey.ExcludeCredentials {
		if bytes.Equal(c.ID, a.CredID) {
			return nil, ErrExcluded
		}
	}
	a.UserHandle = o.PublicKey.User.ID

	cdj := a.clientData(t, "webauthn.create", o.PublicKey.Challenge)
	pub, err := a.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(map[int]any{
		1:  2,  // kty: EC2
		3:  -7, // alg: ES256
		-1: 1,  // crv: P-256
		-2: pub[1:33],
		-3: pub[33:],
	})
	if err != nil {
		t.Fatal(err)
	}
	ad := a.authData(protocol.FlagUserPresent | protocol.FlagUserVerified | protocol.FlagAttestedCredentialData)
	ad = append(ad, a.aaguid...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(a.CredID)))
	ad = append(ad, a.CredID...)
	ad = append(ad, cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		t.Fatal(err)
	}
	return jsonOf(t, map[string]any{
		"id":                      b64.EncodeToString(a.CredID),
		"rawId":                   b64.EncodeToString(a.CredID),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cdj),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
	}), nil
}

// Login answers BeginLogin or BeginDiscoverableLogin's options like
// navigator.credentials.get.
func (a *Authenticator) Login(t testing.TB, options []byte) []byte {
	t.Helper()
	var o struct {
		PublicKey struct {
			Challenge protocol.URLEncodedBase64 `json:"challenge"`
			RPID      string                    `json:"rpId"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("softauthn: request options: %v", err)
	}
	if !a.NoCounter {
		a.Count++
	}
	cdj := a.clientData(t, "webauthn.get", o.PublicKey.Challenge)
	ad := a.authData(a.Flags)
	cdh := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(bytes.Clone(ad), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if a.BadSig {
		sig[len(sig)-1] ^= 1 // still well-formed DER, no longer a valid signature
	}
	return jsonOf(t, map[string]any{
		"id":                      b64.EncodeToString(a.CredID),
		"rawId":                   b64.EncodeToString(a.CredID),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cdj),
			"authenticatorData": b64.EncodeToString(ad),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(a.UserHandle),
		},
	})
}

func (a *Authenticator) clientData(t testing.TB, typ string, challenge []byte) []byte {
	return jsonOf(t, map[string]any{
		"type":        typ,
		"challenge":   b64.EncodeToString(challenge),
		"origin":      a.Origin,
		"crossOrigin": false,
	})
}

// authData is rpIdHash || flags || signCount, without attested data.
func (a *Authenticator) authData(flags protocol.AuthenticatorFlags) []byte {
	h := sha256.Sum256([]byte(a.RPID))
	ad := append(h[:], byte(flags))
	return binary.BigEndian.AppendUint32(ad, a.Count)
}

func jsonOf(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
