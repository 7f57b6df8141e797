package vault

// Digital certificates (PKCS#12). A certificate is a credential of kind
// "certificate": its sealed secret fields are what a robot needs to sign
// (see the certField constants), so versions, write-only for people, fetch
// under a lease, reveal rules, restore, delete and offboarding transfer
// apply to it unchanged. Its public facts (subject, issuer, serial,
// validity, fingerprint, holder) are kept beside it in the store's
// certificates table, where admins see them and the sweep reads expiry.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/custodia-project/custodia/internal/audit"
	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/identity"
	"github.com/custodia-project/custodia/internal/store"
)

// Limits of certificate uploads.
const (
	// MaxPKCS12Bytes caps an uploaded PKCS#12 file (decoded). Real exports
	// with a chain of a few CAs are a few kilobytes.
	MaxPKCS12Bytes = 64 << 10
	// MaxPKCS12Iterations caps the key-derivation iterations a file may ask
	// for: decoding runs them, so a hostile file could otherwise hold the
	// server for hours. Exporters use 1 to 10,000 (OpenSSL 2048, Java
	// 10,000).
	MaxPKCS12Iterations = 1 << 20
	maxP12Password      = 1024
)

// RSA key sizes.
const (
	// StrongRSABits is the smallest RSA key kept without a warning
	// (weak_key): NIST has disallowed shorter ones for signatures since
	// 2013 and issuers stopped issuing them, but some old certificates a
	// business still signs with are RSA-1024, so they are kept, flagged.
	StrongRSABits = 2048
	// minRSABits is the smallest RSA key kept at all: Go's crypto/rsa
	// refuses to sign with shorter ones, so a robot could not use it.
	minRSABits = 1024
)

// Expiry alert thresholds.
const (
	CertAlertAt30 = 30 * 24 * time.Hour
	CertAlertAt7  = 7 * 24 * time.Hour
)

// The sealed secret fields of a certificate version. A robot signs with
// private_key (PKCS#8 PEM) and presents certificate and chain (PEM); tools
// that want the file as it was uploaded get pkcs12 (standard base64) and
// its password.
const (
	certFieldCertificate = "certificate"
	certFieldChain       = "chain"
	certFieldKey         = "private_key"
	certFieldPKCS12      = "pkcs12"
	certFieldPassword    = "password"
)

// parseSlots bounds how many PKCS#12 files this process decodes at once.
// The pre-check caps the iteration counts it can see, but a file's
// uploader, who knows its password, can hide a costly key bag inside an
// encrypted part; this keeps such a file from taking more than two cores.
var parseSlots = make(chan struct{}, 2)

// SecretText is a secret string in a request (a PKCS#12 file or its
// password): fmt and slog print it redacted; JSON carries it as is.
type SecretText string

// String keeps the secret out of fmt output.
func (SecretText) String() string { return "[REDACTED]" }

// GoString keeps the secret out of %#v output.
func (SecretText) GoString() string { return "[REDACTED]" }

// LogValue keeps the secret out of slog output.
func (SecretText) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// UploadInput is a PKCS#12 file to keep as a certificate credential, or as
// the next version of one.
type UploadInput struct {
	Name string `json:"name"`
	// PKCS12 is the .p12/.pfx file in standard base64 (line breaks
	// allowed), at most MaxPKCS12Bytes once decoded.
	PKCS12   SecretText `json:"pkcs12"`
	Password SecretText `json:"password"`
	// Holder is the member the certificate identifies (ID or email), or
	// NoHolder; empty keeps the current holder (none for a new
	// certificate), unless they were offboarded (409 holder_offboarded).
	Holder   string    `json:"holder,omitempty"`
	Notes    string    `json:"notes,omitempty"`
	Group    string    `json:"group,omitempty"`
	RotateBy time.Time `json:"rotate_by,omitzero"`
}

// Certificate is what anyone who may read the credential sees: never the
// key.
type Certificate struct {
	Subject      string    `json:"subject"`
	Issuer       string    `json:"issuer"`
	Serial       string    `json:"serial"`
	NotBefore    time.Time `json:"not_before"`
	NotAfter     time.Time `json:"not_after"`
	DaysLeft     int       `json:"days_left"`
	Expired      bool      `json:"expired"`
	Fingerprint  string    `json:"fingerprint_sha256"`
	KeyAlgorithm string    `json:"key_algorithm"`
	HolderID     string    `json:"holder_id,omitempty"`
	// Version is the credential version these facts describe.
	Version int `json:"version"`
	// Warnings say what is wrong with a certificate that was stored
	// anyway (codes CertExpired, CertNotYetValid, CertWeakKey); they never
	// refuse an upload.
	Warnings []Warning `json:"warnings,omitempty"`
	// Warning is the first warning's message, for clients that read one.
	Warning    string     `json:"warning,omitempty"`
	Credential Credential `json:"credential"`
}

// Certificate warning codes.
const (
	CertExpired     = "expired"
	CertNotYetValid = "not_yet_valid"
	// CertWeakKey: an RSA key shorter than StrongRSABits.
	CertWeakKey = "weak_key"
)

// CertificateSecret is a certificate fetched by a robot under a lease.
type CertificateSecret struct {
	Credential string    `json:"credential"`
	Name       string    `json:"name"`
	Version    int       `json:"version"`
	LeaseID    string    `json:"lease_id"`
	ExpiresAt  time.Time `json:"lease_expires_at"`
	// Certificate is the leaf, Chain its CA certificates, PrivateKey the
	// leaf's key (PKCS#8); all PEM.
	Certificate string `json:"certificate"`
	Chain       string `json:"chain,omitempty"`
	PrivateKey  string `json:"private_key"`
	// PKCS12 is the uploaded file (standard base64) and Password opens it.
	PKCS12   string `json:"pkcs12"`
	Password string `json:"password"`
}

