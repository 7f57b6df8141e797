package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/custodia-project/custodia/internal/api"
	cv "github.com/custodia-project/custodia/internal/vault"
)

func certCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "cert",
		Short: "Keep digital certificates (PKCS#12): upload, list by expiry, show, and fetch to sign",
		Long: `A digital certificate is kept as a credential of kind "certificate": the
PKCS#12 file and its key are sealed, write-only for people like every
credential, and a robot holding a credentials.fetch grant fetches it to sign
("cert fetch --purpose"). Its subject, issuer, serial, validity and holder
are shown to whoever may read it, and the tenant's admins are told 30 and 7
days before it expires, when it expires, and when its holder is offboarded;
"cred health" and "cred rotate-needed" list it from 30 days before it
expires. Only the current version counts, and only while it is not deleted
or destroyed. Versions, restore, revealable and delete are the "cred"
commands.`,
	}

	upload := &cobra.Command{
		Use:   "upload NAME",
		Short: "Upload a PKCS#12 file (.p12/.pfx) with its password; the next version if NAME exists",
		Long: `Upload a PKCS#12 file (.p12 or .pfx, exported with its private key). The
file's password comes from --password-file, from the first line of stdin
with --password-stdin, or from a prompt on a terminal; never from an
argument. The file is checked (password, key present, key belongs to the
certificate) before anything is stored. An expired certificate, and one
whose RSA key is shorter than 2048 bits, is kept with a warning. DSA,
Ed448 and Brainpool keys, RSA keys shorter than 1024 bits, and files
without a MAC (openssl pkcs12 -nomac) are refused, saying why.`,
		Args: exactArgs(1, "the certificate's name, e.g. certs/fnmt/seal"),
	}
	var in cv.UploadInput
	var file, pwFile, rotateBy string
	var pwStdin bool
	fs := upload.Flags()
	fs.StringVar(&file, "file", "", "the PKCS#12 file")
	fs.StringVar(&pwFile, "password-file", "", "a file holding the PKCS#12 password (its first line)")
	fs.BoolVar(&pwStdin, "password-stdin", false, "read the PKCS#12 password from the first line of stdin")
	fs.StringVar(&in.Holder, "holder", "", `the member the certificate identifies (email or ID), or "none" when it identifies no member`)
	fs.StringVar(&in.Notes, "notes", "", "notes (not secret)")
	fs.StringVar(&in.Group, "group", "", "group for grants, on a new certificate (default: the name's first segment)")
	fs.StringVar(&rotateBy, "rotate-by", "", "date it should be renewed by (YYYY-MM-DD)")
	tenantSub(e, upload, func(b string, args []string) (request, error) {
		in.Name = args[0]
		if file == "" {
			return request{}, usageErr("--file is required: the .p12 or .pfx file")
		}
		if pwFile != "" && pwStdin {
			return request{}, usageErr("give --password-file or --password-stdin, not both")
		}
		der, err := os.ReadFile(file)
		if err != nil {
			return request{}, usageErr("--file: %v", err)
		}
		if len(der) > cv.MaxPKCS12Bytes {
			return request{}, usageErr("--file: %s is larger than %d bytes; is it a PKCS#12 file?", file, cv.MaxPKCS12Bytes)
		}
		pw, err := p12Password(e, pwFile, pwStdin)
		if err != nil {
			return request{}, err
		}
		in.PKCS12, in.Password = cv.SecretText(base64.StdEncoding.EncodeToString(der)), cv.SecretText(pw)
		if rotateBy != "" {
			t, err := time.Parse(time.DateOnly, rotateBy)
			if err != nil {
				return request{}, usageErr("--rotate-by must be a date like 2027-03-31")
			}
			in.RotateBy = t
		}
		return request{method: http.MethodPost, path: b + "/certificates", body: in}, nil
	}, func(raw json.RawMessage) error { return printCert(e, raw) }, nil)

	list := &cobra.Command{Use: "list", Short: "List certificates, soonest expiry first (never keys)", Args: exactArgs(0, "no arguments")}
	var within string
	list.Flags().StringVar(&within, "expiring-within", "", "only those expiring within this long, e.g. 30d (expired ones included)")
	tenantTable(e, list, func(b string, _ []string) (request, error) {
		q := url.Values{}
		if within != "" {
			if _, err := api.ParseWindow("expiring_within", within, true); err != nil {
				return request{}, usageErr("--expiring-within must be days such as 30d or a duration such as 72h, at most 3650d")
			}
			q.Set("expiring_within", within)
		}
		return request{method: http.MethodGet, path: b + "/certificates", query: q}, nil
	}, "NAME EXPIRES DAYS-LEFT HOLDER SUBJECT", func(r *api.CertificateList, who func(string) string, row func(...string)) {
		for _, c := range r.Certificates {
			days := fmt.Sprint(c.DaysLeft)
			if c.Expired {
				days = "expired"
			}
			row(c.Credential.Name, fmtDate(c.NotAfter), days, dash(who(c.HolderID)), c.Subject)
		}
	})

	show := &cobra.Command{Use: "show NAME", Short: "Show a certificate's subject, issuer, serial, validity and holder (never its key)",
		Args: exactArgs(1, "the certificate's name or ID")}
	tenantSub(e, show, func(b string, args []string) (request, error) {
		return request{method: http.MethodGet, path: b + "/certificates/" + pathEscape(args[0])}, nil
	}, func(raw json.RawMessage) error { return printCert(e, raw) }, nil)

	c.AddCommand(upload, list, show, certFetchCmd(e))
	return c
}

