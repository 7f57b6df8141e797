package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/custodia-project/custodia/internal/api"
	"github.com/custodia-project/custodia/internal/client"
)

// request is one API call a command makes.
type request struct {
	method, path string
	query        url.Values
	body         any
}

// apiCmd gives c the client flags and a RunE that builds one request with
// req (after the flags and environment are resolved, so req sees them),
// sends it and prints the answer with text, or the raw body with -o json.
// An empty answer (204) prints done in text mode and {} in JSON mode.
func apiCmd(e *env, c *cobra.Command, req func(args []string) (request, error), text func(raw json.RawMessage) error, done func(args []string) string) *cobra.Command {
	mk := clientFlags(c, e)
	c.RunE = func(c *cobra.Command, args []string) error {
		cl, cc, err := mk()
		if err != nil {
			return err
		}
		r, err := req(args)
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := cl.Do(c.Context(), r.method, r.path, r.query, r.body, &raw); err != nil {
			return err
		}
		if len(raw) == 0 {
			if cc.Output == "json" {
				fmt.Fprintln(e.stdout, "{}")
				return nil
			}
			if done != nil {
				fmt.Fprintln(e.stdout, done(args))
			}
			return nil
		}
		return output(e.stdout, cc, raw, func() error { return text(raw) })
	}
	return c
}

// tenantFlag adds --tenant (also read from CUSTODIA_TENANT) and returns a
// function giving the tenant's API base once the flags are resolved. With
// neither, the tenant is the caller's own: a member's session or token, or
// a robot's token, belongs to one tenant, which the server names
// (GET /api/v1/me); an operator must say which.
func tenantFlag(c *cobra.Command) func() (string, error) {
	var tenant string
	c.Flags().StringVar(&tenant, "tenant", "", "tenant ID or slug (or CUSTODIA_TENANT; default: your token's own tenant)")
	return func() (string, error) {
		if tenant == "" {
			var err error
			if tenant, err = ownTenant(c, "--tenant is required (or set CUSTODIA_TENANT)"); err != nil {
				return "", err
			}
		}
		return "/api/v1/tenants/" + pathEscape(tenant), nil
	}
}

// ownTenant asks the server which tenant the command's token belongs to,
// with the client its clientFlags made (which must have run first). An
// operator's token belongs to none: then the error is required, the
// usage a tenant-less call needs.
func ownTenant(c *cobra.Command, required string) (string, error) {
	cl, _ := c.Context().Value(clientKey{}).(*client.Client)
	if cl == nil {
		return "", usageErr("%s", required)
	}
	// Any token may describe itself (whatever its scopes); only an
	// operator's names no tenant.
	var me api.Me
	if err := cl.Do(c.Context(), http.MethodGet, "/api/v1/me", nil, nil, &me); err != nil {
		return "", err
	}
	if me.TenantID == "" {
		return "", usageErr("%s: this %s token belongs to no one tenant", required, me.Kind)
	}
	return me.TenantID, nil
}

// decodeInto unmarshals raw into a new T.
func decodeInto[T any](raw json.RawMessage) (*T, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// fields prints "Label: value" lines with the values aligned.
func fields(e *env, kv ...string) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 1, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], printable(kv[i+1]))
	}
	tw.Flush()
}

// table prints a header and rows aligned in columns.
func table(e *env, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ReplaceAll(header, " ", "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = printable(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// printable escapes what would steer a terminal (escape sequences, bells,
// carriage returns, bidirectional overrides) in a value someone else
// chose, such as a robot's stated purpose or a certificate's subject:
// each such character is shown as Go would quote it (\x1b, \u202e).
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !safeRune(r) }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if safeRune(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRuneToASCII(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// safeRune: printable, or a space; not a control, format (bidi) or
// invalid character.
func safeRune(r rune) bool {
	return r == ' ' || r != utf8.RuneError && unicode.IsPrint(r) && !unicode.Is(unicode.Cf, r)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// listTable is the text output of a list: the response decoded as L, and
// a table of header's columns with the rows fill gives row.
func listTable[L any](e *env, header string, fill func(l *L, row func(cells ...string))) func(json.RawMessage) error {
	return func(raw json.RawMessage) error {
		l, err := decodeInto[L](raw)
		if err != nil {
			return err
		}
		var rows [][]string
		fill(l, func(cells ...string) { rows = append(rows, cells) })
		return table(e, header, rows)
	}
}