// String keeps the key out of fmt output.
func (CertificateSecret) String() string { return "[REDACTED]" }

// GoString keeps the key out of %#v output.
func (CertificateSecret) GoString() string { return "[REDACTED]" }

// LogValue keeps the key out of slog output.
func (CertificateSecret) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// ParsedCertificate is what a PKCS#12 file holds once checked: the leaf
// certificate, its CA chain, and the leaf's private key.
type ParsedCertificate struct {
	Leaf  *x509.Certificate
	Chain []*x509.Certificate
	Key   crypto.Signer
}

// KeyAlgorithm names the leaf's key, e.g. "RSA-2048", "ECDSA-P-256".
func (p *ParsedCertificate) KeyAlgorithm() string { return keyAlgorithm(p.Leaf.PublicKey) }

func keyAlgorithm(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA-" + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return "other"
}

// ParseCertificate decodes a PKCS#12 file and checks that it holds a
// certificate with the private key that belongs to it. Every refusal is a
// *fault.Error that says what to do; none repeats the file or password.
func ParseCertificate(der []byte, password string) (*ParsedCertificate, error) {
	if len(der) == 0 {
		return nil, invalid("pkcs12_required", "give the certificate as a PKCS#12 file (.p12 or .pfx) in base64")
	}
	if len(der) > MaxPKCS12Bytes {
		return nil, fault.New(fault.TooLarge, "pkcs12_too_large", "the PKCS#12 file is larger than %d bytes", MaxPKCS12Bytes)
	}
	if len(password) > maxP12Password {
		return nil, invalid("invalid_password", "the password is longer than %d characters", maxP12Password)
	}
	if err := checkMAC(der); err != nil {
		return nil, err
	}
	if err := checkIterations(der, 0, MaxPKCS12Iterations); err != nil {
		return nil, err
	}
	key, first, cas, err := pkcs12.DecodeChain(der, password)
	if err != nil {
		return nil, pkcs12Error(err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, invalid("unsupported_key", "the private key in the file cannot sign (%s); %s", keyKind(key), supportedKeys)
	}
	if k, ok := signer.Public().(*rsa.PublicKey); ok && k.N.BitLen() < minRSABits {
		return nil, invalid("unsupported_key", "the private key in the file is RSA-%d: RSA keys shorter than %d bits are broken and cannot sign here; %s",
			k.N.BitLen(), minRSABits, supportedKeys)
	}
	// The leaf is the certificate of the key. Most exporters put it first,
	// not all do.
	var leaf *x509.Certificate
	var chain []*x509.Certificate
	for _, c := range append([]*x509.Certificate{first}, cas...) {
		if leaf == nil && publicKeyEqual(signer.Public(), c.PublicKey) {
			leaf = c
			continue
		}
		chain = append(chain, c)
	}
	if leaf == nil {
		return nil, invalid("key_mismatch", "the private key in the file does not belong to its certificate; export the certificate together with its own key")
	}
	return &ParsedCertificate{Leaf: leaf, Chain: chain, Key: signer}, nil
}

func publicKeyEqual(a crypto.PublicKey, b any) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && b != nil && k.Equal(b)
}

// supportedKeys ends every unsupported_key message: what to ask for instead.
const supportedKeys = "Custodia keeps RSA (2048 bits or more; 1024 with a warning), ECDSA (P-256, P-384, P-521) and Ed25519 keys: ask the issuer for one of those"

// keyAlgorithmOIDs name the PKCS#8 key algorithms that go-pkcs12 (through
// crypto/x509) cannot parse, for the refusal's message.
var keyAlgorithmOIDs = map[string]string{
	"1.2.840.10040.4.1": "a DSA key",
	"1.3.101.111":       "an X448 key",
	"1.3.101.113":       "an Ed448 key",
}

// keyKind names a parsed private key that is no crypto.Signer (an X25519
// or other key-agreement key).
func keyKind(key any) string {
	if _, ok := key.(*ecdh.PrivateKey); ok {
		return "it is a key-agreement (ECDH) key"
	}
	return fmt.Sprintf("it is a %T", key)
}

// pkcs12Error turns the decoder's refusal into a client error that says
// what to do. go-pkcs12 types only its wrong-password and not-implemented
// errors; the rest, crypto/x509's included, it flattens into strings
// ("pkcs12: error parsing PKCS#8 private key: " + err.Error()), so those
// are told apart by their text, which TestParseCertificate pins with real
// files (certtest.OpenSSL) so that a dependency update that rewords one
// fails there rather than in front of a customer.
func pkcs12Error(err error) error {
	var ni pkcs12.NotImplementedError
	msg := err.Error()
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword), errors.Is(err, pkcs12.ErrDecryption):
		return fault.Wrap(err, fault.Invalid, "wrong_password", "the password does not open this PKCS#12 file")
	case msg == "pkcs12: private key missing":
		return fault.Wrap(err, fault.Invalid, "no_private_key",
			"the file holds no private key: export the certificate with its private key (in Windows: \"Yes, export the private key\")")
	case msg == "pkcs12: certificate missing":
		return fault.Wrap(err, fault.Invalid, "no_certificate", "the file holds a key but no certificate")
	case msg == "pkcs12: no MAC in data":
		// checkMAC refuses these first; this stays in case the decoder
		// ever finds one checkMAC did not.
		return errNoMAC(err)
	case strings.Contains(msg, "PKCS#8 wrapping contained private key with unknown algorithm"):
		alg := "of a type Custodia cannot read"
		if _, oid, ok := strings.Cut(msg, "unknown algorithm: "); ok && keyAlgorithmOIDs[oid] != "" {
			alg = keyAlgorithmOIDs[oid]
		}
		return fault.Wrap(err, fault.Invalid, "unsupported_key", "the private key in the file is %s; %s", alg, supportedKeys)
	case strings.Contains(msg, "unsupported elliptic curve"), strings.Contains(msg, "unknown elliptic curve"):
		return fault.Wrap(err, fault.Invalid, "unsupported_key",
			"a key or certificate in the file is on an elliptic curve Custodia cannot use (such as a Brainpool curve); %s", supportedKeys)
	case errors.As(err, &ni):
		return fault.Wrap(err, fault.Invalid, "unsupported_pkcs12",
			"this PKCS#12 file uses an encryption or layout Custodia cannot read; it reads password-protected files encrypted with AES "+
				"(PBES2) or the older SHA-1 3DES/RC2 schemes, with an HMAC SHA-1, SHA-256 or SHA-512 MAC: export it again "+
				"(e.g. openssl pkcs12 -export, or Windows' AES256-SHA256 option)")
	}
	return errInvalidPKCS12(err)
}

