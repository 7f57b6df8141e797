// Package share is the client side of one-time share links: the link key,
// the optional passphrase, the keys derived from them, the sealed envelope
// and the link itself. The CLI uses it to create and open links; page.html
// holds the same protocol in JavaScript for browsers, and a test checks that
// the two agree.
//
// Everything here runs on the person's machine. It must never hand the
// link key, the passphrase or the encryption key to anything that talks to
// the server: the server gets the envelope (ciphertext), the verifier (a
// hash of the auth key) and the public KDF parameters, and learns nothing
// that lets it decrypt.
//
// Protocol (version 1), see docs/share-links.md:
//
//	K          32 random bytes, carried only in the link's fragment
//	IKM        K                                                   (no passphrase)
//	           K || PBKDF2-HMAC-SHA256(NFC(passphrase), salt, iter, 32)
//	enc_key    HKDF-SHA256(IKM, salt "", info "custodia-share-v1 enc", 32)
//	auth_key   HKDF-SHA256(IKM, salt "", info "custodia-share-v1 auth", 32)
//	verifier   SHA-256(auth_key)                                   (stored by the server)
//	envelope   0x01 | nonce (12) | AES-256-GCM(enc_key, nonce, plaintext, aad "custodia-share-v1")
//	link       {server}/s/{id}#{base64url(K)}
package share

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// Protocol constants.
const (
	// Version is the envelope's first byte.
	Version = 1
	// KeySize is the size of the link key K and of the derived keys.
	KeySize = 32
	// SaltSize is the size of the PBKDF2 salt.
	SaltSize = 16
	// DefaultIterations is PBKDF2's work factor for new links (OWASP's
	// figure for PBKDF2-HMAC-SHA256).
	DefaultIterations = 600_000
	// MinIterations and MaxIterations bound what a link may ask for: fewer
	// would make a passphrase cheap to guess for whoever holds the link,
	// more would let a hostile server stall the opener's browser.
	MinIterations = 100_000
	MaxIterations = 10_000_000
	// MaxPlaintext is the largest secret a link carries.
	MaxPlaintext = 64 << 10
	// MaxPassphrase bounds a passphrase (bytes).
	MaxPassphrase = 1024

	nonceSize = 12
	tagSize   = 16
	// Overhead is what sealing adds to the plaintext.
	Overhead = 1 + nonceSize + tagSize
	// MaxEnvelope is the largest valid envelope.
	MaxEnvelope = MaxPlaintext + Overhead
)

const (
	infoEnc  = "custodia-share-v1 enc"
	infoAuth = "custodia-share-v1 auth"
	aadV1    = "custodia-share-v1"
)

// Errors.
var (
	ErrEnvelope   = errors.New("share: not a version 1 share envelope")
	ErrDecrypt    = errors.New("share: the envelope does not open with this link (wrong link or passphrase)")
	ErrKDF        = errors.New("share: invalid passphrase parameters")
	ErrPassphrase = errors.New("share: a passphrase must be 1 to 1024 bytes")
	// ErrPassphraseSpaces refuses a new link's passphrase that begins or
	// ends with white space (or is only white space): such a passphrase
	// is easily lost when sent by another channel, and then the link never
	// opens.
	ErrPassphraseSpaces = errors.New("share: a passphrase may not begin or end with spaces")
	ErrTooLarge         = fmt.Errorf("share: a shared secret may be at most %d bytes", MaxPlaintext)
	ErrEmpty            = errors.New("share: nothing to share")
	ErrLinkKey          = fmt.Errorf("share: the link key must be %d bytes", KeySize)
)

// KDF are the public parameters of the passphrase derivation. A link
// without a passphrase has none (nil).
type KDF struct {
	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
}

// Check validates k.
func (k *KDF) Check() error {
	if k == nil {
		return nil
	}
	if len(k.Salt) != SaltSize || k.Iterations < MinIterations || k.Iterations > MaxIterations {
		return ErrKDF
	}
	return nil
}

// Keys are what the link key and the passphrase yield: the encryption key,
// which never leaves the client, and the auth key, which proves to the
// server that the opener holds the link (and the passphrase).
type Keys struct {
	enc  []byte
	auth []byte
}

// String keeps keys out of fmt output.
func (*Keys) String() string { return "[REDACTED]" }

// GoString keeps keys out of %#v output.
func (*Keys) GoString() string { return "[REDACTED]" }

