package vault

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

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
	}
	// Files Go cannot make, made with OpenSSL (certtest/testdata/openssl):
	// each refusal names what is wrong and what is supported instead.
	for _, tc := range []struct{ file, code, says string }{
		{"dsa.p12", "unsupported_key", "a DSA key"},
		{"ed448.p12", "unsupported_key", "an Ed448 key"},
		{"brainpool.p12", "unsupported_key", "elliptic curve"},
		{"rsa512.p12", "unsupported_key", "RSA-512"},
		{"nomac.p12", "unsupported_pkcs12", "no integrity check (MAC)"},
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
			if strings.Contains(fe.Message, tc.password) {
				t.Error("the message repeats the password")
			}
			if d := time.Since(start); tc.code == "pkcs12_too_costly" && d > time.Second {
				t.Errorf("refusing a costly file took %s", d)
			}
		})
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
