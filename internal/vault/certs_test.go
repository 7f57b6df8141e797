package vault

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/custodia-project/custodia/internal/authz"
	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/store"
	"github.com/custodia-project/custodia/internal/vault/certtest"
)

const p12Password = "Kx-cert-pass-9261"

func mustP12(t testing.TB, o certtest.Options) *certtest.Result {
	t.Helper()
	r, err := certtest.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// verifySigner signs a digest with key and checks the signature with the
// leaf's public key: what a robot does with a fetched certificate.
func verifySigner(t testing.TB, key crypto.Signer, leaf *x509.Certificate) {
	t.Helper()
	msg := []byte("invoice 2026-0042, total 1.210,00 EUR")
	digest := sha256.Sum256(msg)
	switch pub := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil || !ecdsa.VerifyASN1(pub, digest[:], sig) {
			t.Fatalf("ECDSA signature does not verify with the leaf (%v)", err)
		}
	case *rsa.PublicKey:
		sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil || rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
			t.Fatalf("RSA signature does not verify with the leaf (%v)", err)
		}
	case ed25519.PublicKey:
		sig, err := key.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil || !ed25519.Verify(pub, msg, sig) {
			t.Fatalf("Ed25519 signature does not verify with the leaf (%v)", err)
		}
	default:
		t.Fatalf("unexpected key %T", pub)
	}
}

func faultCode(err error) string {
	if fe, ok := fault.As(err); ok {
		return fe.Code
	}
	return fmt.Sprintf("not a fault: %v", err)
}

// costly rewrites every 3-byte INTEGER 0x010203 (66051 iterations) of a
// file to 0x7fffff (8,388,607): same length, so the DER stays valid.
func costly(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte{0x02, 0x03, 0x01, 0x02, 0x03}, []byte{0x02, 0x03, 0x7f, 0xff, 0xff})
}

func TestParseCertificate(t *testing.T) {
	okCases := map[string]certtest.Options{
		"ok/ecdsa":          {Password: p12Password},
		"ok/rsa":            {Password: p12Password, Key: "rsa"},
		"ok/rsa-1024":       {Password: p12Password, Key: "rsa", RSABits: 1024},
		"ok/ed25519":        {Password: p12Password, Key: "ed25519"},
		"ok/with a CA":      {Password: p12Password, WithCA: true},
		"ok/empty password": {},
		"ok/already expired": {Password: p12Password, NotBefore: time.Now().Add(-400 * 24 * time.Hour),
			NotAfter: time.Now().Add(-24 * time.Hour)},
	}
	for name, o := range okCases {
		t.Run(name, func(t *testing.T) {
			r := mustP12(t, o)
			p, err := ParseCertificate(r.PKCS12, o.Password)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.Leaf.Raw, r.Leaf.Raw) {
				t.Error("leaf is not the key's certificate")
			}
			if o.WithCA && (len(p.Chain) != 1 || !bytes.Equal(p.Chain[0].Raw, r.CA.Raw)) {
				t.Errorf("chain = %d certificates", len(p.Chain))
			}
			verifySigner(t, p.Key, p.Leaf)
		})
	}
	// An exporter that puts the CA first: the leaf is still the key's.
	t.Run("ok/CA first", func(t *testing.T) {
		r := mustP12(t, certtest.Options{WithCA: true, Password: p12Password})
		f, err := pkcs12.Modern.Encode(r.Key, r.CA, []*x509.Certificate{r.Leaf}, p12Password)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseCertificate(f, p12Password)
		if err != nil || !bytes.Equal(p.Leaf.Raw, r.Leaf.Raw) || len(p.Chain) != 1 || !bytes.Equal(p.Chain[0].Raw, r.CA.Raw) {
			t.Fatalf("CA-first file: %v", err)
		}
	})

	good := mustP12(t, certtest.Options{Password: p12Password})
	trust, err := certtest.TrustStore(p12Password)
	if err != nil {
		t.Fatal(err)
	}
	cheap := mustP12(t, certtest.Options{Password: p12Password, Iterations: 0x010203})
	if _, err := ParseCertificate(cheap.PKCS12, p12Password); err != nil {
		t.Fatalf("66051 iterations refused: %v", err)
	}
	fails := []struct {
		name, code string
		file       []byte
		password   string
	}{
		{"fail/wrong password", "wrong_password", good.PKCS12, "not-the-password"},
		{"fail/key of another certificate", "key_mismatch", mustP12(t, certtest.Options{Password: p12Password, WrongKey: true}).PKCS12, p12Password},
		{"fail/no private key", "no_private_key", trust, p12Password},
		{"fail/garbage", "invalid_pkcs12", []byte("-----BEGIN CERTIFICATE-----\nnot a p12\n"), p12Password},
		{"fail/truncated", "invalid_pkcs12", good.PKCS12[:len(good.PKCS12)/2], p12Password},
		{"fail/empty", "pkcs12_required", nil, p12Password},
		{"fail/too large", "pkcs12_too_large", make([]byte, MaxPKCS12Bytes+1), p12Password},
		{"fail/too many iterations", "pkcs12_too_costly", costly(cheap.PKCS12), p12Password},
		{"fail/password too long", "invalid_password", good.PKCS12, strings.Repeat("x", maxP12Password+1)},
		// go-pkcs12 checks for a MAC only when given a password: without
		// one these decoded, unchecked.
		{"fail/openssl nomac-empty.p12 without a password", "unsupported_pkcs12", certtest.OpenSSL("nomac-empty.p12"), ""},
		{"fail/openssl nomac.p12 without a password", "unsupported_pkcs12", certtest.OpenSSL("nomac.p12"), ""},
		{"fail/MAC stripped, without a password", "unsupported_pkcs12", stripMAC(t, mustP12(t, certtest.Options{}).PKCS12), ""},
		{"fail/MAC stripped", "unsupported_pkcs12", stripMAC(t, good.PKCS12), p12Password},
		{"fail/trailing data", "invalid_pkcs12", append(bytes.Clone(good.PKCS12), 0), p12Password},
	}
	// Files Go cannot make, made with OpenSSL (certtest/testdata/openssl):
	// each refusal names what is wrong and what is supported instead.
	for _, tc := range []struct{ file, code, says string }{
		{"dsa.p12", "unsupported_key", "a DSA key"},
		{"ed448.p12", "unsupported_key", "an Ed448 key"},
		{"brainpool.p12", "unsupported_key", "elliptic curve"},
		{"rsa512.p12", "unsupported_key", "RSA-512"},
		{"nomac.p12", "unsupported_pkcs12", "no integrity check (MAC)"},
		{"nomac-empty.p12", "unsupported_pkcs12", "no integrity check (MAC)"},
	} {
		fails = append(fails, struct {
			name, code string
			file       []byte
			password   string
		}{"fail/openssl " + tc.file, tc.code, certtest.OpenSSL(tc.file), certtest.OpenSSLPassword})
		t.Run("fail/openssl "+tc.file+" says why", func(t *testing.T) {
			_, err := ParseCertificate(certtest.OpenSSL(tc.file), certtest.OpenSSLPassword)
			fe, ok := fault.As(err)
			if !ok || !strings.Contains(fe.Message, tc.says) {
				t.Errorf("message %v does not say %q", err, tc.says)
			}
			supported := "Ed25519"
			if tc.code == "unsupported_pkcs12" {
				supported = "export it again with a MAC"
			}
			if ok && !strings.Contains(fe.Message, supported) {
				t.Errorf("message %q does not say what is supported (%q)", fe.Message, supported)
			}
		})
	}
	for _, tc := range fails {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			p, err := ParseCertificate(tc.file, tc.password)
			if p != nil || faultCode(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			fe, _ := fault.As(err)
			if fe.Kind != fault.Invalid && fe.Kind != fault.TooLarge {
				t.Errorf("kind %v is not a client error", fe.Kind)
			}
			if tc.password != "" && strings.Contains(fe.Message, tc.password) {
				t.Error("the message repeats the password")
			}
			if d := time.Since(start); tc.code == "pkcs12_too_costly" && d > time.Second {
				t.Errorf("refusing a costly file took %s", d)
			}
		})
	}
}

