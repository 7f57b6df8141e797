package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custodia-project/custodia/internal/api"
	cv "github.com/custodia-project/custodia/internal/vault"
)

func credCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "cred",
		Short: "Store credentials (write-only for people), list them, and fetch or reveal them when allowed",
		Long: `Credentials are a tenant's bank, tax-portal and payroll logins. People write them
and never read them back; a robot holding a credentials.fetch grant gets one
just in time ("cred get --purpose"); a person may reveal one only when the
tenant made it revealable to them and they hold a credentials.reveal grant
("cred get --reason"). Names are paths such as bank/santander/main.`,
	}

	put := credPutCmd(e)

	list := &cobra.Command{Use: "list", Short: "List credentials (metadata only)", Args: exactArgs(0, "no arguments")}
	var prefix, after string
	var limit int
	list.Flags().StringVar(&prefix, "prefix", "", "only names starting with this, e.g. bank/")
	list.Flags().StringVar(&after, "after", "", "start after this name (the \"more\" line of the previous page)")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many, 1 to 1000 (default 1000)")
	var dir *directory
	tenantSub(e, list, func(b string, _ []string) (request, error) {
		dir = newDirectory(list, b)
		q := url.Values{}
		for k, v := range map[string]string{"prefix": prefix, "after": after} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if limit != 0 {
			q.Set("limit", fmt.Sprint(limit))
		}
		return request{method: http.MethodGet, path: b + "/credentials", query: q}, nil
	}, func(raw json.RawMessage) error {
		var more string
		err := listTable(e, "NAME KIND INSTITUTION VERSION OWNER ROTATE-BY", func(r *api.CredentialList, row func(...string)) {
			for _, c := range r.Credentials {
				row(c.Name, c.Kind, dash(c.Institution), fmt.Sprint(c.CurrentVersion), dir.name(c.OwnerID), fmtDate(c.RotateBy))
			}
			more = r.Next
		})(raw)
		if err == nil && more != "" {
			fmt.Fprintf(e.stdout, "(more: --after %s)\n", more)
		}
		return err
	}, nil)

	show := &cobra.Command{Use: "show NAME", Short: "Show a credential's metadata (never its secret)", Args: exactArgs(1, "the credential's name or ID")}
	var showDir *directory
	tenantSub(e, show, func(b string, args []string) (request, error) {
		showDir = newDirectory(show, b)
		return request{method: http.MethodGet, path: b + "/credentials/" + pathEscape(args[0])}, nil
	}, func(raw json.RawMessage) error { return printCredWith(e, raw, showDir.long) }, nil)

	history := &cobra.Command{Use: "history NAME", Short: "List a credential's versions", Args: exactArgs(1, "the credential's name or ID")}
	tenantTable(e, history, func(b string, args []string) (request, error) {
		return request{method: http.MethodGet, path: b + "/credentials/" + pathEscape(args[0]) + "/versions"}, nil
	}, "VERSION FIELDS BY CREATED NOTE", versionRows)

	restore := &cobra.Command{Use: "restore NAME", Short: "Make an earlier version current again (as a new version), without reading it",
		Args: exactArgs(1, "the credential's name or ID")}
	var version, restoreCAS int
	restore.Flags().IntVar(&version, "version", 0, "the version to restore")
	restore.Flags().IntVar(&restoreCAS, "cas", -1, "check-and-set: the current version, which the restore replaces (required when the credential requires check-and-set)")
	tenantSub(e, restore, func(b string, args []string) (request, error) {
		if version < 1 {
			return request{}, usageErr("--version is required")
		}
		in := api.RestoreRequest{Version: version}
		if restoreCAS >= 0 {
			in.CAS = &restoreCAS
		}
		return request{method: http.MethodPost, path: b + "/credentials/" + pathEscape(args[0]) + "/restore", body: in}, nil
	}, func(raw json.RawMessage) error { return printCred(e, raw) }, nil)

	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Robots: fetch the secret with --purpose; people: reveal a revealable one with --reason",
		Args:  exactArgs(1, "the credential's name or ID"),
	}
	var purpose, reason, ttl string
	get.Flags().StringVar(&purpose, "purpose", "", "robots: why the secret is needed now (audited)")
	get.Flags().StringVar(&ttl, "ttl", "", "robots: lease lifetime (default 5m, at most 1h)")
	get.Flags().StringVar(&reason, "reason", "", "people: why you need to see it (audited; the owner is told)")
	tenantSub(e, get, func(b string, args []string) (request, error) {
		p := b + "/credentials/" + pathEscape(args[0])
		switch {
		case purpose != "" && reason != "":
			return request{}, usageErr("give --purpose (a robot's fetch) or --reason (a person's reveal), not both")
		case purpose == "" && reason == "":
			return request{}, usageErr("give --purpose (robots) or --reason (people)")
		case purpose != "":
			return request{method: http.MethodPost, path: p + "/fetch", body: cv.FetchInput{Purpose: purpose, TTL: ttl}}, nil
		}
		return request{method: http.MethodPost, path: p + "/reveal", body: cv.RevealInput{Reason: reason}}, nil
	}, func(raw json.RawMessage) error { return printSecret(e, raw) }, nil)

	revealable := &cobra.Command{Use: "revealable NAME", Short: "Name the members who may reveal a credential (--none: write-only for all)",
		Long: `Name the members who may reveal a credential; the list replaces the one
before. --none makes it write-only for everyone again. A reveal also needs a
credentials.reveal grant and a reason.`,
		Args: exactArgs(1, "the credential's name or ID")}
	var members []string
	var none bool
	revealable.Flags().StringSliceVar(&members, "member", nil, "member ID or email (repeatable): the whole list of who may reveal it")
	revealable.Flags().BoolVar(&none, "none", false, "nobody may reveal it: write-only for everyone")
	var revDir *directory
	tenantSub(e, revealable, func(b string, args []string) (request, error) {
		revDir = newDirectory(revealable, b)
		// Clearing the list is said, never implied by a forgotten flag.
		switch {
		case none && len(members) > 0:
			return request{}, usageErr("give --member or --none, not both")
		case !none && len(members) == 0:
			return request{}, usageErr("give --member (repeatable) to name who may reveal it, or --none to make it write-only for everyone")
		case none:
			members = []string{}
		}
		return request{method: http.MethodPut, path: b + "/credentials/" + pathEscape(args[0]) + "/revealable",
			body: api.RevealableRequest{Members: members}}, nil
	}, func(raw json.RawMessage) error { return printCredWith(e, raw, revDir.long) }, nil)

	del := &cobra.Command{Use: "delete NAME", Short: "Delete a credential with every version", Args: exactArgs(1, "the credential's name or ID")}
	tenantSub(e, del, func(b string, args []string) (request, error) {
		return request{method: http.MethodDelete, path: b + "/credentials/" + pathEscape(args[0])}, nil
	}, nil, func(args []string) string { return "Deleted " + args[0] })

	c.AddCommand(put, list, show, history, restore, get, revealable, del)
	c.AddCommand(credHealthCmds(e)...)
	return c
}

