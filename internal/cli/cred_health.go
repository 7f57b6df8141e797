package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/client"
	"github.com/custodia-project/custodia/internal/secretcheck"
	cv "github.com/custodia-project/custodia/internal/vault"
)

// credPutCmd writes a credential. The secret never crosses the wire in
// the clear, even inside TLS: it is sealed to the tenant's public key
// first (a sealed submission), so a proxy or web tier in between cannot
// read it.
func credPutCmd(e *env) *cobra.Command {
	put := &cobra.Command{
		Use:   "put NAME",
		Short: "Create a credential or write its next version; the secret is read from stdin or generated",
		Long: `Create a credential or write its next version. The secret comes from stdin:
a JSON object of fields ({"password": "...", "pin": "..."}), or else its first
line is the "password" field. With --generate a new password is made by the
institution's rules (--rule, else --institution or --kind, else the stored
credential's), stored, and printed once so you can set it at the institution.
Without --secret-stdin or --generate only metadata changes; then stdin must
be a terminal or /dev/null, so that a secret piped in without --secret-stdin
is refused rather than dropped.

The secret is sealed to the organization's public key before it is sent
(docs/sealed-submission.md). The answer warns, without refusing, when the
password is weak, known from breaches, or used by another credential.
Second factors (coordinate cards, authenticator seeds, one-time code lists,
token serials) are refused: a stolen vault must not be enough to move money.`,
		Args: exactArgs(1, "the credential's name"),
	}
	var in cv.PutInput
	var rotateBy, rule string
	var labels []string
	var cas int
	var secretStdin, generate bool
	fs := put.Flags()
	fs.StringVar(&in.Kind, "kind", "", "bank, tax_portal, payroll, invoicing or other (a certificate goes in with cert upload)")
	fs.StringVar(&in.Institution, "institution", "", "the bank or portal")
	fs.StringVar(&in.LoginID, "login-id", "", "the user name or ID at the institution (not secret)")
	fs.StringVar(&in.Notes, "notes", "", "notes (not secret; never a second factor)")
	fs.StringVar(&in.Group, "group", "", "group for grants (default: the name's first segment)")
	fs.StringVar(&rotateBy, "rotate-by", "", "date the secret should be changed by (YYYY-MM-DD)")
	fs.StringSliceVar(&labels, "label", nil, "label key=value (repeatable)")
	fs.IntVar(&in.MaxVersions, "max-versions", 0, "versions kept (default 10)")
	fs.IntVar(&cas, "cas", -1, "check-and-set: the version this write replaces (0: must not exist)")
	var casRequired bool
	fs.BoolVar(&casRequired, "cas-required", false, "require --cas of every later write and restore (--cas-required=false: no longer)")
	fs.BoolVar(&secretStdin, "secret-stdin", false, "read the secret from stdin")
	fs.BoolVar(&generate, "generate", false, "generate the password by the institution's rules, store it and print it once")
	fs.StringVar(&rule, "rule", "", "password rule for --generate: "+strings.Join(secretcheck.RuleNames(), ", "))
	mk := clientFlags(put, e)
	base := tenantFlag(put)
	put.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		b, err := base()
		if err != nil {
			return err
		}
		in.Name = args[0]
		if rotateBy != "" {
			t, err := time.Parse("2006-01-02", rotateBy)
			if err != nil {
				return usageErr("--rotate-by must be a date like 2027-03-31")
			}
			in.RotateBy = t
		}
		for _, l := range labels {
			k, v, ok := strings.Cut(l, "=")
			if !ok || k == "" {
				return usageErr("--label must be key=value")
			}
			if in.Labels == nil {
				in.Labels = map[string]string{}
			}
			in.Labels[k] = v
		}
		if cas >= 0 {
			in.CAS = &cas
		}
		if fs.Changed("cas-required") {
			in.CASRequired = &casRequired
		}
		if rule != "" && !generate {
			return usageErr("--rule goes with --generate")
		}
		var fields cv.Fields
		var generated string
		switch {
		case secretStdin && generate:
			return usageErr("give --secret-stdin or --generate, not both")
		case secretStdin:
			if fields, err = readSecret(e); err != nil {
				return err
			}
		case generate:
			r, err := generationRule(c.Context(), cl, b, in, rule)
			if err != nil {
				return err
			}
			if generated, err = secretcheck.Generate(r); err != nil {
				return err
			}
			fields = cv.Fields{"password": generated}
			fmt.Fprintf(e.stderr, "Generated a password by rule %s.\n", r.Name)
		}
		if fields != nil {
			var pub client.PublicKey
			if err := cl.Do(c.Context(), http.MethodGet, b+"/public-key", nil, nil, &pub); err != nil {
				return fmt.Errorf("fetch the organization's public key to seal the secret: %w", err)
			}
			if in.SealedSecret, err = client.SealSecret(pub, in.Name, fields, in.CAS); err != nil {
				return err
			}
			clear(fields)
		}
		if fields == nil && stdinHoldsInput(e) {
			// A secret piped in without --secret-stdin would be dropped
			// while the command reports success.
			return usageErr("stdin is a pipe or a file, but without --secret-stdin it is not read: add --secret-stdin to store it as the secret, " +
				"or run with stdin from a terminal or /dev/null to change metadata only")
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), http.MethodPost, b+"/credentials", nil, in, &raw); err != nil {
			if generated != "" {
				fmt.Fprintln(e.stderr, "The generated password was not stored; nothing changed. Do not set it at the institution.")
			}
			return err
		}
		if cc.Output == "json" {
			if generated != "" {
				var m map[string]any
				if err := json.Unmarshal(raw, &m); err != nil {
					return err
				}
				m["generated_password"] = generated
				return printJSON(e.stdout, m)
			}
			return output(e.stdout, cc, raw, nil)
		}
		if err := printCred(e, raw); err != nil {
			return err
		}
		if generated != "" {
			fmt.Fprintf(e.stdout, "%-14s %s\n", "Password:", generated)
			fmt.Fprintln(e.stderr, "This is the only time the password is shown: set it at the institution now.")
		}
		return nil
	}
	return put
}