// stripMAC returns a PKCS#12 file without its macData: the version and
// authSafe of the outer PFX alone, as an exporter with no MAC writes it.
func stripMAC(t testing.TB, der []byte) []byte {
	t.Helper()
	var outer, version, authSafe asn1.RawValue
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		t.Fatal(err)
	}
	rest, err := asn1.Unmarshal(outer.Bytes, &version)
	if err == nil {
		rest, err = asn1.Unmarshal(rest, &authSafe)
	}
	if err != nil || len(rest) == 0 {
		t.Fatalf("no macData to strip (%v)", err)
	}
	b, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: append(version.FullBytes, authSafe.FullBytes...)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hasMACData reports whether der is one PFX whose outer SEQUENCE holds a
// macData after its version and authSafe: checkMAC's rule read with
// cryptobyte rather than encoding/asn1, for tests to check it against.
func hasMACData(der []byte) bool {
	in := cryptobyte.String(der)
	var pfx, authSafe, mac cryptobyte.String
	var version int64
	return in.ReadASN1(&pfx, cbasn1.SEQUENCE) && in.Empty() && pfx.ReadASN1Integer(&version) &&
		pfx.ReadASN1(&authSafe, cbasn1.SEQUENCE) && pfx.ReadASN1(&mac, cbasn1.SEQUENCE) && len(mac) > 0
}