// LogValue keeps keys out of slog output.
func (*Keys) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// Derive computes the keys of a link from its key, and the passphrase when
// kdf is not nil (passphrase is ignored otherwise).
func Derive(linkKey []byte, passphrase string, kdf *KDF) (*Keys, error) {
	if len(linkKey) != KeySize {
		return nil, ErrLinkKey
	}
	ikm := append([]byte(nil), linkKey...)
	defer clear(ikm)
	if kdf != nil {
		if err := kdf.Check(); err != nil {
			return nil, err
		}
		if passphrase == "" || len(passphrase) > MaxPassphrase {
			return nil, ErrPassphrase
		}
		pk, err := pbkdf2.Key(sha256.New, norm.NFC.String(passphrase), kdf.Salt, kdf.Iterations, KeySize)
		if err != nil {
			return nil, fmt.Errorf("share: pbkdf2: %w", err)
		}
		ikm = append(ikm, pk...)
		clear(pk)
	}
	enc, err := hkdf.Key(sha256.New, ikm, nil, infoEnc, KeySize)
	if err != nil {
		return nil, fmt.Errorf("share: hkdf: %w", err)
	}
	auth, err := hkdf.Key(sha256.New, ikm, nil, infoAuth, KeySize)
	if err != nil {
		return nil, fmt.Errorf("share: hkdf: %w", err)
	}
	return &Keys{enc: enc, auth: auth}, nil
}

// Auth is the auth key the opener sends to the server.
func (k *Keys) Auth() []byte { return append([]byte(nil), k.auth...) }

// Verifier is what the server stores to check the auth key.
func (k *Keys) Verifier() []byte { return Verifier(k.auth) }

// Verifier hashes an auth key as the server stores it.
func Verifier(auth []byte) []byte {
	h := sha256.Sum256(auth)
	return h[:]
}

// Wipe overwrites the keys.
func (k *Keys) Wipe() {
	clear(k.enc)
	clear(k.auth)
}

func (k *Keys) aead() cipher.AEAD {
	b, err := aes.NewCipher(k.enc)
	if err != nil {
		panic(err) // the key is always 32 bytes
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

// Seal encrypts plaintext into an envelope.
func (k *Keys) Seal(plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 {
		return nil, ErrEmpty
	}
	if len(plaintext) > MaxPlaintext {
		return nil, ErrTooLarge
	}
	out := make([]byte, 1+nonceSize, Overhead+len(plaintext))
	out[0] = Version
	rand.Read(out[1:])
	return k.aead().Seal(out, out[1:1+nonceSize], plaintext, []byte(aadV1)), nil
}

// Open decrypts an envelope.
func (k *Keys) Open(envelope []byte) ([]byte, error) {
	if err := CheckEnvelope(envelope); err != nil {
		return nil, err
	}
	pt, err := k.aead().Open(nil, envelope[1:1+nonceSize], envelope[1+nonceSize:], []byte(aadV1))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// CheckEnvelope checks an envelope's shape (version and size) without any
// key: what the server can check of a ciphertext it cannot read.
func CheckEnvelope(b []byte) error {
	if len(b) < Overhead+1 || len(b) > MaxEnvelope || b[0] != Version {
		return ErrEnvelope
	}
	return nil
}

// Prepared is a new share, ready to send: the link key (for the link,
// never for the server), and what the server stores.
type Prepared struct {
	LinkKey  []byte
	KDF      *KDF
	Verifier []byte
	Envelope []byte
}

// Prepare makes a new link key and seals plaintext under it, and under
// passphrase too when it is not empty (iterations 0 means
// DefaultIterations).
func Prepare(plaintext []byte, passphrase string, iterations int) (*Prepared, error) {
	if len(plaintext) == 0 {
		return nil, ErrEmpty
	}
	if len(plaintext) > MaxPlaintext {
		return nil, ErrTooLarge
	}
	if passphrase != "" && strings.TrimSpace(passphrase) != passphrase {
		return nil, ErrPassphraseSpaces
	}
	p := &Prepared{LinkKey: make([]byte, KeySize)}
	rand.Read(p.LinkKey)
	if passphrase != "" {
		if iterations == 0 {
			iterations = DefaultIterations
		}
		p.KDF = &KDF{Salt: make([]byte, SaltSize), Iterations: iterations}
		rand.Read(p.KDF.Salt)
	}
	k, err := Derive(p.LinkKey, passphrase, p.KDF)
	if err != nil {
		return nil, err
	}
	defer k.Wipe()
	if p.Envelope, err = k.Seal(plaintext); err != nil {
		return nil, err
	}
	p.Verifier = k.Verifier()
	return p, nil
}