// stdinHoldsInput reports whether stdin is a pipe or a regular file: what
// a script pipes in, and not a terminal or /dev/null.
func stdinHoldsInput(e *env) bool {
	f, ok := e.stdin.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && (fi.Mode()&os.ModeNamedPipe != 0 || fi.Mode().IsRegular())
}

// generationRule picks the password rule for --generate: --rule, else the
// institution's or kind's rule, from the flags or the stored credential.
func generationRule(ctx context.Context, cl *client.Client, base string, in cv.PutInput, name string) (secretcheck.Rule, error) {
	if name != "" {
		if !slices.Contains(secretcheck.RuleNames(), name) {
			return secretcheck.Rule{}, usageErr("--rule must be one of %s", strings.Join(secretcheck.RuleNames(), ", "))
		}
		return secretcheck.RuleFor(name), nil
	}
	inst, kind := in.Institution, in.Kind
	if inst == "" || kind == "" {
		var cur cv.Credential
		err := cl.Do(ctx, http.MethodGet, base+"/credentials/"+pathEscape(in.Name), nil, nil, &cur)
		var ae *client.Error
		switch {
		case err == nil:
			inst, kind = cmpOr(inst, cur.Institution), cmpOr(kind, cur.Kind)
		case errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusForbidden):
			// A new credential, or one the caller may write but not read.
		default:
			return secretcheck.Rule{}, err
		}
	}
	return ruleFor(inst, kind), nil
}