// readSecret reads a secret from stdin: a JSON object of fields, or one
// line taken as the password.
func readSecret(e *env) (cv.Fields, error) {
	r := bufio.NewReader(e.stdin)
	b, err := r.Peek(1)
	if err != nil {
		return nil, usageErr("--secret-stdin: stdin is empty")
	}
	if b[0] == '{' {
		var f cv.Fields
		if err := json.NewDecoder(r).Decode(&f); err != nil {
			return nil, usageErr("--secret-stdin: not a JSON object of string fields: %v", err)
		}
		return f, nil
	}
	line, err := r.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, usageErr("--secret-stdin: the first line is empty")
	}
	_ = err // a last line without a newline is fine
	return cv.Fields{"password": line}, nil
}

func fmtDate(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("2006-01-02")
}

func printCred(e *env, raw json.RawMessage) error {
	return printCredWith(e, raw, func(id string) string { return id })
}

// printCredWith is printCred with who naming the owner and the members
// it is revealable to.
func printCredWith(e *env, raw json.RawMessage, who func(id string) string) error {
	c, err := decodeInto[cv.Credential](raw)
	if err != nil {
		return err
	}
	w := func(k, v string) { fmt.Fprintf(e.stdout, "%-14s %s\n", k+":", printable(v)) }
	w("Name", c.Name)
	w("ID", c.ID)
	if c.Kind == "" {
		// A receipt: the server answers a writer who may not read the
		// credential (a token scoped to credentials.write) with what it
		// wrote, not the credential's metadata.
		w("Version", fmt.Sprint(c.CurrentVersion))
		w("Metadata", "not shown: this token may write the credential, not read it")
		for _, warn := range c.Warnings {
			fmt.Fprintf(e.stderr, "Warning (%s): %s\n", warn.Code, warn.Message)
		}
		return nil
	}
	w("Kind", c.Kind)
	w("Institution", dash(c.Institution))
	w("Login ID", dash(c.LoginID))
	w("Group", c.Group)
	w("Owner", who(c.OwnerID))
	w("Version", fmt.Sprint(c.CurrentVersion))
	if c.CASRequired {
		w("Check-and-set", "required (--cas on every write and restore)")
	}
	w("Fields", dash(strings.Join(c.Fields, ", ")))
	w("Rotate by", fmtDate(c.RotateBy))
	rv := "nobody (write-only)"
	if len(c.Revealable) > 0 {
		names := make([]string, len(c.Revealable))
		for i, id := range c.Revealable {
			names[i] = who(id)
		}
		rv = strings.Join(names, ", ")
	}
	w("Revealable to", rv)
	for _, warn := range c.Warnings {
		fmt.Fprintf(e.stderr, "Warning (%s): %s\n", warn.Code, warn.Message)
	}
	return nil
}

// printSecret prints a fetched or revealed secret's fields on stdout, one
// "name: value" a line, and what it is on stderr.
func printSecret(e *env, raw json.RawMessage) error {
	s, err := decodeInto[cv.Secret](raw)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(s.Fields))
	for k := range s.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(e.stdout, "%s: %s\n", k, s.Fields[k])
	}
	fmt.Fprintf(e.stderr, "%s version %d", s.Name, s.Version)
	if s.LeaseID != "" {
		fmt.Fprintf(e.stderr, "; lease %s until %s", s.LeaseID, fmtTime(s.ExpiresAt))
	}
	fmt.Fprintln(e.stderr, ".")
	return nil
}

// versionRows are cred history's rows: a version's note says whether it is
// current, deleted or destroyed.
func versionRows(r *api.VersionList, who func(string) string, row func(...string)) {
	for _, v := range r.Versions {
		var note []string
		if v.Current {
			note = append(note, "current")
		}
		switch {
		case !v.DestroyedAt.IsZero():
			note = append(note, "destroyed "+fmtTime(v.DestroyedAt))
		case !v.DeletedAt.IsZero():
			note = append(note, "deleted "+fmtTime(v.DeletedAt))
		}
		row(fmt.Sprint(v.Version), strings.Join(v.Fields, ","), who(v.CreatedBy), fmtTime(v.CreatedAt), strings.Join(note, ", "))
	}
}
