// Package certtest makes real PKCS#12 files for tests: a fresh key, a
// certificate for it (self-signed, or issued by a fresh CA that rides along
// in the chain), encoded with go-pkcs12. Files Go cannot make (DSA keys,
// no MAC) were made once with OpenSSL and are served by OpenSSL. Only
// tests import it.
package certtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"embed"
	"math/big"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// Options shape the file. Zero values give an ECDSA P-256 certificate
// for "Test Holder" valid for a year from NotBefore (default now).
type Options struct {
	CommonName string
	// SerialNumber is the subject's serialNumber attribute (a national
	// ID on personal certificates).
	SerialNumber string
	NotBefore    time.Time
	NotAfter     time.Time
	Password     string
	// Key is "ecdsa" (default), "rsa" or "ed25519".
	Key string
	// RSABits is the size of an "rsa" key (0: 2048; Go makes none under
	// 1024).
	RSABits int
	// WithCA issues the leaf from a new CA and puts the CA in the chain.
	WithCA bool
	// WrongKey stores another key than the certificate's.
	WrongKey bool
	// Iterations overrides the key-derivation iterations (0: 2048).
	Iterations int
}

// Result is a file and what is inside it.
type Result struct {
	PKCS12 []byte
	Leaf   *x509.Certificate
	CA     *x509.Certificate
	Key    crypto.Signer
}

func newKey(kind string, rsaBits int) (crypto.Signer, error) {
	switch kind {
	case "rsa":
		if rsaBits == 0 {
			rsaBits = 2048
		}
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// New makes a PKCS#12 file.
func New(o Options) (*Result, error) {
	if o.CommonName == "" {
		o.CommonName = "Test Holder"
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = o.NotBefore.Add(365 * 24 * time.Hour)
	}
	key, err := newKey(o.Key, o.RSABits)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.CommonName, SerialNumber: o.SerialNumber, Organization: []string{"ACME SL"}, Country: []string{"ES"}},
		NotBefore:    o.NotBefore, NotAfter: o.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection},
	}
	res := &Result{Key: key}
	parent, signer := tmpl, key
	if o.WithCA {
		caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Issuing CA", Organization: []string{"Test CA"}},
			NotBefore: o.NotBefore.Add(-time.Hour), NotAfter: o.NotAfter.Add(365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign}
		caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
		if err != nil {
			return nil, err
		}
		if res.CA, err = x509.ParseCertificate(caDER); err != nil {
			return nil, err
		}
		parent, signer = res.CA, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, err
	}
	if res.Leaf, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	stored := key
	if o.WrongKey {
		if stored, err = newKey(o.Key, o.RSABits); err != nil {
			return nil, err
		}
	}
	var chain []*x509.Certificate
	if res.CA != nil {
		chain = append(chain, res.CA)
	}
	enc := pkcs12.Modern
	if o.Iterations > 0 {
		enc = enc.WithIterations(o.Iterations)
	}
	if res.PKCS12, err = enc.Encode(stored, res.Leaf, chain, o.Password); err != nil {
		return nil, err
	}
	return res, nil
}

// TrustStore makes a PKCS#12 file holding certificates and no key.
func TrustStore(password string) ([]byte, error) {
	r, err := New(Options{})
	if err != nil {
		return nil, err
	}
	return pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{r.Leaf}, password)
}

// OpenSSLPassword opens every file OpenSSL returns but "nomac-empty.p12",
// whose password is empty.
const OpenSSLPassword = "Kx-cert-pass-9261"

//go:embed testdata/openssl/*.p12
var openssl embed.FS

// OpenSSL returns a PKCS#12 file made with OpenSSL (testdata/openssl, whose
// README.md says how and what each holds): "dsa.p12", "ed448.p12",
// "brainpool.p12", "rsa512.p12", "nomac.p12" or "nomac-empty.p12".
func OpenSSL(name string) []byte {
	b, err := openssl.ReadFile("testdata/openssl/" + name)
	if err != nil {
		panic(err)
	}
	return b
}
