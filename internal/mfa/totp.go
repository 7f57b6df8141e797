package mfa

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/custodia-project/custodia/internal/keys"
)

// The parameters every authenticator app supports. Apps silently ignore
// the algorithm, digits and period fields of an otpauth:// URL often enough
// that anything else would lock members out.
const (
	totpPeriod     = 30 // seconds
	totpSkew       = 1  // steps accepted either side of now
	totpDigits     = 6
	totpSecretSize = 20 // bytes: the HMAC-SHA-1 block-sized key RFC 4226 recommends

	// minTOTPSecret refuses secrets too short to resist guessing the key
	// itself (RFC 4226 §4 requires at least 128 bits).
	minTOTPSecret = 16

	// maxCodeInput bounds what is examined of a typed code before giving up.
	maxCodeInput = 64

	maxQRSize = 2048
)

var hotpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// TOTPEnrollment is a freshly generated TOTP key to show to a member once.
// The caller stores Secret (sealed: it must be readable again to verify)
// only after the member has proved the app works with a first code.
type TOTPEnrollment struct {
	// Secret is the key, base32 without padding, as VerifyTOTP expects it.
	Secret keys.Secret
	// URL is the otpauth:// URL for authenticator apps. It contains the
	// secret, so it is redacted like it.
	URL keys.Secret
}

// NewTOTP generates a random TOTP key for account at issuer (SHA-1, 6
// digits, 30 s). The issuer is what the member sees in their app; account
// should identify the member to them, typically their email.
func NewTOTP(issuer, account string) (*TOTPEnrollment, error) {
	if issuer == "" || account == "" {
		return nil, errors.New("mfa: TOTP issuer and account must not be empty")
	}
	// The label is "issuer:account"; a colon in the issuer would make apps
	// split it in the wrong place.
	if strings.Contains(issuer, ":") {
		return nil, errors.New("mfa: TOTP issuer must not contain ':'")
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      totpPeriod,
		SecretSize:  totpSecretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
		Rand:        rand.Reader,
	})
	if err != nil {
		return nil, fmt.Errorf("mfa: generate TOTP key: %w", err)
	}
	// key.String is the URL as generated; key.URL re-encodes it and turns
	// the %20 that some apps need back into +.
	return &TOTPEnrollment{Secret: keys.Secret(key.Secret()), URL: keys.Secret(key.String())}, nil
}

// QRPNG renders URL as a size×size PNG QR code for the member to scan.
func (e *TOTPEnrollment) QRPNG(size int) ([]byte, error) {
	if size <= 0 || size > maxQRSize {
		return nil, fmt.Errorf("mfa: QR code size must be between 1 and %d pixels", maxQRSize)
	}
	key, err := otp.NewKeyFromURL(string(e.URL))
	if err != nil {
		return nil, errors.New("mfa: TOTP URL is malformed") // the URL holds the secret: never wrap it
	}
	img, err := key.Image(size, size)
	if err != nil {
		// barcode reports a size too small for the code; its text has no secret.
		return nil, fmt.Errorf("mfa: render TOTP QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("mfa: encode TOTP QR code: %w", err)
	}
	return buf.Bytes(), nil
}

// VerifyTOTP checks code against secret at time now, accepting one 30 s
// step of clock skew either way. It returns the step the code belongs to;
// the caller stores it and passes it back as lastStep next time, so that a
// code (or an older one) cannot be used twice. Pass 0 before the first use.
//
// Spaces in code are ignored ("123 456"). Errors are ErrInvalidCode and
// ErrReplayed, which the caller must not distinguish to the client, or an
// error about the stored secret itself.
func VerifyTOTP(secret string, code string, now time.Time, lastStep int64) (step int64, err error) {
	code, ok := normalizeTOTPCode(code)
	if !ok {
		return 0, ErrInvalidCode
	}
	if raw, err := b32.DecodeString(strings.ToUpper(strings.TrimRight(secret, "="))); err != nil || len(raw) < minTOTPSecret {
		return 0, errors.New("mfa: stored TOTP secret is not valid")
	}

	cur := floorDiv(now.Unix(), totpPeriod)
	match := int64(-1)
	// Every candidate is computed and compared, highest last, so the time
	// taken does not depend on which step matched. ConstantTimeCompare keeps
	// a wrong guess from learning how close it was; whether it matched at
	// all is what the result says anyway.
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		if s < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(s), hotpOpts)
		if err != nil {
			return 0, errors.New("mfa: stored TOTP secret is not valid")
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			match = s
		}
	}
	switch {
	case match < 0:
		return 0, ErrInvalidCode
	case match <= lastStep:
		return 0, ErrReplayed
	}
	return match, nil
}

// normalizeTOTPCode drops the spaces apps show for readability and accepts
// exactly six ASCII digits.
func normalizeTOTPCode(code string) (string, bool) {
	if len(code) > maxCodeInput {
		return "", false
	}
	var b [totpDigits]byte
	n := 0
	for i := 0; i < len(code); i++ {
		switch c := code[i]; {
		case c == ' ' || c == '\t':
		case c >= '0' && c <= '9' && n < totpDigits:
			b[n] = c
			n++
		default:
			return "", false
		}
	}
	if n != totpDigits {
		return "", false
	}
	return string(b[:]), true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