func errInvalidPKCS12(err error) error {
	return fault.Wrap(err, fault.Invalid, "invalid_pkcs12",
		"the file is not a readable PKCS#12 (.p12/.pfx) file with a certificate and its private key")
}

// errNoMAC refuses a file without a MAC: without one neither a wrong
// password nor a damaged or altered file can be told from a good one.
func errNoMAC(err error) error {
	return fault.Wrap(err, fault.Invalid, "unsupported_pkcs12",
		"this PKCS#12 file has no integrity check (MAC); Custodia reads a file only with one, so that a wrong password "+
			"or a damaged or altered file is caught: export it again with a MAC (the default; without openssl's -nomac)")
}

// pfxPDU is the outer structure of a PKCS#12 file (RFC 7292, section 4),
// declared as go-pkcs12 declares it, so that encoding/asn1 reads it here
// as the decoder does.
type pfxPDU struct {
	Version  int
	AuthSafe struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
	}
	MacData struct {
		Mac struct {
			Algorithm pkix.AlgorithmIdentifier
			Digest    []byte
		}
		MacSalt    []byte
		Iterations int `asn1:"optional,default:1"`
	} `asn1:"optional"`
}

// checkMAC refuses a file whose outer structure has no macData, whatever
// the password. go-pkcs12 refuses one only when a password is given: with
// an empty one it decodes the file unchecked, so anyone who could alter
// it on its way could swap the key or certificate unseen. A file the
// decoder could not read either is refused here as it would refuse it.
func checkMAC(der []byte) error {
	var p pfxPDU
	rest, err := asn1.Unmarshal(der, &p)
	if err == nil && len(rest) > 0 {
		err = errors.New("pkcs12: trailing data found")
	}
	if err != nil {
		return errInvalidPKCS12(err)
	}
	if len(p.MacData.Mac.Algorithm.Algorithm) == 0 {
		return errNoMAC(errors.New("pkcs12: no MAC in data"))
	}
	return nil
}

// checkIterations refuses a file that asks for more than limit
// key-derivation rounds anywhere it can be seen before
// decryption: in every SEQUENCE, an INTEGER right after an OCTET STRING is
// the iteration count of PBE parameters, PBKDF2 parameters and MacData.
// OCTET STRINGs are searched too, since PKCS#12 nests DER inside them. Input
// that is not DER is left for the decoder to refuse.
func checkIterations(b []byte, depth int, limit uint64) error {
	if depth > 24 {
		return nil
	}
	for len(b) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(b, &v)
		if err != nil {
			return nil
		}
		b = rest
		switch {
		case v.Class == asn1.ClassUniversal && v.Tag == asn1.TagSequence && v.IsCompound:
			if err := checkSequence(v.Bytes, limit); err != nil {
				return err
			}
			fallthrough
		case v.IsCompound:
			if err := checkIterations(v.Bytes, depth+1, limit); err != nil {
				return err
			}
		case v.Class == asn1.ClassUniversal && v.Tag == asn1.TagOctetString:
			if err := checkIterations(v.Bytes, depth+1, limit); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkSequence(b []byte, limit uint64) error {
	prevOctets := false
	for len(b) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(b, &v)
		if err != nil {
			return nil
		}
		b = rest
		isInt := v.Class == asn1.ClassUniversal && v.Tag == asn1.TagInteger && !v.IsCompound
		if prevOctets && isInt && tooMany(v.Bytes, limit) {
			return invalid("pkcs12_too_costly", "the PKCS#12 file asks for more than %d key-derivation iterations; export it again with standard settings",
				limit)
		}
		prevOctets = v.Class == asn1.ClassUniversal && v.Tag == asn1.TagOctetString && !v.IsCompound
	}
	return nil
}

// tooMany reports whether a DER INTEGER's content exceeds limit (negative
// values are the decoder's to refuse).
func tooMany(b []byte, limit uint64) bool {
	if len(b) == 0 || b[0]&0x80 != 0 {
		return false
	}
	b = bytes.TrimLeft(b, "\x00")
	if len(b) > 4 {
		return true
	}
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n > limit
}

// parseBounded is ParseCertificate under parseSlots.
func parseBounded(ctx context.Context, der []byte, password string) (*ParsedCertificate, error) {
	select {
	case parseSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, fault.New(fault.Unavailable, "busy", "other certificates are being read; try again")
	}
	defer func() { <-parseSlots }()
	return ParseCertificate(der, password)
}

// decodeBase64 reads a base64 file that may be wrapped in lines or lack
// padding.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	if base64.StdEncoding.DecodedLen(len(s)) > MaxPKCS12Bytes+3 {
		return nil, fault.New(fault.TooLarge, "pkcs12_too_large", "the PKCS#12 file is larger than %d bytes", MaxPKCS12Bytes)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return nil, invalid("invalid_pkcs12", "pkcs12 must be the file in standard base64")
		}
	}
	return b, nil
}