func TestCheckMAC(t *testing.T) {
	withMAC := mustP12(t, certtest.Options{Password: p12Password}).PKCS12
	emptyWithMAC := mustP12(t, certtest.Options{}).PKCS12
	for _, tc := range []struct {
		name, code string
		file       []byte
	}{
		{"ok/with a MAC", "", withMAC},
		{"ok/with a MAC, empty password", "", emptyWithMAC},
		{"fail/openssl -nomac", "unsupported_pkcs12", certtest.OpenSSL("nomac.p12")},
		{"fail/openssl -nomac, empty password", "unsupported_pkcs12", certtest.OpenSSL("nomac-empty.p12")},
		{"fail/MAC stripped", "unsupported_pkcs12", stripMAC(t, withMAC)},
		{"fail/MAC stripped, empty password", "unsupported_pkcs12", stripMAC(t, emptyWithMAC)},
		{"fail/not DER", "invalid_pkcs12", []byte("MIIKZgIBAz")},
		{"fail/trailing data", "invalid_pkcs12", append(bytes.Clone(withMAC), 0x30, 0x00)},
		{"fail/truncated", "invalid_pkcs12", withMAC[:len(withMAC)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMAC(tc.file)
			if tc.code == "" && err != nil || tc.code != "" && faultCode(err) != tc.code {
				t.Fatalf("checkMAC = %v, want %q", err, tc.code)
			}
			if tc.code == "" != hasMACData(tc.file) {
				t.Errorf("the cryptobyte reading disagrees: hasMACData = %v", hasMACData(tc.file))
			}
		})
	}
	// The refusal is what the decoder would have said when given a
	// password: the old path (pkcs12Error) and the new agree.
	if a, b := checkMAC(certtest.OpenSSL("nomac.p12")), pkcs12Error(errors.New("pkcs12: no MAC in data")); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("checkMAC says %q, pkcs12Error %q", a, b)
	}
}

// Decoder errors become refusals that say what is wrong; go-pkcs12 types
// few of them, so the others are matched by text, pinned here.
func TestPKCS12Error(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{pkcs12.ErrIncorrectPassword, "wrong_password"},
		{pkcs12.ErrDecryption, "wrong_password"},
		{pkcs12.NotImplementedError("pbe algorithm 1.2.840.113549.1.12.1.1 is not supported"), "unsupported_pkcs12"},
		{errors.New("pkcs12: no MAC in data"), "unsupported_pkcs12"},
		{errors.New("pkcs12: error parsing PKCS#8 private key: x509: PKCS#8 wrapping contained private key with unknown algorithm: 1.2.840.10040.4.1"),
			"unsupported_key"},
		{errors.New("x509: unsupported elliptic curve"), "unsupported_key"},
		{errors.New("pkcs12: private key missing"), "no_private_key"},
		{errors.New("pkcs12: certificate missing"), "no_certificate"},
		{errors.New("pkcs12: error reading P12 data: asn1: structure error"), "invalid_pkcs12"},
	} {
		if got := faultCode(pkcs12Error(tc.err)); got != tc.code {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.code)
		}
	}
}

func TestCheckIterationsSeesEveryCount(t *testing.T) {
	// The counts sit in MacData, in the encrypted safe's PBES2 parameters
	// and in the shrouded key bag's: rewriting any one alone is caught.
	f := mustP12(t, certtest.Options{Password: p12Password, Iterations: 0x010203}).PKCS12
	pat := []byte{0x02, 0x03, 0x01, 0x02, 0x03}
	n := bytes.Count(f, pat)
	if n < 3 {
		t.Fatalf("found %d iteration counts, want at least 3 (MAC, certificates, key)", n)
	}
	for i := range n {
		g := bytes.Clone(f)
		at := -1
		for range i + 1 {
			at += 1 + bytes.Index(g[at+1:], pat)
		}
		copy(g[at:], []byte{0x02, 0x03, 0x7f, 0xff, 0xff})
		if err := checkIterations(g, 0, MaxPKCS12Iterations); faultCode(err) != "pkcs12_too_costly" {
			t.Errorf("count %d rewritten: %v", i, err)
		}
	}
	if err := checkIterations(f, 0, MaxPKCS12Iterations); err != nil {
		t.Errorf("unchanged file: %v", err)
	}
}

