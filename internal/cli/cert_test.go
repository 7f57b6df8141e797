package cli

import (
	"os"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/custodia-project/custodia/internal/vault/certtest"
)

// mkp12 [-ca] [-expired] [-wrongkey] FILE PASSWORD: write a real PKCS#12
// file (a fresh ECDSA key and its certificate, valid for a year from now;
// -ca issues it from a CA carried in the chain, -expired makes it end
// yesterday, -wrongkey stores another key than the certificate's).
func mkP12(ts *testscript.TestScript, neg bool, args []string) {
	o := certtest.Options{CommonName: "ACME SL sello"}
	for len(args) > 0 && len(args[0]) > 0 && args[0][0] == '-' {
		switch args[0] {
		case "-ca":
			o.WithCA = true
		case "-expired":
			o.NotBefore, o.NotAfter = time.Now().Add(-400*24*time.Hour), time.Now().Add(-24*time.Hour)
		case "-wrongkey":
			o.WrongKey = true
		default:
			ts.Fatalf("mkp12: unknown flag %s", args[0])
		}
		args = args[1:]
	}
	if len(args) != 2 {
		ts.Fatalf("usage: mkp12 [-ca] [-expired] [-wrongkey] FILE PASSWORD")
	}
	o.Password = args[1]
	r, err := certtest.New(o)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), r.PKCS12, 0o600))
}