func pemOf(typ string, der ...[]byte) string {
	var b strings.Builder
	for _, d := range der {
		_ = pem.Encode(&b, &pem.Block{Type: typ, Bytes: d})
	}
	return b.String()
}

// certFields are the sealed fields of a certificate version.
func certFields(p *ParsedCertificate, der []byte, password string) (Fields, []string, error) {
	pk, err := x509.MarshalPKCS8PrivateKey(p.Key)
	if err != nil {
		return nil, nil, invalid("unsupported_key", "the private key cannot be kept: %s keys are not supported", p.KeyAlgorithm())
	}
	defer clear(pk)
	f := Fields{
		certFieldCertificate: pemOf("CERTIFICATE", p.Leaf.Raw),
		certFieldKey:         pemOf("PRIVATE KEY", pk),
		certFieldPKCS12:      base64.StdEncoding.EncodeToString(der),
		certFieldPassword:    password,
	}
	if len(p.Chain) > 0 {
		raws := make([][]byte, len(p.Chain))
		for i, c := range p.Chain {
			raws[i] = c.Raw
		}
		f[certFieldChain] = pemOf("CERTIFICATE", raws...)
	}
	names := make([]string, 0, len(f))
	for k := range f {
		names = append(names, k)
	}
	sort.Strings(names)
	return f, names, nil
}

// certRow builds the metadata of version c.CurrentVersion from its leaf.
// The alerts already given carry over when the certificate is the same
// one; a different certificate starts its alerts afresh.
func certRow(c *store.Credential, leaf *x509.Certificate, holder string, prev *store.Certificate, now time.Time) *store.Certificate {
	fp := sha256.Sum256(leaf.Raw)
	row := &store.Certificate{TenantID: c.TenantID, CredentialID: c.ID, Version: c.CurrentVersion, Subject: leaf.Subject.String(),
		Issuer: leaf.Issuer.String(), Serial: hex.EncodeToString(leaf.SerialNumber.Bytes()), NotBefore: leaf.NotBefore.UTC(),
		NotAfter: leaf.NotAfter.UTC(), Fingerprint: fp[:], KeyAlgorithm: keyAlgorithm(leaf.PublicKey), HolderID: holder,
		CreatedAt: now, UpdatedAt: now}
	if prev != nil {
		row.CreatedAt = prev.CreatedAt
		if bytes.Equal(prev.Fingerprint, row.Fingerprint) {
			row.Alerted30Days, row.Alerted7Days, row.AlertedExpired = prev.Alerted30Days, prev.Alerted7Days, prev.AlertedExpired
			if prev.HolderID == holder {
				row.AlertedHolderLeft = prev.AlertedHolderLeft
			}
		}
	}
	return row
}

func daysLeft(notAfter, now time.Time) int {
	return int(math.Floor(notAfter.Sub(now).Hours() / 24))
}

func certView(c *store.Credential, row *store.Certificate, fields []string, now time.Time) Certificate {
	out := Certificate{Subject: row.Subject, Issuer: row.Issuer, Serial: row.Serial, NotBefore: row.NotBefore, NotAfter: row.NotAfter,
		DaysLeft: daysLeft(row.NotAfter, now), Expired: !now.Before(row.NotAfter), Fingerprint: hex.EncodeToString(row.Fingerprint),
		KeyAlgorithm: row.KeyAlgorithm, HolderID: row.HolderID, Version: row.Version, Credential: view(c, fields)}
	switch {
	case out.Expired:
		out.Warnings = append(out.Warnings, Warning{CertExpired,
			fmt.Sprintf("this certificate expired on %s: it cannot sign until it is renewed", row.NotAfter.Format(time.DateOnly))})
	case now.Before(row.NotBefore):
		out.Warnings = append(out.Warnings, Warning{CertNotYetValid,
			fmt.Sprintf("this certificate is not valid before %s", row.NotBefore.Format(time.RFC3339))})
	}
	if weakKey(row.KeyAlgorithm) {
		out.Warnings = append(out.Warnings, Warning{CertWeakKey, fmt.Sprintf("this certificate's key is %s: RSA keys shorter than %d bits "+
			"can be broken and many verifiers refuse their signatures; ask the issuer for a new certificate with a stronger key and upload it",
			row.KeyAlgorithm, StrongRSABits)})
	}
	if len(out.Warnings) > 0 {
		out.Warning = out.Warnings[0].Message
	}
	return out
}

// weakKey reports whether a key named by keyAlgorithm is an RSA key shorter
// than StrongRSABits.
func weakKey(alg string) bool {
	bits, ok := strings.CutPrefix(alg, "RSA-")
	n, err := strconv.Atoi(bits)
	return ok && err == nil && n < StrongRSABits
}

func errNoCertificate(ref string) error {
	return fault.New(fault.NotFound, "not_found", "no certificate %q", ref)
}

// NoHolder, given as an upload's holder, records that the certificate
// identifies no member (a company seal, or a person who is not one),
// removing any holder the certificate had.
const NoHolder = "none"