// ruleFor is the institution's rule when it names one (a rule or a kind),
// else the kind's, else the generic rule.
func ruleFor(institution, kind string) secretcheck.Rule {
	if r := secretcheck.RuleFor(institution); r.Name != secretcheck.RuleGeneric {
		return r
	}
	return secretcheck.RuleFor(kind)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// credHealthCmds are cred generate, cred health and cred rotate-needed.
func credHealthCmds(e *env) []*cobra.Command {
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Generate a password by an institution's rules (locally; nothing is stored or sent)",
		Long: `Generate a password that the institution's portal accepts, from this machine's
cryptographic random source. --rule names a built-in rule; --institution or
--kind picks one (a bank gets letters and digits, 12 characters; a tax portal
or payroll system 16 characters with a few symbols; anything else 20
characters). To store it at once, use "cred put NAME --generate".`,
		Args: exactArgs(0, "no arguments"),
	}
	var inst, kind, rule, out string
	gen.Flags().StringVar(&inst, "institution", "", "institution kind or rule name (bank, tax_portal, payroll, invoicing, other)")
	gen.Flags().StringVar(&kind, "kind", "", "the credential's kind, when --institution names none")
	gen.Flags().StringVar(&rule, "rule", "", "a built-in rule: "+strings.Join(secretcheck.RuleNames(), ", "))
	gen.Flags().StringVarP(&out, "output", "o", "text", "output format: text or json")
	gen.RunE = func(c *cobra.Command, _ []string) error {
		if out != "text" && out != "json" {
			return usageErr("--output must be text or json")
		}
		r := ruleFor(inst, kind)
		if rule != "" {
			if !slices.Contains(secretcheck.RuleNames(), rule) {
				return usageErr("--rule must be one of %s", strings.Join(secretcheck.RuleNames(), ", "))
			}
			r = secretcheck.RuleFor(rule)
		}
		pw, err := secretcheck.Generate(r)
		if err != nil {
			return err
		}
		if out == "json" {
			return printJSON(e.stdout, map[string]any{"password": pw, "rule": r.Name, "length": len(pw)})
		}
		fmt.Fprintln(e.stdout, pw)
		fmt.Fprintf(e.stderr, "Rule %s, %d characters.\n", r.Name, len(pw))
		if rule == "" && inst != "" && secretcheck.RuleFor(inst).Name == secretcheck.RuleGeneric && !strings.EqualFold(inst, secretcheck.RuleGeneric) {
			fmt.Fprintf(e.stderr, "(--institution %q names no rule or kind; give one of %s, or --rule)\n", inst, strings.Join(secretcheck.RuleNames(), ", "))
		}
		return nil
	}

	health := &cobra.Command{
		Use:   "health",
		Short: "Health of the credentials you may read: weak, reused, breached, overdue, flagged, owner left, certificates expiring",
		Long: `Report every credential you may read with what is wrong with it: a weak or
breached password, one shared with other credentials (found by comparing keyed
fingerprints: no password is read), a rotate-by date that passed, a flag for
rotation left by an offboarding, an owner who left, a certificate that expired
or expires within 30 days (as its alerts decide), a certificate's RSA key
shorter than 2048 bits. Never a secret.`,
		Args: exactArgs(0, "no arguments"),
	}
	tenantSub(e, health, func(b string, _ []string) (request, error) {
		return request{method: http.MethodGet, path: b + "/credentials-health"}, nil
	}, func(raw json.RawMessage) error {
		r, err := decodeInto[cv.HealthReport](raw)
		if err != nil {
			return err
		}
		var rows [][]string
		for _, c := range r.Credentials {
			strength := "-"
			if c.Strength >= 0 {
				strength = fmt.Sprintf("%d/4", c.Strength)
			}
			problems := "ok"
			if len(c.Problems) > 0 {
				var ps []string
				for _, p := range c.Problems {
					if p == cv.ProblemReused {
						p = fmt.Sprintf("reused(%d)", c.ReusedCount)
					}
					ps = append(ps, p)
				}
				problems = strings.Join(ps, ",")
			}
			rows = append(rows, []string{c.Name, strength, problems, c.OwnerID, fmtDate(c.RotateBy)})
		}
		if err := table(e, "NAME STRENGTH PROBLEMS OWNER ROTATE-BY", rows); err != nil {
			return err
		}
		s := r.Summary
		noun := "credentials"
		if s.Credentials == 1 {
			noun = "credential"
		}
		fmt.Fprintf(e.stdout, "\n%d %s: %d healthy, %d weak, %d breached, %d reused, %d overdue, %d flagged for rotation, %d owner left",
			s.Credentials, noun, s.Healthy, s.Weak, s.Breached, s.Reused, s.RotationOverdue, s.RotationFlagged, s.OwnerLeft)
		if n := s.CertificateExpired + s.CertificateExpiring; n > 0 {
			fmt.Fprintf(e.stdout, ", %d certificate(s) expired and %d expiring within 30 days", s.CertificateExpired, s.CertificateExpiring)
		}
		if s.WeakKey > 0 {
			fmt.Fprintf(e.stdout, ", %d certificate(s) with a weak key", s.WeakKey)
		}
		if s.Unchecked > 0 {
			fmt.Fprintf(e.stdout, ", %d unchecked (written before health checks: write them again)", s.Unchecked)
		}
		fmt.Fprintln(e.stdout, ".")
		return nil
	}, nil)

	rot := &cobra.Command{
		Use:   "rotate-needed",
		Short: "Credentials to rotate and why: rotate-by passed or near, flagged by an offboarding, breached, owner left, certificate expiring",
		Args:  exactArgs(0, "no arguments"),
	}
	var within string
	rot.Flags().StringVar(&within, "within", "",
		"also list rotate-by dates (and certificates' expiry, past 30 days) this close: days (14d) or a duration (36h); default 14d")
	tenantSub(e, rot, func(b string, _ []string) (request, error) {
		q := url.Values{}
		if within != "" {
			if _, err := api.ParseWindow("within", within, false); err != nil {
				return request{}, usageErr("--within must be days such as 14d or a duration such as 36h, at most 3650d")
			}
			q.Set("within", within)
		}
		return request{method: http.MethodGet, path: b + "/credentials-rotation", query: q}, nil
	}, func(raw json.RawMessage) error {
		r, err := decodeInto[cv.RotationList](raw)
		if err != nil {
			return err
		}
		if len(r.Credentials) == 0 {
			fmt.Fprintf(e.stdout, "Nothing needs rotating (looking %s ahead).\n", r.Within)
			return nil
		}
		var rows [][]string
		for _, c := range r.Credentials {
			for i, rs := range c.Reasons {
				name := c.Name
				if i > 0 {
					name = ""
				}
				rows = append(rows, []string{name, rs.Code, rs.Detail})
			}
		}
		return table(e, "NAME REASON DETAIL", rows)
	}, nil)
	return []*cobra.Command{gen, health, rot}
}
