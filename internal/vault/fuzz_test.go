package vault

import (
	"strings"
	"testing"

	"github.com/custodia-project/custodia/internal/fault"
	"github.com/custodia-project/custodia/internal/vault/certtest"
)

// FuzzParseCertificate feeds the upload path's decoder hostile files and
// passwords: it must never panic, answer only client errors that do not
// repeat the password, and never accept a file whose key is not the
// certificate's, nor one without a MAC, whatever the password (checkMAC;
// go-pkcs12 itself skips the check when the password is empty).
func FuzzParseCertificate(f *testing.F) {
	good := mustP12(f, certtest.Options{Password: p12Password, WithCA: true})
	wrong := mustP12(f, certtest.Options{Password: p12Password, WrongKey: true})
	cheap := mustP12(f, certtest.Options{Password: p12Password, Iterations: 0x010203})
	trust, err := certtest.TrustStore("")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.PKCS12, p12Password)
	f.Add(good.PKCS12, "wrong pässwörd")
	f.Add(wrong.PKCS12, p12Password)
	f.Add(costly(cheap.PKCS12), p12Password)
	f.Add(trust, "")
	f.Add([]byte("0\x82\x01\x00garbage"), "")
	f.Add([]byte{}, "x")
	for _, name := range []string{"dsa.p12", "nomac.p12", "rsa512.p12"} {
		f.Add(certtest.OpenSSL(name), certtest.OpenSSLPassword)
	}
	noPassword := mustP12(f, certtest.Options{})
	f.Add(noPassword.PKCS12, "")
	f.Add(stripMAC(f, noPassword.PKCS12), "")
	f.Add(certtest.OpenSSL("nomac-empty.p12"), "")
	f.Add(certtest.OpenSSL("nomac.p12"), "")
	f.Fuzz(func(t *testing.T, der []byte, password string) {
		// Files that ask for up to MaxPKCS12Iterations rounds are
		// legitimate but take seconds each under coverage
		// instrumentation; beyond the cap they are refused before
		// decoding, so they stay. The costly ones are left out of the run
		// (returned from, not skipped: this is about the input, never
		// about the environment).
		if checkIterations(der, 0, 1<<14) != nil && checkIterations(der, 0, MaxPKCS12Iterations) == nil {
			return
		}
		p, err := ParseCertificate(der, password)
		if err != nil {
			fe, ok := fault.As(err)
			if !ok || fe.Kind != fault.Invalid && fe.Kind != fault.TooLarge {
				t.Fatalf("not a client error: %v", err)
			}
			// Messages are ASCII: a password with other bytes can only
			// appear in one by being echoed.
			if len(password) >= 4 && strings.ContainsFunc(password, func(r rune) bool { return r < ' ' || r > '~' }) &&
				strings.Contains(fe.Message, password) {
				t.Fatalf("message %q repeats the password", fe.Message)
			}
			return
		}
		if len(der) > MaxPKCS12Bytes {
			t.Fatalf("accepted %d bytes", len(der))
		}
		if !hasMACData(der) {
			t.Fatal("accepted a file without a MAC")
		}
		if !publicKeyEqual(p.Key.Public(), p.Leaf.PublicKey) {
			t.Fatal("accepted a key that is not the certificate's")
		}
		// The key really signs for the leaf.
		verifySigner(t, p.Key, p.Leaf)
	})
}
