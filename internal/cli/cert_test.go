package cli

import (
	"os"
	"strconv"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/custodia-project/custodia/internal/vault/certtest"
)

// mkp12 [-ca] [-expired] [-wrongkey] [-rsa1024] [-days N] [-openssl NAME] FILE PASSWORD:
// write a real PKCS#12 file (a fresh ECDSA key and its certificate, valid
// for a year from now; -ca issues it from a CA carried in the chain,
// -expired makes it end yesterday, -wrongkey stores another key than the
// certificate's, -rsa1024 makes the key RSA-1024, -days makes it end N
// days from now). -openssl writes certtest's OpenSSL-made file NAME
// instead, whose password is certtest.OpenSSLPassword.
func mkP12(ts *testscript.TestScript, neg bool, args []string) {
	o := certtest.Options{CommonName: "ACME SL sello"}
	openssl := ""
	for len(args) > 0 && len(args[0]) > 0 && args[0][0] == '-' {
		switch args[0] {
		case "-ca":
			o.WithCA = true
		case "-expired":
			o.NotBefore, o.NotAfter = time.Now().Add(-400*24*time.Hour), time.Now().Add(-24*time.Hour)
		case "-wrongkey":
			o.WrongKey = true
		case "-rsa1024":
			o.Key, o.RSABits = "rsa", 1024
		case "-days", "-openssl":
			if len(args) < 2 {
				ts.Fatalf("mkp12: %s needs a value", args[0])
			}
			if args[0] == "-openssl" {
				openssl = args[1]
			} else {
				days, err := strconv.Atoi(args[1])
				ts.Check(err)
				o.NotAfter = time.Now().Add(time.Duration(days)*24*time.Hour + time.Hour)
			}
			args = args[1:]
		default:
			ts.Fatalf("mkp12: unknown flag %s", args[0])
		}
		args = args[1:]
	}
	if len(args) != 2 {
		ts.Fatalf("usage: mkp12 [-ca] [-expired] [-wrongkey] [-rsa1024] [-days N] [-openssl NAME] FILE PASSWORD")
	}
	if openssl != "" {
		if args[1] != certtest.OpenSSLPassword {
			ts.Fatalf("mkp12: the password of OpenSSL-made files is %s", certtest.OpenSSLPassword)
		}
		ts.Check(os.WriteFile(ts.MkAbs(args[0]), certtest.OpenSSL(openssl), 0o600))
		return
	}
	o.Password = args[1]
	r, err := certtest.New(o)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), r.PKCS12, 0o600))
}
