package mfa_test

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

// softAuthn is a software WebAuthn authenticator and client in one: it
// holds one ES256 credential, answers creation options with a "none"
// attestation and request options with a signed assertion, building
// clientDataJSON and authenticatorData byte for byte as a browser and a
// platform authenticator would. Its fields are knobs for the failure tests.
type softAuthn struct {
	key        *ecdsa.PrivateKey
	credID     []byte
	aaguid     []byte
	userHandle []byte

	rpID   string // what the authenticator hashes into rpIdHash
	origin string // what the "browser" writes into clientDataJSON
	count  uint32 // signature counter; incremented before each assertion
	// flags for assertions; registration always sets UP|UV|AT.
	flags  protocol.AuthenticatorFlags
	badSig bool // corrupt the assertion signature
	// noCounter makes the counter stay 0, as synced passkeys do.
	noCounter bool
}

var b64 = base64.RawURLEncoding

func newSoftAuthn(t testing.TB, rpID, origin string) *softAuthn {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := &softAuthn{
		key:    key,
		credID: make([]byte, 32),
		aaguid: make([]byte, 16),
		rpID:   rpID,
		origin: origin,
		flags:  protocol.FlagUserPresent | protocol.FlagUserVerified,
	}
	rand.Read(a.credID)
	rand.Read(a.aaguid)
	return a
}

// clone is a second device holding the same private key and credential:
// what the signature counter is there to detect.
func (a *softAuthn) clone() *softAuthn {
	c := *a
	return &c
}

var errExcluded = errors.New("softauthn: InvalidStateError: credential excluded")

// register answers BeginRegistration's options like navigator.credentials.create.
func (a *softAuthn) register(t testing.TB, options []byte) ([]byte, error) {
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
		if bytes.Equal(c.ID, a.credID) {
			return nil, errExcluded
		}
	}
	a.userHandle = o.PublicKey.User.ID

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
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(a.credID)))
	ad = append(ad, a.credID...)
	ad = append(ad, cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		t.Fatal(err)
	}
	return jsonOf(t, map[string]any{
		"id":                      b64.EncodeToString(a.credID),
		"rawId":                   b64.EncodeToString(a.credID),
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

// login answers BeginLogin or BeginDiscoverableLogin's options like
// navigator.credentials.get.
func (a *softAuthn) login(t testing.TB, options []byte) []byte {
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
	if !a.noCounter {
		a.count++
	}
	cdj := a.clientData(t, "webauthn.get", o.PublicKey.Challenge)
	ad := a.authData(a.flags)
	cdh := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(bytes.Clone(ad), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if a.badSig {
		sig[len(sig)-1] ^= 1 // still well-formed DER, no longer a valid signature
	}
	return jsonOf(t, map[string]any{
		"id":                      b64.EncodeToString(a.credID),
		"rawId":                   b64.EncodeToString(a.credID),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cdj),
			"authenticatorData": b64.EncodeToString(ad),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(a.userHandle),
		},
	})
}

func (a *softAuthn) clientData(t testing.TB, typ string, challenge []byte) []byte {
	return jsonOf(t, map[string]any{
		"type":        typ,
		"challenge":   b64.EncodeToString(challenge),
		"origin":      a.origin,
		"crossOrigin": false,
	})
}

// authData is rpIdHash || flags || signCount, without attested data.
func (a *softAuthn) authData(flags protocol.AuthenticatorFlags) []byte {
	h := sha256.Sum256([]byte(a.rpID))
	ad := append(h[:], byte(flags))
	return binary.BigEndian.AppendUint32(ad, a.count)
}

func jsonOf(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
