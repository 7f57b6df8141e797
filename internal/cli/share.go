package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/client"
	"github.com/custodia-project/custodia/internal/share"
	"github.com/custodia-project/custodia/internal/sharelinks"
)

func shareCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "share",
		Short: "Hand a secret to a person with a one-time link the server cannot read",
		Long: `One-time share links hand a secret to a person over a channel you choose (mail,
chat). The secret is encrypted here, with a key that only the link carries
after its "#": browsers never send that part, and the server stores only the
ciphertext and a hash that lets it recognize the link, so neither the server
nor anything in front of it can read the secret. A link opens once by default
(--views up to 10), expires after 24 hours by default (--expires up to 168h),
and is burned after its last view, when revoked, at expiry, or after 5 wrong
passphrases. A passphrase (--passphrase-file) protects it further: send it
apart from the link. The recipient opens the link in a browser, or with
"custodia share open". See docs/share-links.md.`,
	}

	create := &cobra.Command{
		Use:   "create",
		Short: "Encrypt the secret on stdin and print its link, once",
		Long: `Encrypt the secret read from stdin (up to 64 KiB; one trailing newline is
dropped) and print its link alone on stdout: the link is shown once and
stored nowhere. Details go to stderr. The link points at --link-base, or at
the server address in use when that is not given.`,
		Args: exactArgs(0, "no arguments (the secret is read from stdin)"),
	}
	mk := clientFlags(create, e)
	base := tenantFlag(create)
	var passFile, expires, label, linkBase string
	var views int
	create.Flags().StringVar(&passFile, "passphrase-file", "", "file whose first line is a passphrase the opener must also give")
	create.Flags().IntVar(&views, "views", 1, "how many times the link opens (1 to 10)")
	create.Flags().StringVar(&expires, "expires", "24h", "lifetime of the link (at most 168h, 7 days)")
	create.Flags().StringVar(&label, "label", "", "a note for your own list (not secret; in the audit log)")
	create.Flags().StringVar(&linkBase, "link-base", "", "address the recipient reaches the server on (default: --addr)")
	create.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		b, err := base()
		if err != nil {
			return err
		}
		pass := ""
		if passFile != "" {
			if pass, err = readPassphraseFile(passFile); err != nil {
				return err
			}
		}
		if linkBase == "" {
			linkBase = cc.Addr
		}
		if !strings.HasPrefix(linkBase, "https://") {
			return usageErr("--link-base must be an https:// address")
		}
		// The server checks these too, naming its fields; here they are
		// named as the flags are.
		if views < 1 || views > sharelinks.MaxViews {
			return usageErr("--views must be 1 to %d", sharelinks.MaxViews)
		}
		if _, ok := sharelinks.Lifetime(expires); !ok {
			return usageErr("--expires must be a duration from %s to 168h (7 days), such as 24h", sharelinks.MinTTL)
		}
		secret, err := io.ReadAll(io.LimitReader(e.stdin, share.MaxPlaintext+3))
		if err != nil {
			return err
		}
		secret = dropNewline(secret)
		defer clear(secret)
		p, err := share.Prepare(secret, pass, 0)
		switch {
		case errors.Is(err, share.ErrEmpty):
			return usageErr("stdin is empty: pipe the secret in, e.g. custodia share create < secret.txt")
		case errors.Is(err, share.ErrTooLarge):
			return usageErr("the secret is larger than %d bytes", share.MaxPlaintext)
		case errors.Is(err, share.ErrPassphraseSpaces):
			return usageErr("the passphrase begins or ends with spaces (or is only spaces): they are easily lost on the way to the opener, who then could not open the link")
		case errors.Is(err, share.ErrPassphrase):
			return usageErr("the passphrase must be 1 to %d bytes", share.MaxPassphrase)
		case err != nil:
			return err
		}
		var info sharelinks.Info
		in := sharelinks.CreateInput{Ciphertext: p.Envelope, Verifier: p.Verifier, KDF: p.KDF, MaxViews: views, ExpiresIn: expires, Label: label}
		if err := cl.Do(c.Context(), http.MethodPost, b+"/shares", nil, in, &info); err != nil {
			return err
		}
		link := (&share.Link{Base: linkBase, ID: info.ID, Key: p.LinkKey}).String()
		if cc.Output == "json" {
			return printJSON(e.stdout, struct {
				Link string `json:"link"`
				sharelinks.Info
			}{link, info})
		}
		fmt.Fprintln(e.stdout, link)
		fmt.Fprintf(e.stderr, "Share %s opens %d time(s) until %s", info.ID, info.MaxViews, fmtTime(info.ExpiresAt))
		if info.PassphraseRequired {
			fmt.Fprint(e.stderr, "; it needs the passphrase too: send that by another channel")
		}
		fmt.Fprintln(e.stderr, ". The link is shown only now.")
		return nil
	}

	open := &cobra.Command{
		Use:   "open LINK",
		Short: "Open a share link and print the secret (spends a view)",
		Long: `Open a share link and print its secret on stdout. Give the link as the argument,
or "-" to read it from the first line of stdin (an argument is visible to other
users of this machine while the command runs). The server named in the link
is used; --ca-cert and --insecure-skip-verify apply, no token is needed. A link
with a passphrase takes it from --passphrase-file, or from the terminal.
Exit codes: 3 for a wrong passphrase (5 wrong ones burn the link), 4 when the
link has expired, was already opened or revoked, or never existed.`,
		Args: exactArgs(1, "the link (or - to read it from stdin)"),
	}
	mkOpen := clientFlags(open, e)
	var openPass string
	open.Flags().StringVar(&openPass, "passphrase-file", "", "file whose first line is the link's passphrase")
	open.RunE = func(c *cobra.Command, args []string) error {
		_, cc, err := mkOpen()
		if err != nil {
			return err
		}
		raw := args[0]
		if raw == "-" {
			line, err := bufio.NewReader(e.stdin).ReadString('\n')
			if err != nil && err != io.EOF {
				return err
			}
			raw = line
		}
		l, err := share.ParseLink(raw)
		if err != nil {
			return usageErr("%v", err)
		}
		cl, err := client.New(client.Options{Addr: l.Base, CACert: cc.CACert, InsecureSkipVerify: cc.InsecureSkipVerify})
		if err != nil {
			return &exitError{code: ExitUsage, err: err}
		}
		var pub sharelinks.Public
		if err := cl.Do(c.Context(), http.MethodGet, "/api/v1/shares/"+l.ID, nil, nil, &pub); err != nil {
			return err
		}
		pass := ""
		if pub.KDF != nil {
			switch {
			case openPass != "":
				pass, err = readPassphraseFile(openPass)
			case isTerminal(e.stdin):
				pass, err = readSecretLine(e, "Passphrase: ")
			default:
				return usageErr("this link needs a passphrase: give --passphrase-file")
			}
			if err != nil {
				return err
			}
		}
		keys, err := share.Derive(l.Key, pass, pub.KDF)
		if err != nil {
			return usageErr("%v", err)
		}
		defer keys.Wipe()
		var o sharelinks.Opened
		if err := cl.Do(c.Context(), http.MethodPost, "/api/v1/shares/"+l.ID+"/open", nil, api.OpenShareRequest{Auth: keys.Auth()}, &o); err != nil {
			return err
		}
		secret, err := keys.Open(o.Ciphertext)
		if err != nil {
			return fmt.Errorf("the server's envelope does not open with this link (the view is spent): %w", err)
		}
		defer clear(secret)
		if cc.Output == "json" {
			return printJSON(e.stdout, map[string]any{"secret": string(secret), "views_left": o.ViewsLeft})
		}
		if _, err := e.stdout.Write(secret); err != nil {
			return err
		}
		if secret[len(secret)-1] != '\n' {
			fmt.Fprintln(e.stdout)
		}
		if o.ViewsLeft > 0 {
			fmt.Fprintf(e.stderr, "The link opens %d more time(s).\n", o.ViewsLeft)
		} else {
			fmt.Fprintln(e.stderr, "That was the last view: the link is burned.")
		}
		return nil
	}

	list := &cobra.Command{Use: "list", Short: "List live share links: yours, or all of the tenant's for admins (never content)",
		Args: exactArgs(0, "no arguments")}
	tenantTable(e, list, func(b string, _ []string) (request, error) {
		return request{method: http.MethodGet, path: b + "/shares"}, nil
	}, "ID LABEL VIEWS-LEFT PASSPHRASE FAILED CREATED-BY EXPIRES", func(r *api.ShareList, who func(string) string, row func(...string)) {
		for _, s := range r.Shares {
			row(s.ID, dash(s.Label), fmt.Sprintf("%d/%d", s.ViewsLeft, s.MaxViews), yesNo(s.PassphraseRequired),
				fmt.Sprint(s.FailedAttempts), who(s.CreatedBy), fmtTime(s.ExpiresAt))
		}
	})

	burn := &cobra.Command{Use: "burn ID", Short: "Burn a share link now: it never opens again", Args: exactArgs(1, "a share ID (shr_…)")}
	tenantSub(e, burn, func(b string, args []string) (request, error) {
		return request{method: http.MethodDelete, path: b + "/shares/" + pathEscape(args[0])}, nil
	}, nil, func(args []string) string { return "Burned " + args[0] })

	c.AddCommand(create, open, list, burn)
	return c
}

// readPassphraseFile returns the first line of a file.
func readPassphraseFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", usageErr("--passphrase-file: %v", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", usageErr("--passphrase-file %s: the first line is empty", name)
	}
	return line, nil
}

// dropNewline drops one trailing newline (echo adds it).
func dropNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