// holderOf resolves a holder reference to a member who has not left.
// keptHolder refuses an upload that names no holder over a certificate
// whose holder has been offboarded. Keeping the leaver, as renewals once
// did, records a certificate for someone who has left, and dropping them
// would guess: the new file may be the leaver's certificate again (issuers
// renew a person's certificate for that person), which is no rotation,
// or someone else's. The uploader says which: a current member, or
// NoHolder.
func keptHolder(ctx context.Context, tx store.Tx, tenantID, holderID string) error {
	if holderID == "" {
		return nil
	}
	m, err := tx.GetMember(ctx, tenantID, holderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.Status == store.MemberOffboarded {
		return fault.New(fault.Conflict, "holder_offboarded", "this certificate's holder, member %s, was offboarded: say whom the new "+
			"certificate identifies (holder: a current member's email or ID, or %q if it identifies no member)", m.ID, NoHolder)
	}
	return nil
}

func holderOf(ctx context.Context, tx store.Tx, tenantID, ref string) (string, error) {
	m, err := identity.MemberOf(ctx, tx, tenantID, ref)
	if err != nil {
		return "", err
	}
	if m.Status == store.MemberOffboarded {
		return "", invalid("invalid_holder", "member %s was offboarded: a certificate's holder must be a current member", m.ID)
	}
	return m.ID, nil
}

// UploadCertificate checks a PKCS#12 file and keeps it sealed as a
// certificate credential (or its next version); the answer shows its
// public facts, never the key. An expired certificate is kept, with a
// warning.
func (s *Service) UploadCertificate(ctx context.Context, tenantID string, in UploadInput) (*Certificate, error) {
	p := authz.From(ctx)
	if p == nil {
		return nil, fault.ErrUnauthenticated
	}
	if err := checkName(in.Name); err != nil {
		return nil, err
	}
	if err := refuseSecondFactors(nil, in.Notes); err != nil {
		return nil, err
	}
	if in.PKCS12 == "" {
		return nil, invalid("pkcs12_required", "give the certificate as a PKCS#12 file (.p12 or .pfx) in base64")
	}
	der, err := decodeBase64(string(in.PKCS12))
	if err != nil {
		return nil, err
	}
	defer clear(der)
	parsed, err := parseBounded(ctx, der, string(in.Password))
	if err != nil {
		return nil, err
	}
	fields, names, err := certFields(parsed, der, string(in.Password))
	if err != nil {
		return nil, err
	}
	var out Certificate
	err = s.store.Update(ctx, func(tx store.Tx) error {
		now := s.now().UTC()
		c, err := tx.GetCredentialByName(ctx, tenantID, in.Name)
		created := false
		switch {
		case errors.Is(err, store.ErrNotFound):
			c = &store.Credential{TenantID: tenantID, ID: store.NewID("crd_"), Name: in.Name, Kind: store.KindCertificate, OwnerID: p.ID,
				MaxVersions: DefaultMaxVersions, CreatedBy: p.ID, CreatedAt: now}
			c.Group, _, _ = strings.Cut(in.Name, "/")
			if in.Group != "" {
				c.Group = in.Group
			}
			created = true
		case err != nil:
			return err
		case c.Kind != store.KindCertificate:
			if _, err := s.need(ctx, authz.CredentialsRead, tenantID, c); err != nil {
				return err
			}
			return fault.New(fault.Conflict, "not_a_certificate", "credential %q is a %s credential, not a certificate; choose another name", c.Name, c.Kind)
		}
		if _, err := s.need(ctx, authz.CredentialsWrite, tenantID, c); err != nil {
			return err
		}
		// Notes and group are held to the limits of any credential's.
		if err := checkMetadata(c, created, PutInput{Notes: in.Notes, Group: in.Group}); err != nil {
			return err
		}
		var prev *store.Certificate
		if !created {
			if prev, err = tx.GetCertificate(ctx, tenantID, c.ID); errors.Is(err, store.ErrNotFound) {
				prev = nil
			} else if err != nil {
				return err
			}
		}
		holder, was := "", ""
		if prev != nil {
			holder, was = prev.HolderID, prev.HolderID
		}
		switch in.Holder {
		case "":
			if err := keptHolder(ctx, tx, tenantID, holder); err != nil {
				return err
			}
		case NoHolder:
			holder = ""
		default:
			if holder, err = holderOf(ctx, tx, tenantID, in.Holder); err != nil {
				return err
			}
		}
		if in.Notes != "" {
			c.Notes = in.Notes
		}
		// A renewal uploaded when the rotation was due is that rotation,
		// as for any credential's new secret.
		rotateDone := setRotateBy(c, in.RotateBy, true, now)
		c.UpdatedAt = now
		c.CurrentVersion++
		// A certificate's file password is no login password: it is not
		// judged for strength or reuse.
		if _, err := s.sealVersion(ctx, tx, c, fields, names, judgement{strength: -1}, p.ID, now); err != nil {
			return err
		}
		if created {
			if err := tx.InsertCredential(ctx, c); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return fault.New(fault.Conflict, "name_taken", "credential %q was just created by someone else; retry", c.Name)
				}
				return err
			}
		} else if err := tx.UpdateCredential(ctx, c); err != nil {
			return err
		}
		pruned := map[string]any{}
		if err := s.prune(ctx, tx, c, pruned); err != nil {
			return err
		}
		row := certRow(c, parsed.Leaf, holder, prev, now)
		if err := tx.PutCertificate(ctx, row); err != nil {
			return err
		}
		out = certView(c, row, names, now)
		// The subject may name a person and their national ID: the audit
		// log keeps what identifies the certificate without it.
		details := map[string]any{"name": c.Name, "version": c.CurrentVersion, "created": created, "serial": row.Serial,
			"fingerprint_sha256": out.Fingerprint, "not_after": row.NotAfter, "expired": out.Expired, "holder": row.HolderID,
			"key_algorithm": row.KeyAlgorithm}
		if weakKey(row.KeyAlgorithm) {
			details["weak_key"] = true
		}
		if !created && was != row.HolderID {
			details["previous_holder"] = was
		}
		if !rotateDone.IsZero() {
			details["rotate_by_done"] = rotateDone
		}
		maps.Copy(details, pruned) // the versions pruned, or kept over max_versions
		// An upload never keeps or names a holder who has left
		// (keptHolder, holderOf), so holderGone has nothing to do here.
		return s.record(ctx, tx, tenantID, "certificate.upload", c.ID, details)
	})
	if err != nil {
		return nil, s.fail(ctx, "upload certificate", err)
	}
	return &out, nil
}