// What a version seals is enough to sign, and the original file with its
// password still opens.
func TestCertFieldsSign(t *testing.T) {
	r := mustP12(t, certtest.Options{Password: p12Password, WithCA: true, Key: "rsa"})
	p, err := ParseCertificate(r.PKCS12, p12Password)
	if err != nil {
		t.Fatal(err)
	}
	f, names, err := certFields(p, r.PKCS12, p12Password)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "certificate,chain,password,pkcs12,private_key" {
		t.Errorf("fields = %s", got)
	}
	blk, _ := pem.Decode([]byte(f[certFieldKey]))
	if blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatal("private_key is not a PKCS#8 PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode([]byte(f[certFieldCertificate]))
	leaf, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	verifySigner(t, k.(crypto.Signer), leaf)
	chain, _ := pem.Decode([]byte(f[certFieldChain]))
	if chain == nil || !bytes.Equal(chain.Bytes, r.CA.Raw) {
		t.Error("chain is not the CA")
	}
	if err := leaf.CheckSignatureFrom(r.CA); err != nil {
		t.Errorf("leaf not issued by the chain's CA: %v", err)
	}
	orig, err := base64.StdEncoding.DecodeString(f[certFieldPKCS12])
	if err != nil || !bytes.Equal(orig, r.PKCS12) || f[certFieldPassword] != p12Password {
		t.Error("the original file and password are not kept as uploaded")
	}
}

func TestDecodeBase64(t *testing.T) {
	raw := bytes.Repeat([]byte{0xfb, 0x01, 0x7f}, 50)
	std := base64.StdEncoding.EncodeToString(raw)
	var wrapped strings.Builder
	for i := 0; i < len(std); i += 76 {
		wrapped.WriteString(std[i:min(i+76, len(std))] + "\r\n")
	}
	for name, in := range map[string]string{"ok/standard": std, "ok/wrapped": wrapped.String(),
		"ok/unpadded": base64.RawStdEncoding.EncodeToString(raw[:149])} {
		t.Run(name, func(t *testing.T) {
			got, err := decodeBase64(in)
			if err != nil || !bytes.HasPrefix(raw, got) || len(got) < 149 {
				t.Errorf("decode = %d bytes, %v", len(got), err)
			}
		})
	}
	if _, err := decodeBase64("not*base64!"); faultCode(err) != "invalid_pkcs12" {
		t.Errorf("bad base64: %v", err)
	}
	if _, err := decodeBase64(strings.Repeat("A", 4*(MaxPKCS12Bytes/3+2))); faultCode(err) != "pkcs12_too_large" {
		t.Errorf("too large: %v", err)
	}
}

func TestRefuseCertificatePut(t *testing.T) {
	cert := &store.Credential{Kind: store.KindCertificate}
	bank := &store.Credential{Kind: store.KindBank}
	for _, tc := range []struct {
		name    string
		c       *store.Credential
		created bool
		in      PutInput
		refused bool
	}{
		{"ok/notes of a certificate", cert, false, PutInput{Notes: "company seal"}, false},
		{"ok/kind restated without a secret", cert, false, PutInput{Kind: store.KindCertificate, RotateBy: time.Now()}, false},
		{"ok/a bank login", bank, false, PutInput{Secret: Fields{"password": "x"}}, false},
		{"ok/a new login", bank, true, PutInput{Kind: store.KindBank, Secret: Fields{"password": "x"}}, false},
		{"fail/a certificate's secret", cert, false, PutInput{Secret: Fields{"private_key": "x"}}, true},
		{"fail/a certificate turned into a login", cert, false, PutInput{Kind: store.KindBank}, true},
		{"fail/a new certificate by put", bank, true, PutInput{Kind: store.KindCertificate, Secret: Fields{"pem": "x"}}, true},
		{"fail/a login turned into a certificate", bank, false, PutInput{Kind: store.KindCertificate}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := refuseCertificatePut(tc.c, tc.created, tc.in)
			if tc.refused != (err != nil) || err != nil && faultCode(err) != "use_certificate_upload" {
				t.Errorf("got %v", err)
			}
		})
	}
}

func TestSecretsRedacted(t *testing.T) {
	in := UploadInput{Name: "certs/seal", PKCS12: "TUlJS2Zn", Password: p12Password}
	sec := CertificateSecret{PrivateKey: "-----BEGIN PRIVATE KEY-----", Password: p12Password}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "password", in.Password, "secret", sec)
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", in, in, in, in.Password), fmt.Sprintf("%v %+v %#v", sec, sec, sec), logged.String()} {
		if strings.Contains(s, p12Password) || strings.Contains(s, "TUlJS2Zn") || strings.Contains(s, "PRIVATE KEY") {
			t.Errorf("secret printed: %s", s)
		}
	}
}

// A certificate's view warns, without refusing, about an expired or not
// yet valid certificate and an RSA key shorter than 2048 bits.
func TestCertViewWarnings(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	c := &store.Credential{ID: "crd_1", Name: "certs/seal", Kind: store.KindCertificate}
	for _, tc := range []struct {
		name      string
		alg       string
		nb, na    time.Time
		want      []string
		inMessage string
	}{
		{"ok/valid RSA-2048", "RSA-2048", now.Add(-day), now.Add(90 * day), nil, ""},
		{"ok/valid RSA-4096", "RSA-4096", now.Add(-day), now.Add(90 * day), nil, ""},
		{"ok/valid ECDSA", "ECDSA-P-256", now.Add(-day), now.Add(90 * day), nil, ""},
		{"warn/RSA-1024", "RSA-1024", now.Add(-day), now.Add(90 * day), []string{CertWeakKey}, "RSA-1024"},
		{"warn/RSA-2047", "RSA-2047", now.Add(-day), now.Add(90 * day), []string{CertWeakKey}, "2048 bits"},
		{"warn/expired", "ECDSA-P-256", now.Add(-400 * day), now.Add(-day), []string{CertExpired}, "expired on"},
		{"warn/not yet valid", "ECDSA-P-256", now.Add(day), now.Add(90 * day), []string{CertNotYetValid}, "not valid before"},
		{"warn/expired and RSA-1024", "RSA-1024", now.Add(-400 * day), now.Add(-day), []string{CertExpired, CertWeakKey}, "expired on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := certView(c, &store.Certificate{KeyAlgorithm: tc.alg, NotBefore: tc.nb, NotAfter: tc.na}, nil, now)
			var codes []string
			for _, w := range v.Warnings {
				codes = append(codes, w.Code)
			}
			if !slices.Equal(codes, tc.want) {
				t.Errorf("warnings = %v, want %v", codes, tc.want)
			}
			if tc.want == nil && v.Warning != "" || tc.want != nil && (v.Warning != v.Warnings[0].Message || !strings.Contains(v.Warning, tc.inMessage)) {
				t.Errorf("warning = %q, want the first warning's message, with %q", v.Warning, tc.inMessage)
			}
		})
	}
}