// p12Password reads the PKCS#12 password from a file, stdin, or a
// terminal prompt. An empty password is allowed: some files have none.
func p12Password(e *env, file string, fromStdin bool) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usageErr("--password-file: %v", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimSuffix(line, "\r"), nil
	}
	if !fromStdin {
		f, ok := e.stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", usageErr("give the PKCS#12 password with --password-file or --password-stdin")
		}
	}
	return readSecretLine(e, "PKCS#12 password: ")
}

func certFetchCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "fetch NAME",
		Short: "Robots: fetch a certificate and its key under a lease, with --purpose, to sign",
		Long: `Fetch a certificate under a lease (robots with a credentials.fetch grant).
With --out-dir the leaf, its chain and the private key are written there as
cert.pem, chain.pem and key.pem (mode 0600; chain.pem is empty when the file
held no CA certificates, so that no older chain stays beside a new
certificate); otherwise they are printed as
PEM, or as JSON (with the original file and its password) with -o json.`,
		Args: exactArgs(1, "the certificate's name or ID"),
	}
	var in cv.FetchInput
	var outDir string
	c.Flags().StringVar(&in.Purpose, "purpose", "", "why it is needed now (audited)")
	c.Flags().StringVar(&in.TTL, "ttl", "", "lease lifetime (default 5m, at most 1h)")
	c.Flags().StringVar(&outDir, "out-dir", "", "write cert.pem, chain.pem and key.pem here (mode 0600)")
	base := tenantFlag(c)
	mk := clientFlags(c, e)
	c.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		b, err := base()
		if err != nil {
			return err
		}
		if in.Purpose == "" {
			return usageErr("--purpose is required: say why the certificate is needed now")
		}
		if outDir != "" && cc.Output == "json" {
			return usageErr("--out-dir writes files; -o json prints them instead: choose one")
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodPost, b+"/certificates/"+pathEscape(args[0])+"/fetch", nil, in, &raw); err != nil {
			return err
		}
		if cc.Output == "json" {
			return output(e.stdout, cc, raw, nil)
		}
		s, err := decodeInto[cv.CertificateSecret](raw)
		if err != nil {
			return err
		}
		if outDir == "" {
			fmt.Fprint(e.stdout, s.Certificate+s.Chain+s.PrivateKey)
		} else if err := writeCertFiles(outDir, s); err != nil {
			return err
		} else {
			fmt.Fprintf(e.stdout, "Wrote %s, %s and %s\n", filepath.Join(outDir, "cert.pem"), filepath.Join(outDir, "chain.pem"),
				filepath.Join(outDir, "key.pem"))
		}
		fmt.Fprintf(e.stderr, "%s version %d; lease %s until %s.\n", s.Name, s.Version, s.LeaseID, fmtTime(s.ExpiresAt))
		return nil
	}
	return c
}

// writeCertFiles writes the fetched parts, readable by their owner only.
func writeCertFiles(dir string, s *cv.CertificateSecret) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, body := range map[string]string{"cert.pem": s.Certificate, "chain.pem": s.Chain, "key.pem": s.PrivateKey} {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		// An existing file keeps its mode on open; the key must not.
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return err
		}
		if _, err := f.WriteString(body); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

func printCert(e *env, raw json.RawMessage) error {
	c, err := decodeInto[cv.Certificate](raw)
	if err != nil {
		return err
	}
	days := fmt.Sprint(c.DaysLeft)
	if c.Expired {
		days = "expired"
	}
	rv := "nobody (write-only)"
	if len(c.Credential.Revealable) > 0 {
		rv = strings.Join(c.Credential.Revealable, ", ")
	}
	fields(e, "Name", c.Credential.Name, "ID", c.Credential.ID, "Subject", c.Subject, "Issuer", c.Issuer, "Serial", c.Serial,
		"SHA-256", c.Fingerprint, "Key", c.KeyAlgorithm, "Valid from", fmtTime(c.NotBefore), "Valid until", fmtTime(c.NotAfter),
		"Days left", days, "Holder", dash(c.HolderID), "Version", fmt.Sprint(c.Version), "Owner", c.Credential.OwnerID,
		"Fields", strings.Join(c.Credential.Fields, ", "), "Rotate by", fmtDate(c.Credential.RotateBy), "Revealable to", rv)
	for _, w := range c.Warnings {
		fmt.Fprintf(e.stderr, "Warning (%s): %s\n", w.Code, w.Message)
	}
	if len(c.Warnings) == 0 && c.Warning != "" {
		// A server that says one warning only.
		fmt.Fprintln(e.stderr, "Warning:", c.Warning)
	}
	return nil
}