// GetCertificate returns a certificate's public facts and its credential's
// metadata. A refused read says "not found".
func (s *Service) GetCertificate(ctx context.Context, tenantID, ref string) (*Certificate, error) {
	var out Certificate
	err := s.store.View(ctx, func(tx store.Tx) error {
		c, err := s.find(ctx, tx, tenantID, ref, authz.CredentialsRead)
		if err != nil {
			return err
		}
		if c.Kind != store.KindCertificate {
			return errNoCertificate(ref)
		}
		// A deleted or destroyed current version is no certificate to
		// show, as it is none to fetch, list or alert about.
		v, err := tx.GetCredentialVersion(ctx, tenantID, c.ID, c.CurrentVersion)
		if errors.Is(err, store.ErrNotFound) {
			return errNoCertificate(ref)
		}
		if err != nil {
			return err
		}
		if err := live(c, v); err != nil {
			return err
		}
		row, err := tx.GetCertificate(ctx, tenantID, c.ID)
		if errors.Is(err, store.ErrNotFound) {
			return errNoCertificate(ref)
		}
		if err != nil {
			return err
		}
		out = certView(c, row, v.Fields, s.now().UTC())
		return nil
	})
	if err != nil {
		return nil, wrapErr("get certificate", err)
	}
	return &out, nil
}

// maxListedCertificates caps the certificates one list answers with.
const maxListedCertificates = 1000

// errListFull stops ListCertificates' paging once its answer is full.
var errListFull = errors.New("certificate list full")

// ListCertificates returns the certificates the caller may read, soonest
// expiry first, at most maxListedCertificates; within > 0 keeps those
// expiring within it (expired ones included). The caller's rights are
// judged per certificate, so it pages through the tenant's until its
// answer is full or they run out: a first page of others' certificates
// hides none of the caller's.
func (s *Service) ListCertificates(ctx context.Context, tenantID string, within time.Duration) ([]Certificate, error) {
	p := authz.From(ctx)
	out := []Certificate{}
	err := s.store.View(ctx, func(tx store.Tx) error {
		now := s.now().UTC()
		f := store.CertificateFilter{TenantID: tenantID}
		if within > 0 {
			f.ExpiresBy = now.Add(within)
		}
		err := eachCertificate(ctx, tx, f, func(row *store.Certificate) error {
			c, err := tx.GetCredential(ctx, tenantID, row.CredentialID)
			if err != nil {
				return err
			}
			if _, ok := authz.Check(p, authz.CredentialsRead, tenantID, resourceOf(c), now); !ok {
				return nil
			}
			if out = append(out, certView(c, row, nil, now)); len(out) == maxListedCertificates {
				return errListFull
			}
			return nil
		})
		if errors.Is(err, errListFull) {
			return nil
		}
		return err
	})
	return out, wrapErr("list certificates", err)
}

// FetchCertificate is Fetch for a certificate, with its parts named: a
// robot with a fetch grant gets the leaf, chain and key in PEM under a
// lease, and the original file with its password.
func (s *Service) FetchCertificate(ctx context.Context, tenantID, ref string, in FetchInput) (*CertificateSecret, error) {
	// Only a certificate: the generic fetch serves other credentials. The
	// same "not found" answers a name that is not a certificate.
	err := s.store.View(ctx, func(tx store.Tx) error {
		c, err := Lookup(ctx, tx, tenantID, ref)
		if err == nil && c.Kind != store.KindCertificate {
			err = errNoCertificate(ref)
		}
		return err
	})
	if err != nil {
		return nil, wrapErr("fetch certificate", err)
	}
	sec, err := s.Fetch(ctx, tenantID, ref, in)
	if err != nil {
		return nil, err
	}
	return &CertificateSecret{Credential: sec.Credential, Name: sec.Name, Version: sec.Version, LeaseID: sec.LeaseID, ExpiresAt: sec.ExpiresAt,
		Certificate: sec.Fields[certFieldCertificate], Chain: sec.Fields[certFieldChain], PrivateKey: sec.Fields[certFieldKey],
		PKCS12: sec.Fields[certFieldPKCS12], Password: sec.Fields[certFieldPassword]}, nil
}

// refuseCertificatePut keeps certificates on the upload path, where the
// file is checked and its facts tracked: Put may change a certificate
// credential's metadata but not its secret or kind, nor make one.
func refuseCertificatePut(c *store.Credential, created bool, in PutInput) error {
	isCert := !created && c.Kind == store.KindCertificate
	if isCert && in.Secret != nil || isCert && in.Kind != "" && in.Kind != store.KindCertificate || !isCert && in.Kind == store.KindCertificate {
		return invalid("use_certificate_upload",
			"certificates are uploaded as PKCS#12 files (POST /api/v1/tenants/{tenant}/certificates or custodia cert upload), so they are checked and their expiry tracked")
	}
	return nil
}