// Reports decide expiry as the sweep's alerts do.
func TestCertAlertDue(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		left time.Duration
		want string
	}{
		{31 * 24 * time.Hour, ""},
		{CertAlertAt30 + time.Second, ""},
		{CertAlertAt30, store.CertAlert30Days},
		{8 * 24 * time.Hour, store.CertAlert30Days},
		{CertAlertAt7, store.CertAlert7Days},
		{time.Second, store.CertAlert7Days},
		{0, store.CertAlertExpired},
		{-400 * 24 * time.Hour, store.CertAlertExpired},
	} {
		if got := certAlertDue(now.Add(tc.left), now); got != tc.want {
			t.Errorf("%s left: %q, want %q", tc.left, got, tc.want)
		}
	}
}

func TestDaysLeft(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{30 * 24 * time.Hour, 30}, {30*24*time.Hour - time.Second, 29}, {time.Hour, 0}, {-time.Hour, -1}, {-48 * time.Hour, -2}} {
		if got := daysLeft(now.Add(tc.d), now); got != tc.want {
			t.Errorf("daysLeft(%s) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// certTenant is a vault with an owner (the caller), an admin and a member
// who holds certificates, over a fresh SQLite store.
type certTenant struct {
	s                    *Service
	ctx                  context.Context
	clock                time.Time
	owner, admin, holder string
}

// tick moves the vault's clock on, so that what happens next is later
// than what happened (rotation flags stand until a later version).
func (ct *certTenant) tick() { ct.clock = ct.clock.Add(time.Minute) }

func newCertTenant(t *testing.T) *certTenant {
	t.Helper()
	s, _ := newService(t)
	ct := &certTenant{s: s, owner: "mem_owner", admin: "mem_admin", holder: "mem_holder", clock: s.now()}
	s.now = func() time.Time { return ct.clock }
	now := s.now()
	err := s.store.Update(t.Context(), func(tx store.Tx) error {
		for _, m := range []struct{ id, role string }{{ct.owner, store.RoleOwner}, {ct.admin, store.RoleAdmin}, {ct.holder, store.RoleMember}} {
			if err := tx.InsertMember(t.Context(), &store.Member{ID: m.id, TenantID: testTenant, Email: m.id + "@acme.example", Name: m.id,
				Role: m.role, Status: store.MemberActive, CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ct.ctx = authz.WithPrincipal(t.Context(), &authz.Principal{Kind: authz.KindMember, ID: ct.owner, TenantID: testTenant, Role: store.RoleOwner})
	return ct
}

// upload keeps a new certificate (or version) ending life after the
// vault's clock.
func (ct *certTenant) upload(t *testing.T, name, holder string, life time.Duration) *Certificate {
	t.Helper()
	ct.tick()
	now := ct.s.now()
	r := mustP12(t, certtest.Options{Password: p12Password, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(life)})
	c, err := ct.s.UploadCertificate(ct.ctx, testTenant, UploadInput{Name: name, PKCS12: SecretText(base64.StdEncoding.EncodeToString(r.PKCS12)),
		Password: p12Password, Holder: holder})
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return c
}

// offboard marks the holder offboarded and runs what offboarding runs for
// certificates, in one transaction, as access.Offboard does.
func (ct *certTenant) offboard(t *testing.T, tx func(store.Tx) store.Tx) []string {
	t.Helper()
	ct.tick()
	var held []string
	err := ct.s.store.Update(ct.ctx, func(stx store.Tx) error {
		m, err := stx.GetMember(ct.ctx, testTenant, ct.holder)
		if err != nil {
			return err
		}
		m.Status, m.OffboardedAt = store.MemberOffboarded, ct.s.now()
		if err := stx.UpdateMember(ct.ctx, m); err != nil {
			return err
		}
		if tx != nil {
			stx = tx(stx)
		}
		held, err = CertificateHolderLeft(ct.ctx, stx, ct.s.now(), testTenant, ct.holder, "ofb_1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(held)
	return held
}

// holderLeft returns the holder-left notifications each admin got (their
// subjects, the same for both) and the details of the audited alerts.
func (ct *certTenant) holderLeft(t *testing.T) (subjects []string, audited []map[string]any) {
	t.Helper()
	err := ct.s.store.View(ct.ctx, func(tx store.Tx) error {
		var each [2][]string
		for i, m := range []string{ct.owner, ct.admin} {
			ns, err := tx.ListNotifications(ct.ctx, testTenant, m, 1000)
			if err != nil {
				return err
			}
			for _, n := range ns {
				if n.Kind == "certificate_holder_left" {
					each[i] = append(each[i], n.Subject)
				}
			}
			slices.Sort(each[i])
		}
		if !slices.Equal(each[0], each[1]) {
			t.Errorf("owner told %q, admin %q", each[0], each[1])
		}
		ns, err := tx.ListNotifications(ct.ctx, testTenant, ct.holder, 1000)
		if err != nil || len(ns) != 0 {
			t.Errorf("the member was told: %d, %v", len(ns), err)
		}
		subjects = each[0]
		evs, err := tx.ListAudit(ct.ctx, store.AuditFilter{LogID: testTenant, AfterSeq: -1, Action: "certificate.holder_left", Limit: 1000})
		for _, e := range evs {
			var d map[string]any
			if err := json.Unmarshal(e.Details, &d); err != nil {
				return err
			}
			d["target"] = e.Target
			audited = append(audited, d)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return subjects, audited
}

// Offboarding tells about every certificate the leaver held whose key the
// vault can still give out: a live one, and one whose current version is
// deleted, since undeleting it takes one call. Undeleting it afterwards
// tells nobody twice; a destroyed one is not found.
func TestCertificateHolderLeft(t *testing.T) {
	ct := newCertTenant(t)
	day := 24 * time.Hour
	live := ct.upload(t, "certs/live", ct.holder, 300*day)
	deleted := ct.upload(t, "certs/deleted", ct.holder, 300*day)
	destroyed := ct.upload(t, "certs/destroyed", ct.holder, 300*day)
	ct.upload(t, "certs/company", "", 300*day)
	if err := ct.s.ChangeVersions(ct.ctx, testTenant, "certs/deleted", SoftDelete, nil); err != nil {
		t.Fatal(err)
	}
	if err := ct.s.ChangeVersions(ct.ctx, testTenant, "certs/destroyed", Destroy, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{live.Credential.ID, deleted.Credential.ID}
	slices.Sort(want)
	if held := ct.offboard(t, nil); !slices.Equal(held, want) {
		t.Fatalf("held = %v, want %v (not %s, destroyed)", held, want, destroyed.Credential.ID)
	}
	subjects, audited := ct.holderLeft(t)
	if len(subjects) != 2 || len(audited) != 2 {
		t.Fatalf("told %q, audited %v", subjects, audited)
	}
	for _, d := range audited {
		isDeleted := d["target"] == deleted.Credential.ID
		if d["holder"] != ct.holder || d["report"] != "ofb_1" || (d["deleted"] == true) != isDeleted {
			t.Errorf("audited %v", d)
		}
	}
	// The notification and the audit entry say the same, each with what
	// is its own: the credential, and how many admins were told.
	bodies := map[string]map[string]any{}
	err := ct.s.store.View(ct.ctx, func(tx store.Tx) error {
		ns, err := tx.ListNotifications(ct.ctx, testTenant, ct.admin, 1000)
		for _, n := range ns {
			var b map[string]any
			if err := json.Unmarshal(n.Body, &b); err != nil {
				return err
			}
			bodies[b["credential"].(string)] = b
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Certificate{live, deleted} {
		want := map[string]any{"credential": c.Credential.ID, "name": c.Credential.Name, "serial": c.Serial, "holder": ct.holder, "report": "ofb_1"}
		if c == deleted {
			want["deleted"] = true
		}
		if got := bodies[c.Credential.ID]; !maps.Equal(got, want) {
			t.Errorf("notified about %s: %v, want %v", c.Credential.Name, got, want)
		}
	}
	for _, d := range audited {
		want := maps.Clone(bodies[d["target"].(string)])
		delete(want, "credential")
		want["target"], want["admins_notified"] = d["target"], 2.0
		if !maps.Equal(d, want) {
			t.Errorf("audited %v, want %v", d, want)
		}
	}
	if !slices.ContainsFunc(subjects, func(s string) bool {
		return strings.Contains(s, "certs/deleted") && strings.Contains(s, "deleted but can be restored")
	}) {
		t.Errorf("the deleted certificate's alert does not say it can be restored: %q", subjects)
	}

	// Undeleting brings back a certificate already told about.
	if err := ct.s.ChangeVersions(ct.ctx, testTenant, "certs/deleted", Undelete, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := ct.s.GetCertificate(ct.ctx, testTenant, "certs/deleted"); err != nil || got.HolderID != ct.holder {
		t.Fatalf("undeleted: %+v, %v", got, err)
	}
	if subjects, _ := ct.holderLeft(t); len(subjects) != 2 {
		t.Errorf("after undelete, told %q", subjects)
	}
}

// A certificate that names a leaver and comes back as another certificate
// than the one told about (an earlier version restored) is told about
// then; the same certificate again is not. Either way it stays flagged for
// rotation: writing its version is no rotation while the holder on record
// has left. A renewal must name a new holder.
func TestCertificateHolderLeftComesBack(t *testing.T) {
	ct := newCertTenant(t)
	day := 24 * time.Hour
	first := ct.upload(t, "certs/seal", ct.holder, 300*day)
	renewed := ct.upload(t, "certs/seal", "", 600*day)
	if renewed.HolderID != ct.holder || renewed.Fingerprint == first.Fingerprint {
		t.Fatalf("renewal = %+v", renewed)
	}
	if held := ct.offboard(t, nil); len(held) != 1 {
		t.Fatalf("held = %v", held)
	}
	if subjects, _ := ct.holderLeft(t); len(subjects) != 1 {
		t.Fatalf("at offboarding, told %q", subjects)
	}
	flagged := func() bool {
		t.Helper()
		rep, err := ct.s.Health(ct.ctx, testTenant)
		if err != nil || len(rep.Credentials) != 1 {
			t.Fatalf("health = %+v, %v", rep, err)
		}
		return rep.Credentials[0].RotationFlagged
	}

	// Version 1, the certificate before the renewal, identifies the
	// leaver too.
	ct.tick()
	if _, err := ct.s.Restore(ct.ctx, testTenant, "certs/seal", 1, nil); err != nil {
		t.Fatal(err)
	}
	subjects, audited := ct.holderLeft(t)
	if len(subjects) != 2 || len(audited) != 2 || audited[1]["report"] != nil || audited[1]["target"] != first.Credential.ID {
		t.Fatalf("after restoring version 1, told %q, audited %v", subjects, audited)
	}
	if !flagged() {
		t.Error("the restored certificate is not flagged for rotation")
	}
	// Restoring the same certificate again (version 3 is version 1's).
	ct.tick()
	if _, err := ct.s.Restore(ct.ctx, testTenant, "certs/seal", 3, nil); err != nil {
		t.Fatal(err)
	}
	if subjects, _ := ct.holderLeft(t); len(subjects) != 2 {
		t.Errorf("after restoring the same certificate, told %q", subjects)
	}
	if !flagged() {
		t.Error("restoring the same certificate cleared its flag")
	}
	// A renewal that names no holder would keep the leaver: it is refused
	// and nothing is stored; nor can the leaver be named.
	renew := func(holder string) error {
		_, err := ct.s.UploadCertificate(ct.ctx, testTenant, UploadInput{Name: "certs/seal", Holder: holder,
			PKCS12:   SecretText(base64.StdEncoding.EncodeToString(mustP12(t, certtest.Options{Password: p12Password}).PKCS12)),
			Password: p12Password})
		return err
	}
	if err := renew(""); faultCode(err) != "holder_offboarded" || !strings.Contains(err.Error(), ct.holder) {
		t.Errorf("a renewal without a holder over a leaver's certificate: %v, want holder_offboarded", err)
	}
	if err := renew(ct.holder); faultCode(err) != "invalid_holder" {
		t.Errorf("a leaver named holder: %v", err)
	}
	if got, err := ct.s.GetCertificate(ct.ctx, testTenant, "certs/seal"); err != nil || got.Version != 4 || got.HolderID != ct.holder {
		t.Errorf("after the refused renewals: %+v, %v", got, err)
	}
	if subjects, _ := ct.holderLeft(t); len(subjects) != 2 || !flagged() {
		t.Errorf("after the refused renewals, told %q, flagged %v", subjects, flagged())
	}
	// A renewal naming a current member is the rotation.
	if c := ct.upload(t, "certs/seal", ct.admin, 700*day); c.HolderID != ct.admin || flagged() {
		t.Errorf("renewed for a current member: holder %s, still flagged", c.HolderID)
	}
	if subjects, _ := ct.holderLeft(t); len(subjects) != 2 {
		t.Errorf("after a renewal for a current member, told %q", subjects)
	}
}

// A renewal over a leaver's certificate that identifies no member says so
// with holder "none": the holder is removed, the renewal is the rotation,
// and the upload's audit entry names the holder it replaced.
func TestCertificateRenewalWithoutHolder(t *testing.T) {
	ct := newCertTenant(t)
	day := 24 * time.Hour
	ct.upload(t, "certs/seal", ct.holder, 300*day)
	ct.offboard(t, nil)
	c := ct.upload(t, "certs/seal", NoHolder, 600*day)
	if c.HolderID != "" || c.Version != 2 {
		t.Errorf("renewed with holder %q: %+v", NoHolder, c)
	}
	rep, err := ct.s.Health(ct.ctx, testTenant)
	if err != nil || len(rep.Credentials) != 1 || rep.Credentials[0].RotationFlagged {
		t.Errorf("health after the renewal = %+v, %v", rep, err)
	}
	var uploads []map[string]any
	err = ct.s.store.View(ct.ctx, func(tx store.Tx) error {
		evs, err := tx.ListAudit(ct.ctx, store.AuditFilter{LogID: testTenant, AfterSeq: -1, Action: "certificate.upload", Limit: 10})
		for _, e := range evs {
			var d map[string]any
			if err := json.Unmarshal(e.Details, &d); err != nil {
				return err
			}
			uploads = append(uploads, d)
		}
		return err
	})
	if err != nil || len(uploads) != 2 || uploads[1]["holder"] != "" || uploads[1]["previous_holder"] != ct.holder {
		t.Errorf("audited uploads: %v, %v", uploads, err)
	}
	// A later renewal without a holder keeps none.
	if c := ct.upload(t, "certs/seal", "", 700*day); c.HolderID != "" {
		t.Errorf("a later renewal: holder %q", c.HolderID)
	}
}

// setCertPage lowers certPage for one test.
func setCertPage(t *testing.T, n int) {
	old := certPage
	certPage = n
	t.Cleanup(func() { certPage = old })
}

// pageCounter counts the store's certificate pages.
type pageCounter struct {
	store.Tx
	limits []int
}

func (p *pageCounter) ListCertificates(ctx context.Context, f store.CertificateFilter) ([]store.Certificate, error) {
	p.limits = append(p.limits, f.Limit)
	return p.Tx.ListCertificates(ctx, f)
}

// viewCounter counts the certificate pages of the store's reads.
type viewCounter struct {
	store.Store
	pc pageCounter
}

func (v *viewCounter) View(ctx context.Context, fn func(store.Tx) error) error {
	return v.Store.View(ctx, func(tx store.Tx) error {
		v.pc.Tx = tx
		return fn(&v.pc)
	})
}

// Whole-tenant readers page through every certificate, not the first
// page only (the store's page is at most store.MaxCertificatePage).
func TestCertificatesPaged(t *testing.T) {
	setCertPage(t, 2)
	ct := newCertTenant(t)
	day := 24 * time.Hour
	var names []string
	for i, life := range []time.Duration{400 * day, 3 * day, 20 * day, 400 * day, 25 * day} {
		name := fmt.Sprintf("certs/c%d", i)
		ct.upload(t, name, ct.holder, life)
		names = append(names, name)
	}
	vc := &viewCounter{Store: ct.s.store}
	ct.s.store = vc
	rep, err := ct.s.Health(ct.ctx, testTenant)
	ct.s.store = vc.Store
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vc.pc.limits, []int{2, 2, 2}) {
		t.Errorf("health read certificates in pages of %v", vc.pc.limits)
	}
	var seen []string
	for _, h := range rep.Credentials {
		if !h.NotAfter.IsZero() {
			seen = append(seen, h.Name)
		}
	}
	if !slices.Equal(seen, names) || rep.Summary.CertificateExpiring != 3 {
		t.Errorf("health knows the expiry of %v, %d expiring; want all of %v, 3 expiring", seen, rep.Summary.CertificateExpiring, names)
	}
	rot, err := ct.s.RotationNeeded(ct.ctx, testTenant, 0)
	if err != nil || len(rot.Credentials) != 3 {
		t.Errorf("rotate-needed = %+v, %v", rot, err)
	}

	pc := &pageCounter{}
	held := ct.offboard(t, func(tx store.Tx) store.Tx { pc.Tx = tx; return pc })
	if len(held) != len(names) || !slices.Equal(pc.limits, []int{2, 2, 2}) {
		t.Errorf("held %v in pages of %v", held, pc.limits)
	}
	if subjects, _ := ct.holderLeft(t); len(subjects) != len(names) {
		t.Errorf("told about %d of %d certificates", len(subjects), len(names))
	}
}

// The certificate list judges the caller's rights per certificate, so it
// pages past certificates the caller may not read until its answer is
// full or they run out: a robot that may read one group sees that
// group's certificates however many others expire sooner.
func TestListCertificatesPagesPastUnreadable(t *testing.T) {
	ct := newCertTenant(t)
	day := 24 * time.Hour
	now := ct.s.now()
	const others = 1000 // the list's first read before it paged, and its cap
	err := ct.s.store.Update(ct.ctx, func(tx store.Tx) error {
		for i := range others {
			c := &store.Credential{TenantID: testTenant, ID: fmt.Sprintf("crd_other%04d", i), Name: fmt.Sprintf("others/c%04d", i),
				Group: "others", Kind: store.KindCertificate, OwnerID: ct.owner, CurrentVersion: 1, MaxVersions: DefaultMaxVersions,
				CreatedBy: ct.owner, CreatedAt: now, UpdatedAt: now}
			if err := tx.InsertCredential(ct.ctx, c); err != nil {
				return err
			}
			if err := tx.InsertCredentialVersion(ct.ctx, &store.CredentialVersion{TenantID: testTenant, CredentialID: c.ID, Version: 1,
				Fields: []string{certFieldCertificate}, Strength: -1, CreatedBy: ct.owner, CreatedAt: now}); err != nil {
				return err
			}
			if err := tx.PutCertificate(ct.ctx, &store.Certificate{TenantID: testTenant, CredentialID: c.ID, Version: 1, Subject: "CN=other",
				Issuer: "CN=CA", Serial: fmt.Sprintf("%04x", i), NotBefore: now, NotAfter: now.Add(day + time.Duration(i)*time.Second),
				Fingerprint: []byte{byte(i), byte(i >> 8)}, KeyAlgorithm: "ECDSA-P-256", CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mine := []*Certificate{ct.upload(t, "mine/seal", "", 300*day), ct.upload(t, "mine/signer", "", 400*day)}
	robot := authz.WithPrincipal(t.Context(), &authz.Principal{Kind: authz.KindRobot, ID: "rbt_lister", TenantID: testTenant,
		Grants: authz.NewGrantSet([]authz.GrantRef{{ID: "grt_1", Perm: authz.CredentialsRead,
			Resource: authz.Resource{Type: authz.ResourceGroup, ID: "mine"}, ExpiresAt: now.Add(day)}})})
	got, err := ct.s.ListCertificates(robot, testTenant, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Credential.Name)
	}
	if want := []string{mine[0].Credential.Name, mine[1].Credential.Name}; !slices.Equal(names, want) {
		t.Errorf("the robot lists %v, want %v", names, want)
	}
	if all, err := ct.s.ListCertificates(ct.ctx, testTenant, 0); err != nil || len(all) != others {
		t.Errorf("the owner lists %d certificates, want the first %d: %v", len(all), others, err)
	}
}