// restoredCertificate refreshes a certificate's facts after Restore made
// an earlier version current again (as version c.CurrentVersion).
func (s *Service) restoredCertificate(ctx context.Context, tx store.Tx, c *store.Credential, f Fields, now time.Time) error {
	if c.Kind != store.KindCertificate {
		return nil
	}
	blk, _ := pem.Decode([]byte(f[certFieldCertificate]))
	if blk == nil {
		return fmt.Errorf("version of %s holds no certificate", c.ID)
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return err
	}
	prev, err := tx.GetCertificate(ctx, c.TenantID, c.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	holder := ""
	if prev != nil {
		holder = prev.HolderID
	}
	row := certRow(c, leaf, holder, prev, now)
	if err := tx.PutCertificate(ctx, row); err != nil {
		return err
	}
	return holderGone(ctx, tx, now, row)
}

// destroyedCertificate drops a certificate's facts (subject, issuer,
// serial, fingerprint, validity, alert bookkeeping) when the version they
// describe is destroyed: its key is gone for good, so nothing is left to
// renew, alert about or offboard, and a personal certificate's subject
// names a person. Its holder stays, on a row left at the destroyed version
// (store.CertTx lists only live current versions, so it is never listed,
// shown or alerted about): the credential still stands for the person its
// certificates identify, so a renewal or a restored earlier version keeps
// them as holder (or, if they have left, is told about or refused), as
// after any other version. A deleted version keeps all its facts, unused,
// since undeleting brings it back.
func destroyedCertificate(ctx context.Context, tx store.Tx, c *store.Credential, version int) error {
	if c.Kind != store.KindCertificate {
		return nil
	}
	row, err := tx.GetCertificate(ctx, c.TenantID, c.ID)
	if errors.Is(err, store.ErrNotFound) || err == nil && row.Version != version {
		return nil
	}
	if err != nil {
		return err
	}
	if row.HolderID == "" {
		return tx.DeleteCertificate(ctx, c.TenantID, c.ID)
	}
	return tx.PutCertificate(ctx, &store.Certificate{TenantID: row.TenantID, CredentialID: row.CredentialID, Version: row.Version,
		HolderID: row.HolderID, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt})
}

// alertLevel is one expiry alert: given once when a certificate comes
// within before of its end.
type alertLevel struct {
	alert  string
	before time.Duration
	action string
	kind   string
}

// Most severe first: a certificate found already past a nearer threshold
// gets that alert alone, and the farther ones are marked as given.
var alertLevels = []alertLevel{
	{store.CertAlertExpired, 0, "certificate.expired", "certificate_expired"},
	{store.CertAlert7Days, CertAlertAt7, "certificate.expiring", "certificate_expiring"},
	{store.CertAlert30Days, CertAlertAt30, "certificate.expiring", "certificate_expiring"},
}

const alertBatch = 100

// certPage is how many certificates a reader of a whole tenant's takes
// from the store at a time; a variable so that tests page through a few.
var certPage = 1000

// eachCertificate calls fn with every certificate f selects, a page at a
// time in the store's order, so that none is left out however many a
// tenant has. fn may mark alerts: marks do not move a certificate in
// that order.
func eachCertificate(ctx context.Context, tx store.CertTx, f store.CertificateFilter, fn func(*store.Certificate) error) error {
	f.Limit = certPage
	for {
		rows, err := tx.ListCertificates(ctx, f)
		if err != nil {
			return err
		}
		for i := range rows {
			if err := fn(&rows[i]); err != nil {
				return err
			}
		}
		if len(rows) < f.Limit {
			return nil
		}
		f.After = rows[len(rows)-1].Cursor()
	}
}

// certAlertDue is the most severe expiry alert due at now for a
// certificate ending at notAfter (store.CertAlertExpired, CertAlert7Days,
// CertAlert30Days), or "" for none: the rule the sweep applies, for
// reports to decide alike.
func certAlertDue(notAfter, now time.Time) string {
	for _, lv := range alertLevels {
		if !notAfter.After(now.Add(lv.before)) {
			return lv.alert
		}
	}
	return ""
}

// CertificateAlerts tells every tenant's active owners and admins about
// certificates that came within 30 days, within 7 days, or past their
// expiry, each once (across nodes: the mark is a compare-and-set), with an
// audit entry in the same transaction. It returns how many alerts went
// out.
func (s *Service) CertificateAlerts(ctx context.Context) (int, error) {
	total := 0
	for i, lv := range alertLevels {
		for {
			var sent, seen int
			err := s.store.Update(ctx, func(tx store.Tx) error {
				sent, seen = 0, 0
				now := s.now().UTC()
				rows, err := tx.ListCertificates(ctx, store.CertificateFilter{ExpiresBy: now.Add(lv.before), Unalerted: lv.alert, Limit: alertBatch})
				if err != nil {
					return err
				}
				seen = len(rows)
				for j := range rows {
					ok, err := s.alertOne(ctx, tx, &rows[j], lv, alertLevels[i+1:], now)
					if err != nil {
						return err
					}
					if ok {
						sent++
					}
				}
				return nil
			})
			if err != nil {
				return total, wrapErr("certificate alerts", err)
			}
			total += sent
			if seen < alertBatch {
				break
			}
		}
	}
	return total, nil
}

func (s *Service) alertOne(ctx context.Context, tx store.Tx, row *store.Certificate, lv alertLevel, lesser []alertLevel, now time.Time) (bool, error) {
	ok, err := tx.MarkCertificateAlert(ctx, row.TenantID, row.CredentialID, lv.alert, now)
	if err != nil || !ok {
		return false, err
	}
	for _, l := range lesser {
		if _, err := tx.MarkCertificateAlert(ctx, row.TenantID, row.CredentialID, l.alert, now); err != nil {
			return false, err
		}
	}
	// A shredded tenant's keys are gone, and its certificates with them:
	// nobody is to renew anything there.
	if t, err := tx.GetTenant(ctx, row.TenantID); err != nil || t.Status == store.TenantShredded {
		return false, err
	}
	c, err := tx.GetCredential(ctx, row.TenantID, row.CredentialID)
	if err != nil {
		return false, err
	}
	days := daysLeft(row.NotAfter, now)
	subject := fmt.Sprintf("Certificate %s expires on %s (%d days left): renew it and upload the new one", c.Name,
		row.NotAfter.Format(time.DateOnly), days)
	if lv.alert == store.CertAlertExpired {
		subject = fmt.Sprintf("Certificate %s expired on %s: it can no longer sign; renew it and upload the new one", c.Name,
			row.NotAfter.Format(time.DateOnly))
	}
	n, err := identity.NotifyAdmins(ctx, tx, now, row.TenantID, lv.kind, subject, map[string]any{"credential": c.ID, "name": c.Name,
		"serial": row.Serial, "not_after": row.NotAfter, "days_left": days, "threshold": lv.alert})
	if err != nil {
		return false, err
	}
	return true, audit.Append(ctx, tx, now, audit.Entry{Log: row.TenantID, Action: lv.action, Target: c.ID, Details: map[string]any{
		"name": c.Name, "serial": row.Serial, "not_after": row.NotAfter, "days_left": days, "threshold": lv.alert, "admins_notified": n}})
}

// CertificateHolderLeft is called in the transaction that offboards
// memberID: the tenant's admins are told about every certificate that
// identifies the leaver (it should be revoked with its issuer and
// replaced), once each, with an audit entry. It returns those
// certificates' credential IDs.
//
// A certificate whose current version is deleted counts too: deleting is
// undone with one call, and the leaver may have kept a copy of the key
// whatever the vault holds, so only its issuer's revocation ends it. One
// whose version is destroyed has no facts left to find (see
// destroyedCertificate).
func CertificateHolderLeft(ctx context.Context, tx store.Tx, now time.Time, tenantID, memberID, reportID string) ([]string, error) {
	ids := []string{}
	err := eachCertificate(ctx, tx, store.CertificateFilter{TenantID: tenantID, HolderID: memberID, IncludeDeleted: true}, func(row *store.Certificate) error {
		ids = append(ids, row.CredentialID)
		_, err := holderLeftAlert(ctx, tx, now, row, reportID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// holderLeftAlert tells the tenant's admins that row's holder was
// offboarded, with an audit entry, unless they were told about this
// certificate already (the mark is a compare-and-set). reportID is the
// offboarding's report, or "" when a certificate comes back later.
func holderLeftAlert(ctx context.Context, tx store.Tx, now time.Time, row *store.Certificate, reportID string) (bool, error) {
	ok, err := tx.MarkCertificateAlert(ctx, row.TenantID, row.CredentialID, store.CertAlertHolderLeft, now)
	if err != nil || !ok {
		return false, err
	}
	c, err := tx.GetCredential(ctx, row.TenantID, row.CredentialID)
	if err != nil {
		return false, err
	}
	v, err := tx.GetCredentialVersion(ctx, row.TenantID, row.CredentialID, row.Version)
	if err != nil {
		return false, err
	}
	deleted := !v.DeletedAt.IsZero()
	subject := fmt.Sprintf("The holder of certificate %s was offboarded: revoke it with its issuer and upload a replacement", c.Name)
	if deleted {
		subject = fmt.Sprintf("The holder of certificate %s was offboarded: its current version is deleted but can be restored; "+
			"revoke it with its issuer, and destroy it unless a replacement is uploaded", c.Name)
	}
	// The admins read what the audit entry keeps, and the credential it
	// targets; the entry adds how many were told.
	details := map[string]any{"name": c.Name, "serial": row.Serial, "holder": row.HolderID}
	if reportID != "" {
		details["report"] = reportID
	}
	if deleted {
		details["deleted"] = true
	}
	body := maps.Clone(details)
	body["credential"] = c.ID
	n, err := identity.NotifyAdmins(ctx, tx, now, row.TenantID, "certificate_holder_left", subject, body)
	if err != nil {
		return false, err
	}
	details["admins_notified"] = n
	return true, audit.Append(ctx, tx, now, audit.Entry{Log: row.TenantID, Action: "certificate.holder_left", Target: c.ID, Details: details})
}

// holderGone is called when row has just been written by a restore. A
// certificate that names an offboarded member as its holder is flagged
// for rotation, as the offboarding flagged it: writing a version clears a
// flag, but bringing back the leaver's certificate is no rotation. If it
// is another certificate than the one the admins were told about (certRow
// starts a different certificate's alerts afresh), they are told now.
func holderGone(ctx context.Context, tx store.Tx, now time.Time, row *store.Certificate) error {
	if row.HolderID == "" {
		return nil
	}
	m, err := tx.GetMember(ctx, row.TenantID, row.HolderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || m.Status != store.MemberOffboarded {
		return err
	}
	if row.AlertedHolderLeft.IsZero() {
		if _, err := holderLeftAlert(ctx, tx, now, row, ""); err != nil {
			return err
		}
	}
	return tx.FlagRotation(ctx, &store.RotationFlag{TenantID: row.TenantID, ResourceType: store.ResourceCredential, ResourceID: row.CredentialID,
		Reason: "its certificate's holder " + m.ID + " was offboarded", FlaggedAt: now})
}
